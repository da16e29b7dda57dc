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
//
// The format itself (message objects, body checks, buckets and their
// headers, the 429 and server-error answers) is internal/discordapi's,
// which the simulator cmd/llmsim speaks too; this package adds the
// webhooks' registry, the script, the records and the transports a test
// needs.
package discordtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/discordapi"
	"github.com/catalystbot/sentiment/internal/llmapi"
)

// The default bucket of a webhook: Discord's 5 requests per 2 s.
const (
	DefaultLimit      = discordapi.DefaultLimit
	DefaultResetAfter = discordapi.DefaultResetAfter
)

// Discord's error codes the fake answers with.
const (
	CodeUnknownWebhook      = discordapi.CodeUnknownWebhook
	CodeUnknownMessage      = discordapi.CodeUnknownMessage
	CodeInvalidWebhookToken = discordapi.CodeInvalidWebhookToken
	CodeEmptyMessage        = discordapi.CodeEmptyMessage
	CodeInvalidFormBody     = discordapi.CodeInvalidFormBody
	CodeInvalidJSON         = discordapi.CodeInvalidJSON
)

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

// The wire types, as Discord sends and takes them.
type (
	// Payload is the JSON body of an execute or edit request. A nil field
	// was left out (or null).
	Payload = discordapi.Payload
	// AllowedMentions is what a message may ping.
	AllowedMentions = discordapi.AllowedMentions
	// Message is Discord's message object, as the fake keeps and returns it.
	Message = discordapi.Message
	// User is a message's author: for a webhook message, the webhook itself.
	User = discordapi.User
	// Embed is Discord's embed object.
	Embed = discordapi.Embed
	// Field is an embed field.
	Field = discordapi.Field
	// Footer is an embed's footer.
	Footer = discordapi.Footer
	// Author is an embed's author line.
	Author = discordapi.Author
)

// Server is a fake Discord. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL (scheme://host:port, no path): a loopback
	// address for New, a host that resolves nowhere for NewMemory.
	URL string

	t   testing.TB
	srv *httptest.Server

	store   *discordapi.Store
	buckets *discordapi.Buckets

	mu       sync.Mutex
	hooks    map[string]*hook
	script   map[string][]Behavior
	requests []Request
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
		t:       t,
		store:   discordapi.NewStore(),
		buckets: discordapi.NewBuckets(DefaultLimit, DefaultResetAfter),
		hooks:   make(map[string]*hook),
		script:  make(map[string][]Behavior),
		stop:    make(chan struct{}),
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
		h = &hook{id: id, channelID: s.store.Snowflake()}
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
	s.buckets.Set(webhookID, name, limit, resetAfter)
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
func (s *Server) Messages() map[string]Message { return s.store.Messages() }

// Message returns the message id as the fake holds it now.
func (s *Server) Message(id string) (Message, bool) { return s.store.Message(id) }

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

// ServeHTTP records the request, applies the global wait, the webhook's
// bucket and its script, and answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, discordapi.MaxBody))
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Raw: raw}
	_ = json.Unmarshal(raw, &rec.Body)
	p, routed := discordapi.ParsePath(r.URL.Path)
	if routed {
		rec.WebhookID, rec.MessageID = p.WebhookID, p.MessageID
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
	answer := s.admitLocked(x, p, routed)
	s.mu.Unlock()
	answer.serve(x)
}

// admitLocked decides what answers x, in Discord's order: the route, the
// webhook and its token, the global wait, the bucket, a 429's wait, then
// the script. s.mu is held.
func (s *Server) admitLocked(x *exchange, p discordapi.Path, routed bool) Behavior {
	if !routed {
		return Error(http.StatusNotFound, 0, "404: Not Found")
	}
	h := s.hooks[p.WebhookID]
	if h == nil || h.deleted {
		return Error(http.StatusNotFound, CodeUnknownWebhook, "Unknown Webhook")
	}
	if h.token != p.Token {
		return Error(http.StatusUnauthorized, CodeInvalidWebhookToken, "Invalid Webhook Token")
	}
	x.hook = h
	now := time.Now()
	if now.Before(s.global) {
		return limited(s.global.Sub(now), ScopeGlobal, true)
	}
	name, admitted, wait := s.buckets.Take(h.id, now)
	x.bucket = name
	if !admitted {
		return limited(wait, ScopeUser, false)
	}
	if now.Before(h.until) {
		return limited(h.until.Sub(now), h.scope, false)
	}
	if q := s.script[h.id]; len(q) > 0 {
		s.script[h.id] = q[1:]
		return q[0]
	}
	return OK()
}

// setRateLimitHeaders writes the state of x's bucket as it stands when
// the answer is written, as Discord does; nothing when x reached none.
func (x *exchange) setRateLimitHeaders() {
	if x.bucket != "" {
		x.s.buckets.SetHeaders(x.w.Header(), x.bucket, time.Now())
	}
}

// exchange is one request being answered.
type exchange struct {
	s    *Server
	w    http.ResponseWriter // records the status
	raw  http.ResponseWriter // the transport's own, for Reset
	r    *http.Request
	req  Request
	hook *hook
	// bucket names the webhook's bucket, whose headers the answers Discord
	// itself gives carry; empty before the webhook is known.
	bucket string
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
	ScopeUser   = discordapi.ScopeUser
	ScopeGlobal = discordapi.ScopeGlobal
	ScopeShared = discordapi.ScopeShared
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
		if !global {
			x.setRateLimitHeaders()
		}
		discordapi.WriteRateLimited(x.w, retryAfter, scope, global)
	}}
}

// ServerError answers status as Discord's edge does: 500 with Discord's
// JSON, 502 with Cloudflare's HTML page, 503 and 504 with the proxy's
// plain text, others with a JSON status message. No rate-limit headers.
func ServerError(status int) Behavior {
	return Behavior{serve: func(x *exchange) { discordapi.WriteServerError(x.w, status) }}
}

// Error answers status with Discord's JSON error {message, code} and the
// bucket's headers.
func Error(status, code int, message string) Behavior {
	return Behavior{serve: func(x *exchange) {
		x.setRateLimitHeaders()
		discordapi.WriteError(x.w, status, code, message)
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
		discordapi.WriteRaw(x.w, status, contentType, []byte(body))
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

func reset(x *exchange) { llmapi.ResetConn(x.raw) }

// serveNormal posts, edits or reads a message, checking the body as
// Discord does.
func serveNormal(x *exchange) {
	x.setRateLimitHeaders()
	x.s.store.Serve(x.w, discordapi.Hook{ID: x.hook.id, ChannelID: x.hook.channelID}, x.r, x.req.Raw, x.req.MessageID)
}

// FormErrors checks p against Discord's limits and returns the errors tree
// Discord would send with 400 Invalid Form Body, or nil when p is within
// them. Texts are counted in runes after trimming whitespace, as Discord
// counts them.
func FormErrors(p Payload) map[string]any { return discordapi.FormErrors(p) }

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
				w.ResetConn()
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

// memWriter is the in-memory handler's writer; ResetConn stands for a
// dropped connection.
type memWriter struct {
	*httptest.ResponseRecorder
	reset bool
}

func (w *memWriter) ResetConn() { w.reset = true }
