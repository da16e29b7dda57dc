package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/catalystbot/sentiment/internal/discordapi"
	"github.com/catalystbot/sentiment/internal/llmapi"
)

// Bounds of what the simulated Discord remembers, so that a long load
// test does not grow it without end: the records of posts and edits, and
// the messages themselves (the oldest go first).
const (
	maxRecords  = 10_000
	maxMessages = 10_000
)

// discordWorld is the simulated Discord: any webhook id exists, its token
// fixed by its first request (a later request with another token gets
// Discord's 401), with Discord's buckets and message objects.
type discordWorld struct {
	store *discordapi.Store

	mu       sync.Mutex
	buckets  *discordapi.Buckets
	limit    int
	reset    time.Duration
	hooks    map[string]*simHook
	posts    []Record
	edits    []Record
	seq      int
	messages []string // ids, oldest first
}

type simHook struct {
	token, channelID string
}

// Record is one execute or edit the simulated Discord received, as
// GET /_sim/discord shows it. The webhook's token is not kept.
type Record struct {
	// Seq is the request's place among all webhook requests, from 1.
	Seq       int       `json:"seq"`
	At        time.Time `json:"at"`
	WebhookID string    `json:"webhook_id"`
	// MessageID is the message posted (for a post answered with its
	// message) or edited.
	MessageID string `json:"message_id,omitzero"`
	// Status is the answer's status; 0 when none was sent (a hang, a
	// reset).
	Status int `json:"status"`
	// Fault is the failure the knobs made of the request, if any (a kind
	// of the state's errors).
	Fault   string              `json:"fault,omitzero"`
	Content *string             `json:"content,omitempty"`
	Embeds  *[]discordapi.Embed `json:"embeds,omitempty"`
}

func newDiscordWorld() *discordWorld {
	return &discordWorld{store: discordapi.NewStore(), hooks: make(map[string]*simHook)}
}

// configure sets the buckets' limit; buckets start afresh when it
// changes.
func (d *discordWorld) configure(limit int, reset time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buckets == nil || limit != d.limit || reset != d.reset {
		d.buckets = discordapi.NewBuckets(limit, reset)
		d.limit, d.reset = limit, reset
	}
}

// hook returns webhook id, made on its first request with token; ok is
// false when token is not the one it was made with.
func (d *discordWorld) hook(id, token string) (discordapi.Hook, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hooks[id]
	if h == nil {
		h = &simHook{token: token, channelID: d.store.Snowflake()}
		d.hooks[id] = h
	}
	return discordapi.Hook{ID: id, ChannelID: h.channelID}, h.token == token
}

// record keeps a post or an edit, and forgets the oldest messages beyond
// the bound.
func (d *discordWorld) record(method string, rec Record, posted string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	rec.Seq = d.seq
	switch method {
	case http.MethodPost:
		d.posts = appendBounded(d.posts, rec)
	case http.MethodPatch:
		d.edits = appendBounded(d.edits, rec)
	}
	if posted != "" {
		d.messages = append(d.messages, posted)
		if len(d.messages) > maxMessages {
			d.store.Delete(d.messages[0])
			d.messages = slices.Delete(d.messages, 0, 1)
		}
	}
}

func appendBounded(rs []Record, r Record) []Record {
	if len(rs) >= maxRecords {
		rs = slices.Delete(rs, 0, len(rs)-maxRecords+1)
	}
	return append(rs, r)
}

// resetRecords forgets the posts and edits received.
func (d *discordWorld) resetRecords() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.posts, d.edits = nil, nil
}

// DiscordState is what GET /_sim/discord returns: the posts and edits
// received (the latest 10,000 of each), and the messages as they stand,
// oldest first.
type DiscordState struct {
	Posts    []Record             `json:"posts"`
	Edits    []Record             `json:"edits"`
	Messages []discordapi.Message `json:"messages"`
}

func (d *discordWorld) state() DiscordState {
	d.mu.Lock()
	st := DiscordState{
		Posts: append([]Record{}, d.posts...),
		Edits: append([]Record{}, d.edits...),
	}
	ids := slices.Clone(d.messages)
	d.mu.Unlock()
	st.Messages = []discordapi.Message{}
	for _, id := range ids {
		if m, ok := d.store.Message(id); ok {
			st.Messages = append(st.Messages, m)
		}
	}
	return st
}

// discordCall is one webhook request being answered.
type discordCall struct {
	w       http.ResponseWriter
	buckets *discordapi.Buckets
	bucket  string // its bucket's name, once admitted to one
}

func (c *discordCall) headers() {
	if c.bucket != "" {
		c.buckets.SetHeaders(c.w.Header(), c.bucket, time.Now())
	}
}

// rateLimited is a storm's global 429 (no bucket headers), or a hidden
// per-webhook limit's 429 with the bucket's headers, which may well say
// requests remain (as Discord's do).
func (c *discordCall) rateLimited(d time.Duration, storm bool) int {
	if storm {
		return discordapi.WriteRateLimited(c.w, d, discordapi.ScopeGlobal, true)
	}
	c.headers()
	return discordapi.WriteRateLimited(c.w, d, discordapi.ScopeUser, false)
}

func (c *discordCall) overloaded() int {
	return discordapi.WriteServerError(c.w, http.StatusServiceUnavailable)
}

func (c *discordCall) serverError() int {
	return discordapi.WriteServerError(c.w, http.StatusInternalServerError)
}

// serveDiscord answers a webhook request: the token, a storm, the
// webhook's bucket, the drawn failures, slots and latency (gate), then the
// post, edit or read itself, recorded for GET /_sim/discord.
func (s *Sim) serveDiscord(w http.ResponseWriter, r *http.Request, p discordapi.Path) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, discordapi.MaxBody))
	u := s.ups[NameDiscord]
	rec := Record{At: time.Now(), WebhookID: p.WebhookID, MessageID: p.MessageID}
	var body discordapi.Payload
	if json.Unmarshal(raw, &body) == nil {
		rec.Content, rec.Embeds = body.Content, body.Embeds
	}
	posted := ""
	defer func() {
		if r.Method == http.MethodPost || r.Method == http.MethodPatch {
			s.discord.record(r.Method, rec, posted)
		}
	}()
	s.mu.Lock()
	switch r.Method {
	case http.MethodPost:
		u.posts++
	case http.MethodPatch:
		u.edits++
	}
	s.mu.Unlock()

	s.discord.mu.Lock()
	c := &discordCall{w: w, buckets: s.discord.buckets}
	s.discord.mu.Unlock()
	hook, tokenOK := s.discord.hook(p.WebhookID, p.Token)
	faulted := func(kind string, status int) {
		rec.Fault, rec.Status = kind, status
		s.failed(u, kind, status)
	}
	admit := func(Upstream) bool {
		if !tokenOK {
			rec.Status = discordapi.WriteError(w, http.StatusUnauthorized, discordapi.CodeInvalidWebhookToken, "Invalid Webhook Token")
			s.answered(u, rec.Status)
			return false
		}
		name, ok, wait := c.buckets.Take(hook.ID, time.Now())
		c.bucket = name
		if !ok {
			faulted(KindBucket, c.rateLimited(wait, false))
			return false
		}
		return true
	}
	release, _, fault, ok := s.gate(w, r, u, recording{c, &rec}, admit)
	if !ok {
		if rec.Fault == "" {
			rec.Fault = fault
		}
		return
	}
	release()
	switch fault {
	case Kind500:
		faulted(Kind500, c.serverError())
	case KindReset:
		rec.Fault = KindReset
		s.count(u, KindReset)
		llmapi.ResetConn(w)
	default:
		c.headers()
		status, msg := s.discord.store.Serve(w, hook, r, raw, p.MessageID)
		rec.Status = status
		if r.Method == http.MethodPost && msg.ID != "" {
			rec.MessageID, posted = msg.ID, msg.ID
		}
		s.answered(u, status)
	}
}

// recording is a discordCall's answerer that also notes, in the record,
// the status each failure was answered with.
type recording struct {
	c   *discordCall
	rec *Record
}

func (r recording) rateLimited(d time.Duration, storm bool) int {
	r.rec.Status = r.c.rateLimited(d, storm)
	return r.rec.Status
}

func (r recording) overloaded() int {
	r.rec.Status = r.c.overloaded()
	return r.rec.Status
}

func (r recording) serverError() int {
	r.rec.Status = r.c.serverError()
	return r.rec.Status
}
