// Package logrepeat keeps a failure that repeats from flooding the log: the
// first error of a kind is logged at error level; its repeats are counted
// and logged at warn, with the count, at growing intervals. A newcomer who
// runs the service with no model server sees one error and then a warning
// now and then, not a wall of errors.
package logrepeat

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Backoff bounds: the first repeat is summed up after First, each later
// summary waits twice as long as the last, up to Max. A kind quiet for
// Forget is an error again when it comes back.
const (
	First  = time.Second
	Max    = 10 * time.Minute
	Forget = 30 * time.Minute
	// maxKinds bounds the kinds remembered; past it the oldest state is
	// dropped (at worst a repeat is logged at error again).
	maxKinds = 1024
)

// keyAttrs are the attributes that tell one failure from another besides
// the message; the rest (a wait, a count, a latency) vary between repeats
// of the same failure.
var keyAttrs = map[string]bool{"err": true, "error": true, "error_type": true, "tier": true, "why": true, "reason": true}

// Handler wraps another handler. It is safe for concurrent use.
type Handler struct {
	next  slog.Handler
	state *state
	// attrs are those added by WithAttrs, part of every record's kind.
	attrs []slog.Attr
}

type state struct {
	now   func() time.Time
	mu    sync.Mutex
	kinds map[string]*kind
}

type kind struct {
	suppressed int
	next       time.Time // the next summary is due then
	backoff    time.Duration
	last       time.Time // the last occurrence
}

// New wraps next; now is the clock (time.Now when nil).
func New(next slog.Handler, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{next: next, state: &state{now: now, kinds: make(map[string]*kind)}}
}

// Enabled reports whether next takes records at level: a repeat may be
// written at warn, so an error is enabled when warn is.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	if level >= slog.LevelError {
		return h.next.Enabled(ctx, slog.LevelWarn) || h.next.Enabled(ctx, level)
	}
	return h.next.Enabled(ctx, level)
}

// Handle passes records below error level through; errors go through the
// first time and as counted warnings after.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return h.next.Handle(ctx, r)
	}
	key := h.key(&r)
	s := h.state
	s.mu.Lock()
	now := s.now()
	k := s.kinds[key]
	if k == nil || now.Sub(k.last) >= Forget {
		if len(s.kinds) >= maxKinds {
			clear(s.kinds)
		}
		s.kinds[key] = &kind{next: now.Add(First), backoff: First, last: now}
		s.mu.Unlock()
		return h.next.Handle(ctx, r)
	}
	k.last = now
	k.suppressed++
	if now.Before(k.next) {
		s.mu.Unlock()
		return nil
	}
	n := k.suppressed
	k.suppressed = 0
	k.backoff = min(2*k.backoff, Max)
	k.next = now.Add(k.backoff)
	s.mu.Unlock()
	w := slog.NewRecord(r.Time, slog.LevelWarn, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		w.AddAttrs(a)
		return true
	})
	w.AddAttrs(slog.Int("repeated", n), slog.Duration("next_summary_in", k.backoff))
	return h.next.Handle(ctx, w)
}

func (h *Handler) key(r *slog.Record) string {
	key := r.Message
	add := func(a slog.Attr) bool {
		if keyAttrs[a.Key] {
			key += "\x00" + a.Key + "=" + a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	return key
}

// WithAttrs returns a handler whose records carry attrs, sharing the
// repeat counts.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), state: h.state, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

// WithGroup returns a handler that groups later attributes, sharing the
// repeat counts.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), state: h.state, attrs: h.attrs}
}
