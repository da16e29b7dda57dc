// Package discordapi is the server side of the Discord webhook endpoints
// the notifier calls, as Discord answers them:
//
//	POST   /api[/vN]/webhooks/{id}/{token}?wait=true        200 + message (204 without wait)
//	PATCH  /api[/vN]/webhooks/{id}/{token}/messages/{mid}   200 + message
//	GET    /api[/vN]/webhooks/{id}/{token}/messages/{mid}   200 + message
//	DELETE /api[/vN]/webhooks/{id}/{token}/messages/{mid}   204
//
// It holds the message objects (Store), checks bodies as Discord does (an
// empty message is 400 code 50006, a text over Discord's limits, counted in
// runes after trimming, is 400 code 50035 with the errors tree), keeps the
// rate-limit buckets and writes their X-RateLimit-* headers (Buckets), and
// writes Discord's 429 and server-error answers.
//
// It exists so that the tests' fake Discord (internal/discordtest) and the
// simulator (cmd/llmsim) share one implementation of the format; what to
// answer when (a script, a storm, a webhook that was deleted) is theirs.
package discordapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The default bucket of a webhook: Discord's 5 requests per 2 s.
const (
	DefaultLimit      = 5
	DefaultResetAfter = 2 * time.Second
)

// Discord's error codes.
const (
	CodeUnknownWebhook      = 10015
	CodeUnknownMessage      = 10008
	CodeInvalidWebhookToken = 50027
	CodeEmptyMessage        = 50006
	CodeInvalidFormBody     = 50035
	CodeInvalidJSON         = 50109
)

// Scopes of a 429, as Discord's X-RateLimit-Scope names them.
const (
	ScopeUser   = "user"
	ScopeGlobal = "global"
	ScopeShared = "shared"
)

// MaxBody caps a request body read, as Discord caps uploads.
const MaxBody = 25 << 20

// firstSnowflake is where a Store's ids start: a plausible 2024
// snowflake, so that ids look like Discord's.
const firstSnowflake = 1_230_000_000_000_000_000

var route = regexp.MustCompile(`^/api(?:/v\d+)?/webhooks/([^/]+)/([^/]+)(?:/messages/([^/]+))?/?$`)

// Path is what a webhook URL path names.
type Path struct {
	WebhookID, Token string
	// MessageID is empty for an execute (POST to the webhook itself).
	MessageID string
}

// ParsePath reads /api[/vN]/webhooks/{id}/{token}[/messages/{mid}]; ok is
// false for any other path.
func ParsePath(path string) (p Path, ok bool) {
	m := route.FindStringSubmatch(path)
	if m == nil {
		return Path{}, false
	}
	return Path{WebhookID: m[1], Token: m[2], MessageID: m[3]}, true
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

// Message is Discord's message object.
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

// Clone returns a copy of m that shares nothing mutable with it.
func (m Message) Clone() Message {
	m.Embeds = CloneEmbeds(m.Embeds)
	if m.EditedTimestamp != nil {
		t := *m.EditedTimestamp
		m.EditedTimestamp = &t
	}
	return m
}

// CloneEmbeds returns a deep copy of es (nil stays nil).
func CloneEmbeds(es []Embed) []Embed {
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

// Hook is the webhook a request reached: its id and the channel it posts
// in.
type Hook struct {
	ID, ChannelID string
}

// Store is a Discord's messages, and the snowflakes it hands out. It is
// safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	next     uint64
	messages map[string]*Message
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{next: firstSnowflake, messages: make(map[string]*Message)}
}

// Snowflake returns a new id, for a message or a channel.
func (s *Store) Snowflake() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snowflakeLocked()
}

func (s *Store) snowflakeLocked() string {
	s.next++
	return strconv.FormatUint(s.next, 10)
}

// Messages returns the messages held now, by id.
func (s *Store) Messages() map[string]Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Message, len(s.messages))
	for id, m := range s.messages {
		out[id] = m.Clone()
	}
	return out
}

// Message returns message id as held now.
func (s *Store) Message(id string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[id]
	if !ok {
		return Message{}, false
	}
	return m.Clone(), true
}

// Delete forgets message id, as DELETE on it does.
func (s *Store) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.messages, id)
}

// Serve answers an execute, edit, read or delete through webhook h, as
// Discord does once the webhook and its rate limits have let the request
// through: it checks the body (raw, as sent), stores or changes the
// message, and writes the answer. It returns the status written and the
// message concerned (zero when none was found or made). The caller sets
// the bucket's headers first (Buckets.SetHeaders).
func (s *Store) Serve(w http.ResponseWriter, h Hook, r *http.Request, raw []byte, messageID string) (int, Message) {
	switch {
	case messageID == "" && r.Method == http.MethodPost:
		p, status := checkBody(w, r, raw)
		if status != 0 {
			return status, Message{}
		}
		s.mu.Lock()
		msg := &Message{
			ID: s.snowflakeLocked(), ChannelID: h.ChannelID, WebhookID: h.ID,
			Author:      User{ID: h.ID, Username: "Captain Hook", Bot: true},
			Attachments: []any{}, Embeds: []Embed{}, Mentions: []any{}, MentionRoles: []string{}, Components: []any{},
			Timestamp: discordTime(time.Now()),
		}
		if p.Content != nil {
			msg.Content = *p.Content
		}
		if p.Embeds != nil {
			msg.Embeds = richEmbeds(*p.Embeds)
		}
		s.messages[msg.ID] = msg
		out := msg.Clone()
		s.mu.Unlock()
		if !truthy(r.URL.Query().Get("wait")) {
			w.WriteHeader(http.StatusNoContent)
			return http.StatusNoContent, out
		}
		return writeJSON(w, http.StatusOK, out), out
	case messageID != "" && (r.Method == http.MethodPatch || r.Method == http.MethodGet || r.Method == http.MethodDelete):
		s.mu.Lock()
		msg, ok := s.messages[messageID]
		ok = ok && msg.WebhookID == h.ID
		s.mu.Unlock()
		if !ok {
			return WriteError(w, http.StatusNotFound, CodeUnknownMessage, "Unknown Message"), Message{}
		}
		switch r.Method {
		case http.MethodDelete:
			s.Delete(messageID)
			w.WriteHeader(http.StatusNoContent)
			return http.StatusNoContent, Message{}
		case http.MethodPatch:
			p, status := checkBody(w, r, raw)
			if status != 0 {
				return status, Message{}
			}
			s.mu.Lock()
			content, embeds := msg.Content, msg.Embeds
			if p.Content != nil {
				content = *p.Content
			}
			if p.Embeds != nil {
				embeds = richEmbeds(*p.Embeds)
			}
			if strings.TrimSpace(content) == "" && len(embeds) == 0 {
				s.mu.Unlock()
				return WriteError(w, http.StatusBadRequest, CodeEmptyMessage, "Cannot send an empty message"), Message{}
			}
			edited := discordTime(time.Now())
			msg.Content, msg.Embeds, msg.EditedTimestamp = content, embeds, &edited
			s.mu.Unlock()
		}
		s.mu.Lock()
		out := msg.Clone()
		s.mu.Unlock()
		return writeJSON(w, http.StatusOK, out), out
	}
	return WriteError(w, http.StatusMethodNotAllowed, 0, "405: Method Not Allowed"), Message{}
}

// checkBody decodes the body and, when it is not what Discord accepts
// (JSON in valid UTF-8, not empty on a post, within the limits), writes the
// 400 and returns its status.
func checkBody(w http.ResponseWriter, r *http.Request, raw []byte) (Payload, int) {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		// Discord reads any other body as a form with no payload in it.
		return Payload{}, WriteError(w, http.StatusBadRequest, CodeEmptyMessage, "Cannot send an empty message")
	}
	var probe map[string]json.RawMessage
	if !utf8.Valid(raw) || json.Unmarshal(raw, &probe) != nil {
		return Payload{}, WriteError(w, http.StatusBadRequest, CodeInvalidJSON, "The request body contains invalid JSON.")
	}
	var p Payload
	_ = json.Unmarshal(raw, &p)
	if r.Method == http.MethodPost && (p.Content == nil || strings.TrimSpace(*p.Content) == "") && (p.Embeds == nil || len(*p.Embeds) == 0) {
		return p, WriteError(w, http.StatusBadRequest, CodeEmptyMessage, "Cannot send an empty message")
	}
	if tree := FormErrors(p); tree != nil {
		return p, writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Invalid Form Body", "code": CodeInvalidFormBody, "errors": tree})
	}
	return p, 0
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
	out := CloneEmbeds(es)
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

// WriteError writes Discord's JSON error {message, code} with status and
// returns the status.
func WriteError(w http.ResponseWriter, status, code int, message string) int {
	return writeJSON(w, status, map[string]any{"message": message, "code": code})
}

// WriteRateLimited writes Discord's 429: X-RateLimit-Scope, Retry-After in
// whole seconds (rounded up), X-RateLimit-Global on a global one, and the
// body with retry_after in fractional seconds. The bucket's headers, which
// a per-webhook 429 also carries, are the caller's to set first.
func WriteRateLimited(w http.ResponseWriter, retryAfter time.Duration, scope string, global bool) int {
	h := w.Header()
	if global {
		h.Set("X-RateLimit-Global", "true")
	}
	h.Set("X-RateLimit-Scope", scope)
	h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	return writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"message":     "You are being rate limited.",
		"retry_after": math.Round(retryAfter.Seconds()*1000) / 1000,
		"global":      global,
	})
}

// WriteServerError writes status as Discord's edge does: 500 with
// Discord's JSON, 502 with Cloudflare's HTML page, 503 and 504 with the
// proxy's plain text, others with a JSON status message; no rate-limit
// headers. It returns the status.
func WriteServerError(w http.ResponseWriter, status int) int {
	switch status {
	case http.StatusBadGateway:
		return WriteRaw(w, status, "text/html", []byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"+
			"<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"))
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return WriteRaw(w, status, "text/plain", []byte("upstream connect error or disconnect/reset before headers. reset reason: connection termination"))
	}
	return writeJSON(w, status, map[string]any{"message": fmt.Sprintf("%d: %s", status, http.StatusText(status)), "code": 0})
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("discordapi: encoding a body: %v", err))
	}
	return WriteRaw(w, status, "application/json", b)
}

// WriteRaw writes status with exactly this body and content type, and
// returns the status.
func WriteRaw(w http.ResponseWriter, status int, contentType string, b []byte) int {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return status
}
