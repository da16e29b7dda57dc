// Package discordtest is the fake Discord of the service's tests: an HTTP
// server speaking the webhook endpoints the notifier calls, with Discord's
// real message objects, error bodies, status codes and rate-limit headers.
//
//	POST  /api[/vN]/webhooks/{id}/{token}?wait=true        200 + message (204 without wait)
//	PATCH /api[/vN]/webhooks/{id}/{token}/messages/{mid}   200 + message
//	GET   /api[/vN]/webhooks/{id}/{token}/messages/{mid}   200 + message
//
// It refuses what Discord refuses: an unknown webhook (404, code 10015), a
// wrong token (401, 50027), an unknown message (404, 10008), an empty
// message (400, 50006) and a text over Discord's limits, counted in runes
// after trimming as Discord counts (400, 50035 with the errors tree). Every
// answer to a known webhook carries the X-RateLimit-* headers of its
// bucket; by default each webhook has its own bucket of 5 requests per
// 2 s, as on Discord, and SetBucket puts webhooks in a shared one. A
// request over its bucket gets a 429, and so does any request during a
// global 429's wait.
//
// A test scripts the next answers of one webhook with Push, then reads
// what the fake received (Requests, Posts, Edits), waits for the n-th
// request without sleeping (Await), and checks the channel's state
// (Messages):
//
//	d := discordtest.New(t)
//	url := d.Webhook("1001", "tok")
//	d.Push("1001", discordtest.RateLimited(1500*time.Millisecond, "user"))
//
// In a testing/synctest bubble, make the fake inside the bubble with
// NewMemory and reach it through Client: it has no socket (which would
// keep the bubble from ever being idle), and every behaviour waits on
// channels and on the request's context, so virtual time advances while
// it waits and the bucket windows run on the bubble's clock.
package discordtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// The default bucket of a webhook: Discord's 5 requests per 2 s.
const (
	DefaultLimit      = 5
	DefaultResetAfter = 2 * time.Second
)

// Discord's error codes the fake answers with.
const (
	CodeUnknownWebhook      = 10015
	CodeUnknownMessage      = 10008
	CodeInvalidWebhookToken = 50027
	CodeEmptyMessage        = 50006
	CodeInvalidFormBody     = 50035
	CodeInvalidJSON         = 50109
)

// maxBody caps a request body read, as Discord caps uploads.
const maxBody = 25 << 20

// firstSnowflake is where the fake's message and channel ids start: a
// plausible 2024 snowflake, so that ids look like Discord's.
const firstSnowflake = 1_230_000_000_000_000_000

var route = regexp.MustCompile(`^/api(?:/v\d+)?/webhooks/([^/]+)/([^/]+)(?:/messages/([^/]+))?/?$`)

// Request is one request the fake received.
type Request struct {
	// Seq is the request's place in arrival order, from 1.
	Seq int
	// At is when it arrived, on the fake's clock (virtual in a bubble).
	At     time.Time
	Method string
	// Path is the path as sent; it holds the webhook's token.
	Path   string
	Query  string
	Header http.Header
	// WebhookID and MessageID are read from the path; empty where it
	// names none.
	WebhookID string
	MessageID string
	// Raw is the body as sent; Body is it decoded (zero when not JSON).
	Raw  []byte
	Body Payload
	// Status is the answer's status; 0 while none was sent (a request
	// still being answered, one that hung or whose connection was reset).
	Status int
}

// Payload is the JSON body of an execute or edit request. A nil field was
// left out (or null).
type Payload struct {
	Content         *string          `json:"content"`
	Embeds          *[]Embed         `json:"embeds"`
	AllowedMentions *AllowedMentions `json:"allowed_mentions"`
	Username        *string          `json:"username"`
}

// AllowedMentions is what a message may ping; an empty Parse pings no one.
type AllowedMentions struct {
	Parse []string `json:"parse"`
}

// Message is Discord's message object, as the fake keeps and returns it.
type Message struct {
	ID              string   `json:"id"`
	Type            int      `json:"type"`
	Content         string   `json:"content"`
	ChannelID       string   `json:"channel_id"`
	Author          User     `json:"author"`
	Attachments     []any    `json:"attachments"`
	Embeds          []Embed  `json:"embeds"`
	Mentions        []any    `json:"mentions"`
	MentionRoles    []string `json:"mention_roles"`
	Pinned          bool     `json:"pinned"`
	MentionEveryone bool     `json:"mention_everyone"`
	TTS             bool     `json:"tts"`
	Timestamp       string   `json:"timestamp"`
	EditedTimestamp *string  `json:"edited_timestamp"`
	Flags           int      `json:"flags"`
	Components      []any    `json:"components"`
	WebhookID       string   `json:"webhook_id"`
}

// User is a message's author: for a webhook message, the webhook itself.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Bot      bool   `json:"bot"`
}

// Embed is Discord's embed object.
type Embed struct {
	Type        string  `json:"type,omitempty"`
	Title       string  `json:"title,omitempty"`
	Description string  `json:"description,omitempty"`
	URL         string  `json:"url,omitempty"`
	Color       int     `json:"color,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
	Fields      []Field `json:"fields,omitempty"`
	Footer      *Footer `json:"footer,omitempty"`
	Author      *Author `json:"author,omitempty"`
}

// Field is an embed field.
type Field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// Footer is an embed's footer.
type Footer struct {
	Text string `json:"text"`
}

// Author is an embed's author line.
type Author struct {
	Name string `json:"name"`
}

// Server is a fake Discord. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL (scheme://host:port, no path): a loopback
	// address for New, a host that resolves nowhere for NewMemory.
	URL string

	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	hooks    map[string]*hook
	buckets  map[string]*bucket
	inBucket map[string]string // webhook id -> bucket name, from SetBucket
	script   map[string][]Behavior
	requests []Request
	messages map[string]*Message
	nextID   uint64
	global   time.Time // every request gets a global 429 until then
	changed  chan struct{}
	stop     chan struct{}
	closed   bool
}

type hook struct {
	id, token, channelID string
	deleted              bool
	// until holds the webhook after a scripted 429: requests before it
	// get a 429 of scope too, as Discord answers a client that retries
	// early.
	until time.Time
	scope string
}

type bucket struct {
	name       string
	limit      int
	resetAfter time.Duration
	count      int
	windowEnd  time.Time
}

// New starts a fake Discord on a loopback port; it is closed when the test
// ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := newServer(t)
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// NewMemory returns a fake with no listener, reached through Client only:
// for tests in a testing/synctest bubble (make it inside the bubble). URL
// names a host that does not resolve, so a client not given Client fails
// at once.
func NewMemory(t testing.TB) *Server {
	t.Helper()
	s := newServer(t)
	s.URL = "http://discord.discordtest.invalid"
	t.Cleanup(s.Close)
	return s
}

func newServer(t testing.TB) *Server {
	return &Server{
		t:        t,
		hooks:    make(map[string]*hook),
		buckets:  make(map[string]*bucket),
		inBucket: make(map[string]string),
		script:   make(map[string][]Behavior),
		messages: make(map[string]*Message),
		nextID:   firstSnowflake,
		stop:     make(chan struct{}),
	}
}

// Client returns an http.Client that reaches the fake: over the loopback
// listener for New, in memory for NewMemory. Its connections close with
// the fake.
func (s *Server) Client() *http.Client {
	if s.srv != nil {
		return s.srv.Client()
	}
	return &http.Client{Transport: memTransport{s}}
}

// Close takes the fake down: hanging answers end, and new requests are
// refused (ECONNREFUSED) on the listener and in memory alike. It is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.stop)
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Webhook makes (or gives a new token to) the webhook id, and returns its
// URL as Discord shows it: URL/api/webhooks/{id}/{token}. id should be a
// snowflake (decimal digits), as the notifier requires.
func (s *Server) Webhook(id, token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[id]
	if h == nil {
		h = &hook{id: id, channelID: s.snowflakeLocked()}
		s.hooks[id] = h
	}
	h.token, h.deleted = token, false
	return s.URL + "/api/webhooks/" + id + "/" + token
}

// DeleteWebhook deletes the webhook id, as a server admin would: every
// later request to it gets 404 Unknown Webhook.
func (s *Server) DeleteWebhook(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hooks[id]; h != nil {
		h.deleted = true
	}
}

// SetBucket puts the webhook id in the bucket named name, which admits
// limit requests per window of resetAfter, the window starting at its
// first request. Webhooks given the same name share one bucket, as
// Discord's webhooks of one server do; the last limit and resetAfter set
// for a name hold.
func (s *Server) SetBucket(webhookID, name string, limit int, resetAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[name]
	if b == nil {
		b = &bucket{name: name}
		s.buckets[name] = b
	}
	b.limit, b.resetAfter = limit, resetAfter
	s.inBucket[webhookID] = name
}

// Push queues behaviours for the next requests to the webhook id that get
// past a global 429's wait, the webhook's bucket and a 429's wait on it,
// one each, in order; then requests are answered normally.
func (s *Server) Push(webhookID string, b ...Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[webhookID] = append(s.script[webhookID], b...)
}

// Requests returns every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Posts returns the POST requests received (answered or not, whatever
// their status), in order.
func (s *Server) Posts() []Request {
	return s.filter(func(r *Request) bool { return r.Method == http.MethodPost })
}

// Edits returns the PATCH requests received for messageID, in order.
func (s *Server) Edits(messageID string) []Request {
	return s.filter(func(r *Request) bool { return r.Method == http.MethodPatch && r.MessageID == messageID })
}

func (s *Server) filter(keep func(*Request) bool) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for i := range s.requests {
		if keep(&s.requests[i]) {
			out = append(out, s.requests[i])
		}
	}
	return out
}

// Messages returns the messages the fake holds now, by id.
func (s *Server) Messages() map[string]Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Message, len(s.messages))
	for id, m := range s.messages {
		out[id] = m.clone()
	}
	return out
}

// Message returns the message id as the fake holds it now.
func (s *Server) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return m.clone(), true
}

// Await waits until at least n requests have arrived, or ctx ends, and
// returns the requests so far. Tests order themselves on it instead of
// sleeping: a request is recorded before it is answered, so a hanging one
// counts.
func (s *Server) Await(ctx context.Context, n int) ([]Request, error) {
	for {
		s.mu.Lock()
		if len(s.requests) >= n {
			out := append([]Request(nil), s.requests...)
			s.mu.Unlock()
			return out, nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch, got := s.changed, len(s.requests)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("discordtest: %d of %d requests arrived: %w", got, n, ctx.Err())
		}
	}
}

func (m *Message) clone() Message {
	c := *m
	c.Embeds = cloneEmbeds(m.Embeds)
	return c
}

func cloneEmbeds(es []Embed) []Embed {
	if es == nil {
		return nil
	}
	out := make([]Embed, len(es))
	for i, e := range es {
		e.Fields = append([]Field(nil), e.Fields...)
		if e.Footer != nil {
			f := *e.Footer
			e.Footer = &f
		}
		if e.Author != nil {
			a := *e.Author
			e.Author = &a
		}
		out[i] = e
	}
	return out
}

// snowflakeLocked returns a new id; s.mu is held.
func (s *Server) snowflakeLocked() string {
	s.nextID++
	return strconv.FormatUint(s.nextID, 10)
}

// ServeHTTP records the request, applies the global wait, the webhook's
// bucket and its script, and answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &rec.Body)
	m := route.FindStringSubmatch(r.URL.Path)
	if m != nil {
		rec.WebhookID, rec.MessageID = m[1], m[3]
	}

	s.mu.Lock()
	rec.Seq, rec.At = len(s.requests)+1, time.Now()
	s.requests = append(s.requests, rec)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	x := &exchange{s: s, raw: w, r: r, req: rec, stop: s.stop}
	x.w = &statusWriter{ResponseWriter: w, s: s, idx: rec.Seq - 1}
	answer := s.admitLocked(x, m)
	s.mu.Unlock()
	answer.serve(x)
}

// admitLocked decides what answers x, in Discord's order: the route, the
// webhook and its token, the global wait, the bucket, a 429's wait, then
// the script. s.mu is held.
func (s *Server) admitLocked(x *exchange, m []string) Behavior {
	if m == nil {
		return Error(http.StatusNotFound, 0, "404: Not Found")
	}
	h := s.hooks[m[1]]
	if h == nil || h.deleted {
		return Error(http.StatusNotFound, CodeUnknownWebhook, "Unknown Webhook")
	}
	if h.token != m[2] {
		return Error(http.StatusUnauthorized, CodeInvalidWebhookToken, "Invalid Webhook Token")
	}
	x.hook = h
	now := time.Now()
	if now.Before(s.global) {
		return limited(s.global.Sub(now), ScopeGlobal, true)
	}
	b := s.bucketLocked(h.id)
	if !now.Before(b.windowEnd) {
		b.count, b.windowEnd = 0, now.Add(b.resetAfter)
	}
	x.bucket = b
	if b.count >= b.limit {
		return limited(b.windowEnd.Sub(now), ScopeUser, false)
	}
	b.count++
	if now.Before(h.until) {
		return limited(h.until.Sub(now), h.scope, false)
	}
	if q := s.script[h.id]; len(q) > 0 {
		s.script[h.id] = q[1:]
		return q[0]
	}
	return OK()
}

// bucketLocked returns the bucket of the webhook id, making its own
// default one on first use. s.mu is held.
func (s *Server) bucketLocked(id string) *bucket {
	name, ok := s.inBucket[id]
	if !ok {
		f := fnv.New64a()
		_, _ = f.Write([]byte(id))
		name = fmt.Sprintf("%016x", f.Sum64())
		s.inBucket[id] = name
	}
	b := s.buckets[name]
	if b == nil {
		b = &bucket{name: name, limit: DefaultLimit, resetAfter: DefaultResetAfter}
		s.buckets[name] = b
	}
	return b
}

// setRateLimitHeaders writes the state of x's bucket as it stands when
// the answer is written, as Discord does; nothing when x reached none.
func (x *exchange) setRateLimitHeaders() {
	if x.bucket == nil {
		return
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	b, h := x.bucket, x.w.Header()
	after := max(0, time.Until(b.windowEnd).Seconds())
	h.Set("X-RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, b.limit-b.count)))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.windowEnd.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", b.name)
}

// exchange is one request being answered.
type exchange struct {
	s    *Server
	w    http.ResponseWriter // records the status
	raw  http.ResponseWriter // the transport's own, for Reset
	r    *http.Request
	req  Request
	hook *hook
	// bucket is the webhook's bucket, whose headers the answers Discord
	// itself gives carry; nil before the webhook is known.
	bucket *bucket
	stop   <-chan struct{}
}

// statusWriter records an answer's status before the client can see it.
type statusWriter struct {
	http.ResponseWriter
	s     *Server
	idx   int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.s.mu.Lock()
		w.s.requests[w.idx].Status = code
		w.s.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Behavior answers one request to a webhook.
type Behavior struct {
	serve func(x *exchange)
}

// Scopes of a 429, as Discord's X-RateLimit-Scope names them.
const (
	ScopeUser   = "user"
	ScopeGlobal = "global"
	ScopeShared = "shared"
)

// OK answers normally: the message is posted, edited or read.
func OK() Behavior { return Behavior{serve: serveNormal} }

// RateLimited answers 429 with retry_after, the scope given ("user" or
// "shared"), and the bucket's headers as they stand, which may say
// requests remain (Discord's hidden limits). Requests to the webhook
// within retryAfter get the same 429.
func RateLimited(retryAfter time.Duration, scope string) Behavior {
	return Behavior{serve: func(x *exchange) {
		x.s.mu.Lock()
		x.hook.until, x.hook.scope = time.Now().Add(retryAfter), scope
		x.s.mu.Unlock()
		limited(retryAfter, scope, false).serve(x)
	}}
}

// GlobalRateLimited answers a global 429: every request, to any webhook,
// gets a global 429 until retryAfter has passed.
func GlobalRateLimited(retryAfter time.Duration) Behavior {
	return Behavior{serve: func(x *exchange) {
		x.s.mu.Lock()
		if until := time.Now().Add(retryAfter); until.After(x.s.global) {
			x.s.global = until
		}
		x.s.mu.Unlock()
		limited(retryAfter, ScopeGlobal, true).serve(x)
	}}
}

// limited is Discord's 429. A global one carries no bucket headers.
func limited(retryAfter time.Duration, scope string, global bool) Behavior {
	return Behavior{serve: func(x *exchange) {
		h := x.w.Header()
		if global {
			h.Set("X-RateLimit-Global", "true")
		} else {
			x.setRateLimitHeaders()
		}
		h.Set("X-RateLimit-Scope", scope)
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
		writeJSON(x.w, http.StatusTooManyRequests, map[string]any{
			"message":     "You are being rate limited.",
			"retry_after": math.Round(retryAfter.Seconds()*1000) / 1000,
			"global":      global,
		})
	}}
}

// ServerError answers status as Discord's edge does: 500 with Discord's
// JSON, 502 with Cloudflare's HTML page, 503 and 504 with the proxy's
// plain text, others with a JSON status message. No rate-limit headers.
func ServerError(status int) Behavior {
	return Behavior{serve: func(x *exchange) {
		switch status {
		case http.StatusBadGateway:
			writeRaw(x.w, status, "text/html", []byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"+
				"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"))
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			writeRaw(x.w, status, "text/plain", []byte("upstream connect error or disconnect/reset before headers. reset reason: connection termination"))
		default:
			writeJSON(x.w, status, map[string]any{"message": fmt.Sprintf("%d: %s", status, http.StatusText(status)), "code": 0})
		}
	}}
}

// Error answers status with Discord's JSON error {message, code} and the
// bucket's headers.
func Error(status, code int, message string) Behavior {
	return Behavior{serve: func(x *exchange) {
		x.setRateLimitHeaders()
		writeJSON(x.w, status, map[string]any{"message": message, "code": code})
	}}
}

// InvalidToken is the 401 of a webhook whose token was reset.
func InvalidToken() Behavior {
	return Error(http.StatusUnauthorized, CodeInvalidWebhookToken, "Invalid Webhook Token")
}

// UnknownWebhook is the 404 of a deleted webhook (for one answer; use
// DeleteWebhook for every later one).
func UnknownWebhook() Behavior {
	return Error(http.StatusNotFound, CodeUnknownWebhook, "Unknown Webhook")
}

// Raw answers status with exactly this body and content type, plus
// headers as name, value pairs: for answers the other behaviours do not
// cover.
func Raw(status int, contentType, body string, header ...string) Behavior {
	if len(header)%2 != 0 {
		panic(fmt.Sprintf("discordtest: header pairs %q: odd count", header))
	}
	return Behavior{serve: func(x *exchange) {
		for i := 0; i < len(header); i += 2 {
			x.w.Header().Set(header[i], header[i+1])
		}
		writeRaw(x.w, status, contentType, []byte(body))
	}}
}

// Hang never answers: it returns when the request's context ends (the
// client gave up) or the fake is closed.
func Hang() Behavior {
	return Behavior{serve: func(x *exchange) {
		select {
		case <-x.r.Context().Done():
		case <-x.stop:
			reset(x)
		}
	}}
}

// Delay waits d before answering as b: a slow Discord, or requests kept
// in flight together. It gives up, unanswered, when the request's context
// ends or the fake is closed. In a bubble d passes on the virtual clock.
func Delay(d time.Duration, b Behavior) Behavior {
	return Behavior{serve: func(x *exchange) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			b.serve(x)
		case <-x.r.Context().Done():
		case <-x.stop:
			reset(x)
		}
	}}
}

// Until holds the request until release is closed, then answers as b:
// a test orders itself on a request that is known to be in flight. It
// gives up, unanswered, when the request's context ends or the fake is
// closed.
func Until(release <-chan struct{}, b Behavior) Behavior {
	return Behavior{serve: func(x *exchange) {
		select {
		case <-release:
			b.serve(x)
		case <-x.r.Context().Done():
		case <-x.stop:
			reset(x)
		}
	}}
}

// Reset drops the connection without an answer: the client sees
// "connection reset by peer".
func Reset() Behavior { return Behavior{serve: reset} }

func reset(x *exchange) {
	if r, ok := x.raw.(interface{ resetConn() }); ok {
		r.resetConn()
		return
	}
	hj, ok := x.raw.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// serveNormal posts, edits or reads a message, checking the body as
// Discord does.
func serveNormal(x *exchange) {
	s, req := x.s, x.req
	x.setRateLimitHeaders()
	switch {
	case req.MessageID == "" && x.r.Method == http.MethodPost:
		if !checkBody(x) {
			return
		}
		s.mu.Lock()
		now := discordTime(time.Now())
		msg := &Message{
			ID: s.snowflakeLocked(), ChannelID: x.hook.channelID, WebhookID: x.hook.id,
			Author:      User{ID: x.hook.id, Username: "Captain Hook", Bot: true},
			Attachments: []any{}, Embeds: []Embed{}, Mentions: []any{}, MentionRoles: []string{}, Components: []any{},
			Timestamp: now,
		}
		if p := req.Body; p.Content != nil {
			msg.Content = *p.Content
		}
		if p := req.Body; p.Embeds != nil {
			msg.Embeds = richEmbeds(*p.Embeds)
		}
		s.messages[msg.ID] = msg
		out := msg.clone()
		s.mu.Unlock()
		if !truthy(x.r.URL.Query().Get("wait")) {
			x.w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(x.w, http.StatusOK, out)
	case req.MessageID != "" && (x.r.Method == http.MethodPatch || x.r.Method == http.MethodGet):
		s.mu.Lock()
		msg, ok := s.messages[req.MessageID]
		ok = ok && msg.WebhookID == x.hook.id
		s.mu.Unlock()
		if !ok {
			writeJSON(x.w, http.StatusNotFound, map[string]any{"message": "Unknown Message", "code": CodeUnknownMessage})
			return
		}
		if x.r.Method == http.MethodPatch {
			if !checkBody(x) {
				return
			}
		}
		s.mu.Lock()
		if x.r.Method == http.MethodPatch {
			p := req.Body
			content, embeds := msg.Content, msg.Embeds
			if p.Content != nil {
				content = *p.Content
			}
			if p.Embeds != nil {
				embeds = richEmbeds(*p.Embeds)
			}
			if strings.TrimSpace(content) == "" && len(embeds) == 0 {
				s.mu.Unlock()
				writeJSON(x.w, http.StatusBadRequest, map[string]any{"message": "Cannot send an empty message", "code": CodeEmptyMessage})
				return
			}
			edited := discordTime(time.Now())
			msg.Content, msg.Embeds, msg.EditedTimestamp = content, embeds, &edited
		}
		out := msg.clone()
		s.mu.Unlock()
		writeJSON(x.w, http.StatusOK, out)
	default:
		writeJSON(x.w, http.StatusMethodNotAllowed, map[string]any{"message": "405: Method Not Allowed", "code": 0})
	}
}

// checkBody answers 400 and returns false when the body is not what
// Discord accepts: JSON in valid UTF-8, not empty (on a post), within the
// limits.
func checkBody(x *exchange) bool {
	ct := x.r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		// Discord reads any other body as a form with no payload in it.
		writeJSON(x.w, http.StatusBadRequest, map[string]any{"message": "Cannot send an empty message", "code": CodeEmptyMessage})
		return false
	}
	var probe map[string]json.RawMessage
	if !utf8.Valid(x.req.Raw) || json.Unmarshal(x.req.Raw, &probe) != nil {
		writeJSON(x.w, http.StatusBadRequest, map[string]any{"message": "The request body contains invalid JSON.", "code": CodeInvalidJSON})
		return false
	}
	p := x.req.Body
	if x.r.Method == http.MethodPost && (p.Content == nil || strings.TrimSpace(*p.Content) == "") && (p.Embeds == nil || len(*p.Embeds) == 0) {
		writeJSON(x.w, http.StatusBadRequest, map[string]any{"message": "Cannot send an empty message", "code": CodeEmptyMessage})
		return false
	}
	if tree := FormErrors(p); tree != nil {
		writeJSON(x.w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": CodeInvalidFormBody, "errors": tree})
		return false
	}
	return true
}

// FormErrors checks p against Discord's limits and returns the errors tree
// Discord would send with 400 Invalid Form Body, or nil when p is within
// them. Texts are counted in runes after trimming whitespace, as Discord
// counts them.
func FormErrors(p Payload) map[string]any {
	tree := map[string]any{}
	add := func(code, msg string, path ...string) {
		node := tree
		for _, k := range path {
			next, ok := node[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				node[k] = next
			}
			node = next
		}
		list, _ := node["_errors"].([]any)
		node["_errors"] = append(list, map[string]any{"code": code, "message": msg})
	}
	tooLong := func(s string, limit int, path ...string) int {
		n := runes(s)
		if n > limit {
			add("BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", limit), path...)
		}
		return n
	}
	required := func(s string, path ...string) bool {
		if strings.TrimSpace(s) == "" {
			add("BASE_TYPE_REQUIRED", "This field is required", path...)
			return false
		}
		return true
	}
	if p.Content != nil {
		tooLong(*p.Content, 2000, "content")
	}
	if p.Embeds != nil {
		embeds := *p.Embeds
		if len(embeds) > 10 {
			add("BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.", "embeds")
		}
		total := 0
		for i, e := range embeds {
			at := func(path ...string) []string { return append([]string{"embeds", strconv.Itoa(i)}, path...) }
			total += tooLong(e.Title, 256, at("title")...)
			total += tooLong(e.Description, 4096, at("description")...)
			if len(e.Fields) > 25 {
				add("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.", at("fields")...)
			}
			for j, f := range e.Fields {
				if required(f.Name, at("fields", strconv.Itoa(j), "name")...) {
					total += tooLong(f.Name, 256, at("fields", strconv.Itoa(j), "name")...)
				}
				if required(f.Value, at("fields", strconv.Itoa(j), "value")...) {
					total += tooLong(f.Value, 1024, at("fields", strconv.Itoa(j), "value")...)
				}
			}
			if e.Footer != nil && required(e.Footer.Text, at("footer", "text")...) {
				total += tooLong(e.Footer.Text, 2048, at("footer", "text")...)
			}
			if e.Author != nil && required(e.Author.Name, at("author", "name")...) {
				total += tooLong(e.Author.Name, 256, at("author", "name")...)
			}
			if e.Color < 0 || e.Color > 0xffffff {
				add("NUMBER_TYPE_MAX", "int value should be less than or equal to 16777215.", at("color")...)
			}
			if e.Timestamp != "" {
				if _, err := time.Parse(time.RFC3339Nano, e.Timestamp); err != nil {
					add("DATE_TIME_TYPE_PARSE", fmt.Sprintf("Could not interpret %q as a date-time.", e.Timestamp), at("timestamp")...)
				}
			}
		}
		if total > 6000 {
			add("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000", "embeds")
		}
	}
	if len(tree) == 0 {
		return nil
	}
	return tree
}

func runes(s string) int { return utf8.RuneCountInString(strings.TrimSpace(s)) }

// richEmbeds is what Discord stores of posted embeds: each of type rich.
func richEmbeds(es []Embed) []Embed {
	out := cloneEmbeds(es)
	if out == nil {
		out = []Embed{}
	}
	for i := range out {
		out[i].Type = "rich"
	}
	return out
}

func truthy(v string) bool { return v == "true" || v == "True" || v == "1" }

// discordTime formats t as Discord's message timestamps.
func discordTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("discordtest: encoding a body: %v", err))
	}
	writeRaw(w, status, "application/json", b)
}

func writeRaw(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// memTransport serves a request with the fake's handler on a goroutine,
// buffering the answer: Discord's answers are small, and a handler that
// waits does so on the request's context, so the round trip ends when
// the handler returns.
type memTransport struct{ s *Server }

func (m memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	m.s.mu.Lock()
	closed := m.s.closed
	m.s.mu.Unlock()
	if closed {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	ctx := req.Context()
	sreq := req.Clone(ctx)
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "192.0.2.1:40000"
	sreq.Host = req.URL.Host

	w := &memWriter{ResponseRecorder: httptest.NewRecorder()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			// net/http's way for a handler to drop the connection.
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panic(v)
				}
				w.resetConn()
			}
		}()
		m.s.ServeHTTP(w, sreq)
	}()
	<-done
	if w.reset {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp := w.Result()
	resp.Request = req
	return resp, nil
}

// memWriter is the in-memory handler's writer; resetConn stands for a
// dropped connection.
type memWriter struct {
	*httptest.ResponseRecorder
	reset bool
}

func (w *memWriter) resetConn() { w.reset = true }
