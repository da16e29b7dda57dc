// Package notifier posts trading alerts to Discord channels through their
// webhooks. An alert is posted at once with the lexicon's preliminary
// verdict (Execute) and edited in place when a model's verdict comes
// (Edit), so that a trader sees it without waiting for the model.
//
// Client is the wire part: it speaks Discord's webhook API, stays within
// its rate limits (per-bucket headers, 429s whether global or not, a pace
// per webhook), retries what is worth retrying within the caller's
// deadline, and stops using a webhook that Discord says is gone. A webhook
// URL holds its token, which is a credential: it is kept in a
// secret.Secret, and logs and errors name a webhook by its channel Name
// only.
package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/upstream"
)

// Wire settings.
const (
	// apiVersion is always given: an unversioned /api path goes to
	// Discord's deprecated default version.
	apiVersion = "v10"
	// maxAttempts counts the tries of one call that a server failure (5xx,
	// a dropped connection) may take, the first included.
	maxAttempts = 3
	// maxRateLimited is how many 429s one call takes before it gives up,
	// so that a call without a deadline cannot loop on them for ever.
	maxRateLimited = 4
	backoffBase    = 500 * time.Millisecond
	backoffCap     = 5 * time.Second
	// paceEvery and paceBurst keep each webhook inside the 5 requests per
	// 2 s that Discord allows a webhook, before its headers say so.
	paceEvery = 400 * time.Millisecond
	paceBurst = 5
	// maxResponseBody caps what is read of an answer: a message object
	// is a few KiB.
	maxResponseBody = 1 << 20
	// maxWait bounds a wait read from an answer, so that a garbled header
	// cannot overflow a time.Duration.
	maxWait   = 24 * time.Hour
	userAgent = "DiscordBot (https://github.com/catalystbot/sentiment, 1)"
)

// Discord's JSON error codes that callers branch on.
const (
	CodeUnknownWebhook      = 10015 // 404: the webhook was deleted
	CodeUnknownMessage      = 10008 // 404: the message to edit was deleted
	CodeInvalidWebhookToken = 50027 // 401: the token was reset
	CodeEmptyMessage        = 50006 // 400: no content and no embeds
	CodeInvalidFormBody     = 50035 // 400: a field over its limit, or malformed
)

// Scopes of a RateLimitError: the first three are Discord's
// X-RateLimit-Scope of a 429, the last two are waits the client imposes
// before Discord has to say so.
const (
	ScopeUser    = "user"    // the route's own limit
	ScopeGlobal  = "global"  // every request from this address
	ScopeShared  = "shared"  // the resource's limit, shared with others
	ScopeBucket  = "bucket"  // the headers said the bucket was spent
	ScopeWebhook = "webhook" // the client's pace per webhook
)

// ErrBroken is the failure of a webhook that Discord answered 401 or 404:
// it was deleted or its token reset. It will not come back by itself, and
// Discord restricts clients that keep calling such a webhook, so every
// later call on it fails at once until the service is started with another
// configuration.
var ErrBroken = errors.New("discord webhook broken: deleted or token reset")

// RateLimitError is a rate-limit wait the call could not honour: it did not
// fit in the ctx's deadline (the request was then not sent), or Discord
// kept answering 429.
type RateLimitError struct {
	// RetryAfter is how long the wait was, from now.
	RetryAfter time.Duration
	// Global is set when the wait holds every request of the client.
	Global bool
	// Scope is one of the Scope constants.
	Scope string
}

func (e *RateLimitError) Error() string {
	kind := "rate limit"
	if e.Global {
		kind = "global rate limit"
	}
	if e.Scope != "" {
		kind += " (" + e.Scope + ")"
	}
	return fmt.Sprintf("discord %s: retry after %v", kind, e.RetryAfter)
}

// StatusError is a non-2xx answer other than 429: Discord's JSON error,
// or whatever a proxy in front of it sent.
type StatusError struct {
	Status int
	// Code is Discord's JSON error code (see the Code constants); 0 when
	// the body had none.
	Code int
	// Message is Discord's message, followed for a refused form by the
	// fields at fault ("Invalid Form Body (embeds.0.title: Must be 256 or
	// fewer in length.)"); a non-JSON body gives its title or first line.
	Message string
}

func (e *StatusError) Error() string {
	s := "discord http " + strconv.Itoa(e.Status)
	if e.Code != 0 {
		s += " (code " + strconv.Itoa(e.Code) + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Webhook is one configured channel's webhook. Its URL holds the token,
// which is never printed: fmt and slog show the Name only.
type Webhook struct {
	// Name is the configured channel name: what logs and errors call it.
	Name string

	base  string // scheme://host and any path prefix before /api
	id    string
	token secret.Secret
}

// Format prints the channel name only, whatever the verb: fmt would
// otherwise print the unexported token.
func (w Webhook) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "webhook "+strconv.Quote(w.Name))
}

// ID is the webhook's id: the number in .../webhooks/{id}/{token}. It is
// not a secret (the token is), and lets a client that holds a URL name
// its channel.
func (w *Webhook) ID() string { return w.id }

// LogValue keeps slog from printing the token.
func (w Webhook) LogValue() slog.Value { return slog.StringValue(w.Name) }

// key identifies the webhook in the client's state: the same id and token
// configured under two names are one webhook to Discord.
func (w *Webhook) key() string { return w.id + "/" + w.token.Reveal() }

var (
	// webhookPath is [prefix]/api[/vN]/webhooks/{snowflake}/{token}.
	webhookPath = regexp.MustCompile(`^(.*?)/api(?:/v\d{1,3})?/webhooks/(\d{1,20})/([A-Za-z0-9_-]{1,256})/?$`)
	snowflake   = regexp.MustCompile(`^\d{1,20}$`)
)

// discordHost reports whether host is one of Discord's own API hosts,
// which are reached over https only.
func discordHost(host string) bool {
	switch strings.ToLower(host) {
	case "discord.com", "discordapp.com", "canary.discord.com", "ptb.discord.com",
		"canary.discordapp.com", "ptb.discordapp.com":
		return true
	}
	return false
}

// ParseWebhook reads a webhook URL as Discord gives it,
// https://discord.com/api/webhooks/{id}/{token} (also on discordapp.com,
// the canary and ptb hosts, and with an API version in the path), or the
// same path on any http(s) host and port, for a simulator. A query, a
// fragment or user info is refused, so that nothing sent is left out
// silently. Errors name the channel, never the URL or the token.
func ParseWebhook(name string, rawURL secret.Secret) (*Webhook, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("discord webhook: empty channel name")
	}
	bad := func(why string) error { return fmt.Errorf("discord webhook %q: %s", name, why) }
	raw := strings.TrimSpace(rawURL.Reveal())
	if raw == "" {
		return nil, bad("empty URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, token included.
		return nil, bad("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, bad("the URL must start with https://")
	}
	if u.Hostname() == "" {
		return nil, bad("the URL has no host")
	}
	if u.User != nil {
		return nil, bad("the URL must not carry user info")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, bad("the URL must not carry a query or fragment")
	}
	m := webhookPath.FindStringSubmatch(u.EscapedPath())
	if m == nil {
		return nil, bad("the URL path must be /api/webhooks/{numeric id}/{token}")
	}
	if discordHost(u.Hostname()) {
		if u.Scheme != "https" {
			return nil, bad("Discord is reached over https only")
		}
		if m[1] != "" || (u.Port() != "" && u.Port() != "443") {
			return nil, bad("not a Discord webhook URL")
		}
	}
	return &Webhook{Name: name, base: u.Scheme + "://" + u.Host + m[1], id: m[2], token: secret.Secret(m[3])}, nil
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClock sets the clock that bucket reset times are read against
// (time.Now by default). Waiting itself uses timers, which
// testing/synctest makes virtual.
func WithClock(now func() time.Time) ClientOption {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithBaseURL sends every webhook's requests to u (scheme://host[:port],
// a simulator) instead of the host in its URL; empty keeps each webhook's
// own. A URL that is not http(s) with a host makes every call fail.
func WithBaseURL(u string) ClientOption {
	return func(c *Client) {
		c.base, c.baseErr = "", nil
		if u == "" {
			return
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
			c.baseErr = errors.New("the configured Discord base URL is not http(s)://host[:port]")
			return
		}
		c.base = strings.TrimSuffix(p.Scheme+"://"+p.Host+p.EscapedPath(), "/")
	}
}

// WithLogger sets the logger (none by default). It gets a warning when a
// webhook breaks, an info line for each 429 and each retry.
func WithLogger(l *slog.Logger) ClientOption {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// Client posts and edits webhook messages. It keeps Discord's rate-limit
// state for every webhook it has called, so one Client should serve the
// whole process. It is safe for concurrent use.
//
// Rate limits work in four layers, all checked before a request is sent
// and all bounded by the ctx's deadline (a wait that does not fit returns
// a *RateLimitError at once, and nothing is sent). A request waits for the
// longest of the first three, takes its slot of the pace, then counts
// itself against its bucket, waiting again if others spent it meanwhile:
//   - a global 429 holds every request of the client until it passes;
//   - a 429 on a webhook holds that webhook's requests, even when the
//     headers said requests remained (Discord's hidden limits);
//   - the X-RateLimit-* headers of every answer keep the state of the
//     bucket they name; a route whose bucket is spent waits for its reset.
//     Buckets are keyed by their name alone, because webhooks of one
//     server share one;
//   - each webhook is paced with a token bucket of 5, refilled every
//     400 ms, so a burst does not have to be refused first.
type Client struct {
	hc      *http.Client
	now     func() time.Time
	base    string
	baseErr error
	log     *slog.Logger
	// pace and burst shape each webhook's limiter; jitter draws a backoff
	// in [0, n). Tests change them.
	pace   rate.Limit
	burst  int
	jitter func(n int64) int64

	mu      sync.Mutex
	hooks   map[string]*hookState // by Webhook.key
	routes  map[string]string     // method and webhook key: the bucket it was last seen in
	buckets map[string]*bucket    // by X-RateLimit-Bucket
	global  time.Time             // a global 429 holds every request until then
}

// hookState is what the client knows of one webhook.
type hookState struct {
	lim *rate.Limiter
	// until holds the webhook's requests after a 429 on it, whose scope
	// was scope.
	until  time.Time
	scope  string
	broken bool
	reason string
}

// bucket is one rate-limit bucket as its latest answers described it.
type bucket struct {
	remaining int
	resetAt   time.Time
}

// NewClient returns a client sending through hc, which should come from
// upstream.NewHTTPClient: it has no timeout of its own, the ctx of each
// call bounds it. A nil hc is a plain http.Client.
func NewClient(hc *http.Client, opts ...ClientOption) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	c := &Client{
		hc:      hc,
		now:     time.Now,
		log:     slog.New(slog.DiscardHandler),
		pace:    rate.Every(paceEvery),
		burst:   paceBurst,
		jitter:  rand.Int64N,
		hooks:   make(map[string]*hookState),
		routes:  make(map[string]string),
		buckets: make(map[string]*bucket),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// allowedMentions stops every ping: a headline quoting "@everyone" must not
// notify a whole server.
type allowedMentions struct {
	Parse []string `json:"parse"`
}

var noMentions = allowedMentions{Parse: []string{}}

type executeBody struct {
	Content         string          `json:"content,omitempty"`
	Embeds          []Embed         `json:"embeds,omitempty"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
}

// editBody always carries content and embeds: an edit replaces the whole
// message, and a field left out would keep its old value.
type editBody struct {
	Content         string          `json:"content"`
	Embeds          []Embed         `json:"embeds"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
}

// Execute posts m (cut to Discord's limits by Fit) through w and returns
// the new message's id, for Edit. It waits for Discord to save the message
// (wait=true): without that there is no id, and a message Discord failed
// to save would go unnoticed.
//
// A server failure is retried, 3 attempts in all; Discord may then hold
// the message twice, which beats an alert never posted.
func (c *Client) Execute(ctx context.Context, w *Webhook, m Message) (messageID string, err error) {
	m.Fit()
	body, err := json.Marshal(executeBody{Content: m.Content, Embeds: m.Embeds, AllowedMentions: noMentions})
	if err != nil {
		return "", err
	}
	const op = "posting message"
	resp, err := c.do(ctx, w, op, http.MethodPost, "?wait=true", body)
	if err != nil {
		return "", err
	}
	var msg struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp, &msg); err != nil || !snowflake.MatchString(msg.ID) {
		return "", fmt.Errorf("discord channel %q: %s: the answer holds no message id", w.Name, op)
	}
	return msg.ID, nil
}

// Edit replaces the message messageID, posted through w, with m (cut by
// Fit): its content and all its embeds. A message deleted in the meantime
// fails with a *StatusError of code CodeUnknownMessage; post a new one.
func (c *Client) Edit(ctx context.Context, w *Webhook, messageID string, m Message) error {
	const op = "editing message"
	if w != nil && !snowflake.MatchString(messageID) {
		return fmt.Errorf("discord channel %q: %s: message id %q is not a snowflake", w.Name, op, messageID)
	}
	m.Fit()
	if m.Embeds == nil {
		m.Embeds = []Embed{}
	}
	body, err := json.Marshal(editBody{Content: m.Content, Embeds: m.Embeds, AllowedMentions: noMentions})
	if err != nil {
		return err
	}
	_, err = c.do(ctx, w, op, http.MethodPatch, "/messages/"+messageID, body)
	return err
}

// Broken reports whether w was found deleted or its token reset, and what
// Discord said.
func (c *Client) Broken(w *Webhook) (bool, string) {
	if w == nil {
		return false, ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if hs := c.hooks[w.key()]; hs != nil && hs.broken {
		return true, hs.reason
	}
	return false, ""
}

// do sends one request to w's webhook URL followed by suffix, within the
// rate limits, retrying 429s and server failures, and returns the 2xx
// body.
func (c *Client) do(ctx context.Context, w *Webhook, op, method, suffix string, body []byte) ([]byte, error) {
	if w == nil {
		return nil, fmt.Errorf("discord: %s: no webhook", op)
	}
	fail := func(err error) error { return fmt.Errorf("discord channel %q: %s: %w", w.Name, op, err) }
	if c.baseErr != nil {
		return nil, fail(c.baseErr)
	}
	if w.id == "" {
		return nil, fail(errors.New("webhook not made by ParseWebhook"))
	}
	base := w.base
	if c.base != "" {
		base = c.base
	}
	target := base + "/api/" + apiVersion + "/webhooks/" + w.id + "/" + w.token.Reveal() + suffix
	route := method + " " + w.key()
	hs := c.hook(w)

	failures, limited := 0, 0
	// retry waits out a backoff after a server failure; it returns the
	// error to give up with, or nil to try again.
	retry := func(err error) error {
		failures++
		if failures >= maxAttempts {
			return fmt.Errorf("%d attempts: %w", failures, err)
		}
		d := c.backoff(failures)
		if !fits(ctx, d) {
			return fmt.Errorf("attempt %d would pass the deadline: %w", failures+1, err)
		}
		c.log.Info("discord request failed; retrying", "channel", w.Name, "op", op,
			"attempt", failures, "backoff", d, "error", err.Error())
		if serr := sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w (after: %w)", serr, err)
		}
		return nil
	}
	for {
		if err := c.brokenErr(hs); err != nil {
			return nil, fail(err)
		}
		if err := c.acquire(ctx, hs, route); err != nil {
			return nil, fail(err)
		}
		// Another call may have found the webhook gone while this one
		// waited.
		if err := c.brokenErr(hs); err != nil {
			return nil, fail(err)
		}
		status, hdr, resp, err := c.send(ctx, method, target, body, w.token.Reveal())
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, fail(ctxErr)
			}
			if err := retry(err); err != nil {
				return nil, fail(err)
			}
			continue
		}
		c.observe(route, hdr)
		switch {
		case status >= 200 && status <= 299:
			return resp, nil
		case status == http.StatusTooManyRequests:
			rl := c.rateLimited(w, hs, hdr, resp)
			if limited++; limited >= maxRateLimited {
				return nil, fail(rl)
			}
		case status >= 500:
			if err := retry(statusError(status, resp, w.token.Reveal())); err != nil {
				return nil, fail(err)
			}
		default:
			se := statusError(status, resp, w.token.Reveal())
			if status == http.StatusUnauthorized || (status == http.StatusNotFound && se.Code != CodeUnknownMessage) {
				c.markBroken(w, hs, se)
				return nil, fail(fmt.Errorf("%w: %w", ErrBroken, se))
			}
			return nil, fail(se)
		}
	}
}

// hook returns w's state, made on first use.
func (c *Client) hook(w *Webhook) *hookState {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := w.key()
	hs := c.hooks[k]
	if hs == nil {
		hs = &hookState{lim: rate.NewLimiter(c.pace, c.burst)}
		c.hooks[k] = hs
	}
	return hs
}

func (c *Client) brokenErr(hs *hookState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hs.broken {
		return fmt.Errorf("%w (%s)", ErrBroken, hs.reason)
	}
	return nil
}

// markBroken marks the webhook broken; only the first failure is logged,
// however many calls were in flight.
func (c *Client) markBroken(w *Webhook, hs *hookState, se *StatusError) {
	c.mu.Lock()
	first := !hs.broken
	if first {
		hs.broken, hs.reason = true, se.Error()
	}
	c.mu.Unlock()
	if first {
		c.log.Warn("discord webhook deleted or its token reset; alerts to this channel fail until it is configured anew",
			"channel", w.Name, "status", se.Status, "code", se.Code, "message", se.Message)
	}
}

// acquire waits until route may send: past any 429's wait and its
// bucket's reset, and within the webhook's pace. A wait that does not fit
// in ctx's deadline returns a *RateLimitError at once; the pacing slot
// reserved for a request that is not sent is given back.
func (c *Client) acquire(ctx context.Context, hs *hookState, route string) error {
	if wait, rl := c.gate(hs, route, false); wait > 0 && !fits(ctx, wait) {
		return rl
	}
	res := hs.lim.Reserve()
	if d := res.Delay(); d > 0 {
		if !fits(ctx, d) {
			res.Cancel()
			return &RateLimitError{RetryAfter: d, Scope: ScopeWebhook}
		}
		if err := sleep(ctx, d); err != nil {
			res.Cancel()
			return err
		}
	}
	for {
		wait, rl := c.gate(hs, route, true)
		if wait <= 0 {
			return nil
		}
		if !fits(ctx, wait) {
			res.Cancel()
			return rl
		}
		if err := sleep(ctx, wait); err != nil {
			res.Cancel()
			return err
		}
	}
}

// gate returns how long route must still wait, and the error that says
// why; when it need not wait and take is set, it counts the request
// against the bucket, so that concurrent calls do not overrun it before
// their answers come back.
func (c *Client) gate(hs *hookState, route string, take bool) (time.Duration, *RateLimitError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var (
		wait time.Duration
		why  RateLimitError
	)
	consider := func(until time.Time, e RateLimitError) {
		if d := until.Sub(now); d > wait {
			wait, why = d, e
		}
	}
	consider(c.global, RateLimitError{Global: true, Scope: ScopeGlobal})
	consider(hs.until, RateLimitError{Scope: hs.scope})
	b := c.buckets[c.routes[route]]
	live := b != nil && now.Before(b.resetAt)
	if live && b.remaining <= 0 {
		consider(b.resetAt, RateLimitError{Scope: ScopeBucket})
	}
	if wait > 0 {
		why.RetryAfter = wait
		return wait, &why
	}
	if take && live {
		b.remaining--
	}
	return 0, nil
}

// observe reads the rate-limit headers of an answer into the state of the
// bucket they name. Answers may come back out of order: within one window
// the lowest remaining count wins; a window is replaced once its reset has
// passed.
func (c *Client) observe(route string, h http.Header) {
	name := h.Get("X-RateLimit-Bucket")
	if name == "" {
		return
	}
	remaining, err1 := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	after := seconds(h.Get("X-RateLimit-Reset-After"))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.routes[route] = name
	if err1 != nil || after <= 0 {
		return
	}
	now := c.now()
	reset := now.Add(after)
	b := c.buckets[name]
	switch {
	case b == nil:
		c.buckets[name] = &bucket{remaining: remaining, resetAt: reset}
	case !now.Before(b.resetAt):
		b.remaining, b.resetAt = remaining, reset
	default:
		b.remaining = min(b.remaining, remaining)
		if reset.After(b.resetAt) {
			b.resetAt = reset
		}
	}
}

// rateLimited records a 429's wait: on the whole client when global, else
// on the webhook. The wait is the body's retry_after (fractional
// seconds), else the Retry-After header, else the bucket's reset, else a
// second.
func (c *Client) rateLimited(w *Webhook, hs *hookState, h http.Header, body []byte) *RateLimitError {
	var b struct {
		Message    string  `json:"message"`
		RetryAfter float64 `json:"retry_after"`
		Global     bool    `json:"global"`
	}
	_ = json.Unmarshal(body, &b)
	wait := secondsOf(b.RetryAfter)
	if wait <= 0 {
		wait = seconds(h.Get("Retry-After"))
	}
	if wait <= 0 {
		wait = seconds(h.Get("X-RateLimit-Reset-After"))
	}
	if wait <= 0 {
		wait = time.Second
	}
	global := b.Global || strings.EqualFold(strings.TrimSpace(h.Get("X-RateLimit-Global")), "true")
	scope := strings.ToLower(strings.TrimSpace(h.Get("X-RateLimit-Scope")))
	switch {
	case global:
		scope = ScopeGlobal
	case scope == "":
		scope = ScopeUser
	}
	c.mu.Lock()
	until := c.now().Add(wait)
	if global {
		if until.After(c.global) {
			c.global = until
		}
	} else if until.After(hs.until) {
		hs.until, hs.scope = until, scope
	}
	c.mu.Unlock()
	c.log.Info("discord rate limited", "channel", w.Name, "scope", scope, "global", global, "retry_after", wait)
	return &RateLimitError{RetryAfter: wait, Global: global, Scope: scope}
}

// send makes one request and reads its answer. Its errors never hold the
// URL: net/http's *url.Error quotes it, token and all.
func (c *Client) send(ctx context.Context, method, target string, body []byte, token string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, errors.New("building the request: the webhook URL does not parse")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, scrub(err, token)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return 0, nil, nil, scrub(err, token)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// scrub drops the *url.Error layer and, should the token still show (a
// proxy echoing the path), replaces the message, losing the chain: the
// price of never leaking it.
func scrub(err error, token string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if msg := err.Error(); token != "" && strings.Contains(msg, token) {
		return errors.New(strings.ReplaceAll(msg, token, secret.Redacted))
	}
	return err
}

// statusError reads a non-2xx answer: Discord's {code, message, errors}
// or, from a proxy, an HTML page or plain text.
func statusError(status int, body []byte, token string) *StatusError {
	e := &StatusError{Status: status}
	var b struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Errors  map[string]any `json:"errors"`
	}
	if json.Unmarshal(body, &b) == nil && (b.Message != "" || b.Code != 0) {
		e.Code, e.Message = b.Code, b.Message
		if fields := formErrors(b.Errors, "", nil); len(fields) > 0 {
			e.Message += " (" + strings.Join(fields[:min(len(fields), 3)], "; ") + ")"
		}
	} else {
		e.Message = plainMessage(string(body))
	}
	if token != "" {
		e.Message = strings.ReplaceAll(e.Message, token, secret.Redacted)
	}
	e.Message = upstream.Clip(e.Message)
	return e
}

// formErrors flattens Discord's errors tree into "path: message" lines,
// in a stable order.
func formErrors(tree map[string]any, path string, out []string) []string {
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch v := tree[k].(type) {
		case []any:
			if k != "_errors" {
				continue
			}
			for _, item := range v {
				if m, ok := item.(map[string]any); ok {
					msg, _ := m["message"].(string)
					out = append(out, path+": "+msg)
				}
			}
		case map[string]any:
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = formErrors(v, p, out)
		}
	}
	return out
}

// plainMessage is an HTML page's title, or a text's first non-empty line.
func plainMessage(s string) string {
	if i := strings.Index(strings.ToLower(s), "<title>"); i >= 0 {
		rest := s[i+len("<title>"):]
		if j := strings.Index(strings.ToLower(rest), "</title>"); j >= 0 {
			return strings.TrimSpace(rest[:j])
		}
	}
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// backoff is the wait before attempt n+1: full jitter over an exponential
// ceiling, so that clients failing together do not retry together.
func (c *Client) backoff(n int) time.Duration {
	ceil := min(backoffCap, backoffBase<<(n-1))
	return time.Duration(c.jitter(int64(ceil)))
}

// seconds reads a header's count of seconds, fractional or not; missing,
// malformed or negative is 0.
func seconds(v string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0
	}
	return secondsOf(f)
}

func secondsOf(f float64) time.Duration {
	switch {
	case math.IsNaN(f) || f <= 0:
		return 0
	case f >= maxWait.Seconds():
		return maxWait
	}
	return time.Duration(f * float64(time.Second))
}

// fits reports whether waiting d still leaves time before ctx's deadline
// to send a request.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// sleep waits d on a timer, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
