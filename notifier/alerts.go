package notifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/secret"
)

// Config is the alert policy.
type Config struct {
	// Webhooks maps a channel name to its webhook URL
	// (SENTIMENT_DISCORD_WEBHOOKS). Callers name channels; they never
	// supply a URL.
	Webhooks map[string]secret.Secret
	// DefaultChannel answers an alert that names no channel
	// (SENTIMENT_ALERT_CHANNEL); empty requires a channel.
	DefaultChannel string
	// Timeout is how long a preliminary alert waits for its final answer
	// before it is edited to say the analysis timed out
	// (SENTIMENT_ALERT_TIMEOUT).
	Timeout time.Duration
	// DedupeTTL is how long an item alerts at most once on a channel;
	// DedupeMax bounds the items remembered in memory.
	DedupeTTL time.Duration
	DedupeMax int
	// RedisPrefix prefixes the dedupe keys when a Redis client is given.
	RedisPrefix string
}

// Defaults of the policy settings Config leaves zero.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultDedupeTTL = 24 * time.Hour
	DefaultDedupeMax = 100_000
	// lastEditWait bounds the timeout edits sent at shutdown, once the
	// grace has run out.
	lastEditWait = 5 * time.Second
	// judgeSlack lets an Alert's own judgement run a little past the
	// alert's timeout, so that the timeout, not a judgement cut short
	// by its deadline, decides what a slow model's alert says.
	judgeSlack = time.Second
)

// Clock is the time alerts are stamped and timed out by.
type Clock interface {
	Now() time.Time
	After(time.Duration) <-chan time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time                         { return time.Now() }
func (wallClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option adjusts a Notifier.
type Option func(*Notifier)

// WithAlertClock replaces the clock alerts are timed out by.
func WithAlertClock(c Clock) Option { return func(n *Notifier) { n.clock = c } }

// WithRedis makes an item alert once per channel across every replica
// sharing rdb (SET NX), instead of once per process.
func WithRedis(rdb redis.UniversalClient) Option { return func(n *Notifier) { n.rdb = rdb } }

// Judge is the request path: the pipeline.
type Judge interface {
	Judge(ctx context.Context, req pipeline.Request, also ...pipeline.Listener) (pipeline.Answer, error)
}

// Notifier posts progressive alerts: the preliminary post right after the
// prescore, then an edit of the same message with the final answer, or
// with the timeout text when none comes in time. It hears the Classify
// and ClassifyBatch calls that ask for an alert as a pipeline listener
// (Listen), and serves the Alert RPC (Alert).
type Notifier struct {
	cfg    Config
	client *Client
	hooks  map[string]*Webhook
	clock  Clock
	log    *slog.Logger
	rdb    redis.UniversalClient
	seen   *ledger

	mu sync.Mutex
	// byRequest finds, for a Classify call's final event, the alert its
	// preliminary event opened.
	byRequest map[*pipeline.Request]*alert
	// pending counts the alerts between their call and their last edit;
	// idle, when someone waits, is closed as it reaches zero.
	pending int
	idle    chan struct{}
	// stop is closed when shutdown's grace runs out: pending alerts are
	// edited to the timeout text at once.
	stop     chan struct{}
	stopOnce sync.Once

	stats counters
}

type counters struct {
	posted, complete, edited, timedOut, duplicates, notices atomic.Uint64
	mu                                                      sync.Mutex
	failed                                                  map[string]uint64
}

// New builds the notifier for the configured channels; each webhook URL
// must be a Discord webhook.
func New(cfg Config, client *Client, log *slog.Logger, opts ...Option) (*Notifier, error) {
	if client == nil {
		return nil, errors.New("notifier: a webhook client is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.DedupeTTL <= 0 {
		cfg.DedupeTTL = DefaultDedupeTTL
	}
	if cfg.DedupeMax <= 0 {
		cfg.DedupeMax = DefaultDedupeMax
	}
	n := &Notifier{
		cfg:       cfg,
		client:    client,
		hooks:     make(map[string]*Webhook, len(cfg.Webhooks)),
		clock:     wallClock{},
		log:       log,
		byRequest: make(map[*pipeline.Request]*alert),
		stop:      make(chan struct{}),
	}
	n.stats.failed = make(map[string]uint64)
	for name, url := range cfg.Webhooks {
		w, err := ParseWebhook(name, url)
		if err != nil {
			return nil, err
		}
		n.hooks[name] = w
	}
	if cfg.DefaultChannel != "" && n.hooks[cfg.DefaultChannel] == nil {
		return nil, fmt.Errorf("notifier: the default channel %q is not among the configured channels (%s)", cfg.DefaultChannel, n.channelList())
	}
	for _, o := range opts {
		o(n)
	}
	n.seen = newLedger(cfg.DedupeMax, cfg.DedupeTTL, n.clock.Now)
	return n, nil
}

func (n *Notifier) channelList() string {
	if len(n.hooks) == 0 {
		return "none are configured: set SENTIMENT_DISCORD_WEBHOOKS"
	}
	return strings.Join(slices.Sorted(maps.Keys(n.hooks)), ", ")
}

// Channel resolves an alert's channel name (empty: the default channel).
// A name not configured is a *pipeline.FieldError on field.
func (n *Notifier) Channel(field, name string) (string, *pipeline.FieldError) {
	if name == "" {
		if n.cfg.DefaultChannel == "" {
			return "", &pipeline.FieldError{Field: field, Msg: "is required: no SENTIMENT_ALERT_CHANNEL is set; configured channels: " + n.channelList()}
		}
		return n.cfg.DefaultChannel, nil
	}
	if n.hooks[name] == nil {
		return "", &pipeline.FieldError{Field: field, Msg: fmt.Sprintf("%q is not a configured channel; configured: %s", name, n.channelList())}
	}
	return name, nil
}

// Result is what an Alert call returns once the preliminary post exists.
type Result struct {
	Channel   string
	MessageID string
	// Preliminary is the lexicon's answer the post shows.
	Preliminary pipeline.Answer
	// Duplicate is set when the item had already alerted on the channel:
	// MessageID is the first alert's (empty while its post is on its
	// way), and nothing was posted or judged.
	Duplicate bool
	// Complete is set when the post carried the final answer already: no
	// edit follows.
	Complete bool
}

// PostError is an Alert whose preliminary post failed: Kind is one of the
// failure kinds Stats counts ("broken", "rate_limited", ...).
type PostError struct {
	Channel string
	Kind    string
	Err     error
}

func (e *PostError) Error() string {
	return fmt.Sprintf("posting the alert to channel %q: %v", e.Channel, e.Err)
}

func (e *PostError) Unwrap() error { return e.Err }

// ErrStopping refuses alerts once shutdown's grace has run out.
var ErrStopping = errors.New("the server is shutting down: no new alerts are taken")

// Alert posts the preliminary alert for req on its channel
// (req.Options.Alert, resolved by Channel) and returns as soon as the
// post exists. The judgement and the edit go on in the background, under
// the alert's own deadline, whether or not the caller stays: ctx bounds
// only the wait for the post.
func (n *Notifier) Alert(ctx context.Context, judge Judge, req pipeline.Request) (Result, error) {
	al := req.Options.Alert
	if al == nil || n.hooks[al.Channel] == nil {
		return Result{}, fmt.Errorf("notifier: alert on an unresolved channel")
	}
	if n.stopped() {
		return Result{}, ErrStopping
	}
	if broken, why := n.client.Broken(n.hooks[al.Channel]); broken {
		n.countFailed("broken")
		return Result{}, &PostError{Channel: al.Channel, Kind: "broken", Err: fmt.Errorf("%w: %s", ErrBroken, why)}
	}
	a := n.open(req.Item, *al)
	if first, id := n.claim(ctx, a); !first {
		n.stats.duplicates.Add(1)
		return Result{Channel: al.Channel, MessageID: id, Duplicate: true}, nil
	}
	// The pipeline must not hear this alert as a Classify call's: the
	// listener would open a second one.
	req.Options.Alert = nil
	jctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout+judgeSlack)
	a.cancel = cancel
	n.track()
	go func() {
		defer cancel()
		_, err := judge.Judge(jctx, req, func(_ context.Context, ev pipeline.Event) { a.hear(ev) })
		if err != nil {
			// No final event follows a call refused before its prescore.
			a.hear(pipeline.Event{Request: &req, Err: err})
		}
	}()
	go n.run(a)
	select {
	case <-a.posted:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if a.postErr != nil {
		return Result{}, a.postErr
	}
	return Result{Channel: al.Channel, MessageID: a.id, Preliminary: a.pre, Complete: a.complete}, nil
}

// Listen is the pipeline listener for Classify and ClassifyBatch calls
// that ask for an alert: the preliminary event opens the alert and posts
// it in the background; the final event completes it. It never blocks
// the call.
func (n *Notifier) Listen(_ context.Context, ev pipeline.Event) {
	if ev.Request == nil || ev.Request.Options.Alert == nil {
		return
	}
	if ev.Answer.Phase == pipeline.PhasePreliminary && ev.Err == nil {
		if n.stopped() {
			return
		}
		a := n.open(ev.Request.Item, *ev.Request.Options.Alert)
		a.unclaimed, a.req = true, ev.Request
		a.hear(ev)
		n.mu.Lock()
		n.byRequest[ev.Request] = a
		n.mu.Unlock()
		n.track()
		go n.run(a)
		return
	}
	n.mu.Lock()
	a := n.byRequest[ev.Request]
	delete(n.byRequest, ev.Request)
	n.mu.Unlock()
	if a != nil {
		a.hear(ev)
	}
}

// alert is one progressive alert, from the call to its last edit.
type alert struct {
	item    pipeline.Item
	opts    pipeline.Alert
	hook    *Webhook
	key     string
	started time.Time
	// unclaimed is set for a Classify call's alert: the dedupe claim is
	// made in the background, off the caller's path. req is the call's
	// request, its key in the listener's index.
	unclaimed bool
	req       *pipeline.Request
	cancel    context.CancelFunc

	preCh, finalCh chan pipeline.Event

	// posted is closed once the preliminary post is made or has failed;
	// id, pre and postErr are set before.
	posted   chan struct{}
	id       string
	pre      pipeline.Answer
	postErr  *PostError
	complete bool
}

func (n *Notifier) open(it pipeline.Item, al pipeline.Alert) *alert {
	return &alert{
		item:    it,
		opts:    al,
		hook:    n.hooks[al.Channel],
		key:     dedupeKey(al.Channel, it),
		started: n.clock.Now(),
		preCh:   make(chan pipeline.Event, 1),
		finalCh: make(chan pipeline.Event, 1),
		posted:  make(chan struct{}),
	}
}

// hear takes the judgement's events: the preliminary one, then the final
// one. Neither blocks: each is sent once.
func (a *alert) hear(ev pipeline.Event) {
	ch := a.finalCh
	if ev.Err == nil && ev.Answer.Phase == pipeline.PhasePreliminary {
		ch = a.preCh
	}
	select {
	case ch <- ev:
	default:
	}
}

// dedupeKey names an item on a channel: its id, or without one its
// ticker and headline.
func dedupeKey(channel string, it pipeline.Item) string {
	h := sha256.New()
	h.Write([]byte(channel))
	h.Write([]byte{0})
	if it.ID != "" {
		h.Write([]byte("id\x00" + it.ID))
	} else {
		h.Write([]byte("text\x00" + strings.ToUpper(it.Ticker) + "\x00" + strings.TrimSpace(it.Title)))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (n *Notifier) track() {
	n.mu.Lock()
	n.pending++
	n.mu.Unlock()
}

func (n *Notifier) untrack() {
	n.mu.Lock()
	n.pending--
	if n.pending == 0 && n.idle != nil {
		close(n.idle)
		n.idle = nil
	}
	n.mu.Unlock()
}

// waitIdle waits until no alert is pending or ctx ends, and reports
// whether none is.
func (n *Notifier) waitIdle(ctx context.Context) bool {
	n.mu.Lock()
	if n.pending == 0 {
		n.mu.Unlock()
		return true
	}
	if n.idle == nil {
		n.idle = make(chan struct{})
	}
	idle := n.idle
	n.mu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// run makes the alert: the preliminary post, then the edit with the final
// answer, or with the timeout text when the alert's time runs out first
// or shutdown's grace does.
func (n *Notifier) run(a *alert) {
	defer n.untrack()
	defer func() {
		if a.cancel != nil {
			a.cancel()
		}
	}()
	timeout := n.clock.After(n.cfg.Timeout - n.clock.Now().Sub(a.started))
	if a.unclaimed {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
		first, _ := n.claim(ctx, a)
		cancel()
		if !first {
			n.stats.duplicates.Add(1)
			n.forget(a)
			close(a.posted)
			return
		}
	}
	var final *pipeline.Event
	select {
	case ev := <-a.preCh:
		a.pre = ev.Answer
	case ev := <-a.finalCh:
		// The preliminary event is heard before the final one: when there
		// is one, it is waiting too.
		select {
		case pev := <-a.preCh:
			a.pre = pev.Answer
			a.finalCh <- ev
		default:
			// Refused before its prescore: nothing to post.
			n.seen.release(a.key)
			n.releaseShared(a.key)
			a.postErr = &PostError{Channel: a.opts.Channel, Kind: "refused", Err: ev.Err}
			close(a.posted)
			return
		}
	}
	msg := preliminaryMessage(a.item, a.opts, a.pre, a.started)
	post := msg
	// A final answer known before the post leaves (a prefiltered item, a
	// cache hit, no model tier) goes out in the post itself: Discord
	// allows a webhook 5 requests in 2 s, and an edit saying at once what
	// the post could have said would spend one of them.
	var early *pipeline.Event
	select {
	case ev := <-a.finalCh:
		if ev.Err == nil {
			early, post = &ev, finalMessage(msg, ev.Answer, nil)
		} else {
			a.finalCh <- ev
		}
	default:
	}
	pctx, cancel := context.WithTimeout(context.Background(), n.cfg.Timeout)
	id, err := n.client.Execute(pctx, a.hook, post)
	cancel()
	if err != nil {
		kind := failureKind(err)
		n.countFailed(kind)
		n.log.Warn("posting an alert", "channel", a.opts.Channel, "ticker", a.item.Ticker, "item", a.item.ID, "failure", kind, "err", err)
		a.postErr = &PostError{Channel: a.opts.Channel, Kind: kind, Err: err}
		n.seen.release(a.key)
		n.releaseShared(a.key)
		n.forget(a)
		close(a.posted)
		return
	}
	n.stats.posted.Add(1)
	a.id, a.complete = id, early != nil
	n.seen.record(a.key, id)
	n.recordShared(a.key, id)
	close(a.posted)
	if early != nil {
		n.forget(a)
		n.stats.complete.Add(1)
		return
	}

	select {
	case ev := <-a.finalCh:
		// An answer cut short by shutdown is no analysis: the message
		// says it timed out, as the ones still pending will.
		// So does a call whose caller left before the answer.
		if !n.stopped() && !strings.HasPrefix(ev.Answer.Provenance.Reason, pipeline.ErrShuttingDown.Error()) &&
			!errors.Is(ev.Err, context.Canceled) && !errors.Is(ev.Err, context.DeadlineExceeded) {
			final = &ev
		}
	case <-timeout:
	case <-n.stop:
	}
	n.forget(a)
	if a.cancel != nil {
		a.cancel()
	}
	var edit Message
	if final != nil {
		edit = finalMessage(msg, final.Answer, final.Err)
	} else {
		edit = timeoutMessage(msg)
	}
	wait := n.cfg.Timeout
	if n.stopped() {
		wait = lastEditWait
	}
	ectx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := n.client.Edit(ectx, a.hook, id, edit); err != nil {
		kind := failureKind(err)
		n.countFailed(kind)
		n.log.Warn("editing an alert", "channel", a.opts.Channel, "ticker", a.item.Ticker, "item", a.item.ID, "failure", kind, "err", err)
		return
	}
	if final != nil {
		n.stats.edited.Add(1)
	} else {
		n.stats.timedOut.Add(1)
	}
}

// forget drops a Classify call's alert from the listener's index: its
// final event, if it still comes, finds nothing.
func (n *Notifier) forget(a *alert) {
	if a.req == nil {
		return
	}
	n.mu.Lock()
	if n.byRequest[a.req] == a {
		delete(n.byRequest, a.req)
	}
	n.mu.Unlock()
}

func (n *Notifier) stopped() bool {
	select {
	case <-n.stop:
		return true
	default:
		return false
	}
}

// Shutdown waits for the pending alerts' final answers until ctx ends
// (SENTIMENT_SHUTDOWN_GRACE); then it edits the rest to the timeout text,
// so that no message says "Processing..." forever, and returns when
// they are sent.
func (n *Notifier) Shutdown(ctx context.Context) {
	defer n.stopOnce.Do(func() { close(n.stop) })
	if n.waitIdle(ctx) {
		return
	}
	n.mu.Lock()
	left := n.pending
	n.mu.Unlock()
	n.log.Warn("shutdown grace ran out: editing the pending alerts to the timeout text", "pending", left)
	n.stopOnce.Do(func() { close(n.stop) })
	n.waitIdle(context.Background())
}

// failureKind sorts a failed post or edit for Stats.
func failureKind(err error) string {
	var rl *RateLimitError
	var se *StatusError
	switch {
	case errors.Is(err, ErrBroken):
		return "broken"
	case errors.As(err, &rl):
		return "rate_limited"
	case errors.As(err, &se) && se.Status >= 500:
		return "http_5xx"
	case errors.As(err, &se):
		return "http_4xx"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "connection"
}

func (n *Notifier) countFailed(kind string) {
	n.stats.mu.Lock()
	n.stats.failed[kind]++
	n.stats.mu.Unlock()
}

// Stats is what the notifier has done since it started.
type Stats struct {
	Posted, Edited, TimedOut, Duplicates uint64
	// Complete counts the posts that carried the final answer already
	// (known before the post left): no edit follows them.
	Complete uint64
	// Notices counts one-off messages posted (cost thresholds crossed).
	Notices uint64
	// Failed counts failed posts and edits by kind.
	Failed map[string]uint64
	// Broken lists the channels whose webhook was deleted or revoked.
	Broken []string
	// Pending counts the alerts waiting for their final answer.
	Pending int
}

// Stats returns a snapshot of the counters.
func (n *Notifier) Stats() Stats {
	s := Stats{
		Posted:     n.stats.posted.Load(),
		Complete:   n.stats.complete.Load(),
		Notices:    n.stats.notices.Load(),
		Edited:     n.stats.edited.Load(),
		TimedOut:   n.stats.timedOut.Load(),
		Duplicates: n.stats.duplicates.Load(),
	}
	n.mu.Lock()
	s.Pending = n.pending
	n.mu.Unlock()
	n.stats.mu.Lock()
	s.Failed = maps.Clone(n.stats.failed)
	n.stats.mu.Unlock()
	for name, w := range n.hooks {
		if broken, _ := n.client.Broken(w); broken {
			s.Broken = append(s.Broken, name)
		}
	}
	sort.Strings(s.Broken)
	return s
}

// colorWarning marks a notice: something the owner should act on.
const colorWarning = 0xE67E22

// Notice posts a one-off message to the default channel (a cost threshold
// crossed): no edit follows. Without a default channel it posts nothing
// and says so.
func (n *Notifier) Notice(ctx context.Context, title, text string) error {
	w := n.hooks[n.cfg.DefaultChannel]
	if w == nil {
		return errors.New("no default alert channel (SENTIMENT_ALERT_CHANNEL) to post to")
	}
	m := Message{Embeds: []Embed{{
		Title:       title,
		Description: text,
		Color:       colorWarning,
		Timestamp:   n.clock.Now().UTC(),
		Footer:      &Footer{Text: "catalyst-sentiment"},
	}}}
	m.Fit()
	if _, err := n.client.Execute(ctx, w, m); err != nil {
		n.countFailed(failureKind(err))
		return fmt.Errorf("posting a notice to channel %q: %w", n.cfg.DefaultChannel, err)
	}
	n.stats.notices.Add(1)
	return nil
}

// ChannelInfo describes a configured channel without its webhook's token.
type ChannelInfo struct {
	Name, WebhookID string
	Default, Broken bool
}

// Channels lists the configured channels, by name.
func (n *Notifier) Channels() []ChannelInfo {
	out := make([]ChannelInfo, 0, len(n.hooks))
	for _, name := range slices.Sorted(maps.Keys(n.hooks)) {
		w := n.hooks[name]
		broken, _ := n.client.Broken(w)
		out = append(out, ChannelInfo{Name: name, WebhookID: w.ID(), Default: name == n.cfg.DefaultChannel, Broken: broken})
	}
	return out
}
