package batcher

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catalystbot/sentiment/upstream"
)

// Errors Acquire returns when an item should go elsewhere (a cloud tier,
// the lexicon) rather than wait for the GPU. Test them with errors.Is: the
// returned errors wrap them with details.
var (
	// ErrQueueFull: Config.QueueSize items already wait.
	ErrQueueFull = errors.New("batcher: GPU queue full")
	// ErrNoTimeToStart: the item would not start within its maxWait (or its
	// context's deadline): estimated at once, or found while waiting. Also
	// the answer while the ceiling is 0.
	ErrNoTimeToStart = errors.New("batcher: no GPU slot in time")
)

// Pacing is how waiting items are released to the GPU.
type Pacing int

const (
	// Adaptive starts the next waiting item as soon as a slot is free under
	// the AIMD limit.
	Adaptive Pacing = iota
	// Waves starts at most Config.WaveSize items per wave, waits until the
	// wave's calls have all ended, rests Config.WaveDelay, and opens the next
	// wave: the old bot's LLM_BATCH_SIZE / LLM_BATCH_DELAY_SEC pacing. The
	// AIMD limit still applies within a wave. A wave that has not filled
	// stays open, so items that trickle in are not held back.
	Waves
)

// String is the configuration spelling: "adaptive" or "waves".
func (p Pacing) String() string {
	switch p {
	case Adaptive:
		return "adaptive"
	case Waves:
		return "waves"
	}
	return fmt.Sprintf("Pacing(%d)", int(p))
}

// ParsePacing reads SENTIMENT_GPU_PACING's values: "adaptive" or "waves".
func ParsePacing(s string) (Pacing, error) {
	switch s {
	case "adaptive":
		return Adaptive, nil
	case "waves":
		return Waves, nil
	}
	return 0, fmt.Errorf("batcher: pacing %q: must be adaptive or waves", s)
}

// Rank orders the items waiting for a slot: the higher Priority first,
// then the stronger signal (the lexicon's |prescore|), then the earlier
// arrival. Under a burst the GPU judges what matters most first, and what
// cannot start in time is the weakest.
type Rank struct {
	// Priority: higher goes first (the router maps low, normal and high to
	// 0, 1 and 2).
	Priority int
	// Strength is the item's |prescore|, 0 to 1.
	Strength float64
}

// ahead reports whether r goes before o.
func (r Rank) ahead(o Rank) bool {
	if r.Priority != o.Priority {
		return r.Priority > o.Priority
	}
	return r.Strength > o.Strength
}

// Config shapes a Queue. New validates it.
type Config struct {
	// MaxConcurrent is the most calls in flight (LLM_MAX_CONCURRENT). Match
	// the server's parallel slots (OLLAMA_NUM_PARALLEL): above it Ollama
	// queues or fails the rest. The AIMD limit starts here and never exceeds
	// it. At least 1.
	MaxConcurrent int
	// QueueSize is how many items may wait for a slot (SENTIMENT_GPU_QUEUE);
	// the next is refused at once with ErrQueueFull. 0: no waiting, an item
	// starts at once or is refused.
	QueueSize int
	// Pacing is Adaptive (the zero value) or Waves.
	Pacing Pacing
	// WaveSize is the items started per wave (LLM_BATCH_SIZE); Waves only,
	// at least 1 there.
	WaveSize int
	// WaveDelay is the rest between the end of a wave's last call and the
	// next wave (LLM_BATCH_DELAY_SEC); Waves only.
	WaveDelay time.Duration
	// SuccessesToGrow is the successes in a row after which the limit grows
	// by one. 0: the current limit, so that growth takes about one round of
	// the window per step, as TCP's congestion avoidance does. Growth probes
	// above a capacity the queue has already found: against a fake that
	// fails every call beyond 4 slots, MaxConcurrent 8 with the default cost
	// about one 500 per ten calls over a burst of 500, and at most 4 in all
	// with growth out of reach (SuccessesToGrow above the burst). Where a
	// failure is a crashed runner, prefer MaxConcurrent = the server's slots.
	SuccessesToGrow int
}

func (c Config) validate() error {
	if c.MaxConcurrent < 1 {
		return fmt.Errorf("batcher: MaxConcurrent=%d: must be at least 1 (the server's parallel slots)", c.MaxConcurrent)
	}
	if c.QueueSize < 0 {
		return fmt.Errorf("batcher: QueueSize=%d: must be 0 or more", c.QueueSize)
	}
	if c.SuccessesToGrow < 0 {
		return fmt.Errorf("batcher: SuccessesToGrow=%d: must be 0 (the current limit) or more", c.SuccessesToGrow)
	}
	switch c.Pacing {
	case Adaptive:
	case Waves:
		if c.WaveSize < 1 {
			return fmt.Errorf("batcher: WaveSize=%d: must be at least 1 with waves pacing", c.WaveSize)
		}
		if c.WaveDelay < 0 {
			return fmt.Errorf("batcher: WaveDelay=%v: must not be negative", c.WaveDelay)
		}
	default:
		return fmt.Errorf("batcher: Pacing=%d: must be Adaptive or Waves", int(c.Pacing))
	}
	return nil
}

// Option changes how New builds a Queue.
type Option func(*Queue)

// WithClock sets the clock the Queue reads for service times (the estimate
// behind ErrNoTimeToStart) and for the end of a wave's rest; nil keeps
// time.Now. Waiting itself uses the runtime's timers, which
// testing/synctest makes virtual.
func WithClock(now func() time.Time) Option {
	return func(q *Queue) {
		if now != nil {
			q.now = now
		}
	}
}

// Stats is a snapshot of a Queue.
type Stats struct {
	// Limit is the AIMD limit, 1..MaxConcurrent.
	Limit int
	// Ceiling is the outside cap set by SetCeiling, 0..MaxConcurrent. Calls
	// start only while InFlight < min(Limit, Ceiling).
	Ceiling int
	// InFlight is the slots held now; Waiting the items in line.
	InFlight, Waiting int
	// Started counts slots granted (and kept).
	Started uint64
	// SpilledFull counts ErrQueueFull refusals; SpilledNoTime counts
	// ErrNoTimeToStart, at once or after waiting; Canceled counts waits
	// ended by the caller's context.
	SpilledFull, SpilledNoTime, Canceled uint64
	// Shared says where the slots are shared with other replicas: "" (not
	// shared), "redis", or "memory (redis unreachable: <why>)" while this
	// replica runs its local share. LeaseWaits counts items that waited
	// for a slot the other replicas held; LeaseFallbacks the starts made
	// on the local share.
	Shared                     string
	LeaseWaits, LeaseFallbacks uint64
	// Displaced counts waiting items sent away (ErrQueueFull) to make
	// room for a stronger one in a full line; Overtaken those sent away
	// (ErrNoTimeToStart) because stronger items that came after them left
	// no time to start. Both are also in SpilledFull and SpilledNoTime.
	Displaced, Overtaken uint64
	// Halvings counts rounds cut by an Overload (a limit of 1 stays 1);
	// Grows counts steps up.
	Halvings, Grows uint64
	// ServiceTime is the moving average of successful calls' durations,
	// the time one call holds one slot; 0 before the first.
	ServiceTime time.Duration
}

// ewmaWeight is the weight of the newest service time in the average: about
// the last five calls count.
const ewmaWeight = 0.2

// never stands for an estimate with no end (the queue is closed).
const never = time.Duration(math.MaxInt64)

// Queue hands out GPU slots. Its methods are safe for concurrent use. It
// starts no goroutine of its own; in Waves pacing a timer (time.AfterFunc)
// ends each rest, and Close stops it.
type Queue struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	limit    int
	ceiling  int
	inFlight int
	// idle is made when Idle is asked while calls hold slots, and closed
	// (and dropped) once none does after a release has handed its slot on,
	// if it could: a queue nobody drains makes no channels.
	idle    chan struct{}
	closed  bool
	waiters list.List // of *waiter, in Rank order: the next to start first
	// round is incremented by every cut; a slot remembers the round it
	// started in, and only an Overload from the current round cuts again.
	round uint64
	// run is the successes in a row since the last step or cut.
	run     int
	service time.Duration
	// Waves pacing: started in the current wave; resting until restUntil,
	// when restTimer fires.
	waveStarted int
	resting     bool
	restUntil   time.Time
	restTimer   *time.Timer
	st          Stats
	// leases, when set, share the slots with other replicas.
	leases *leasing
}

// waiter is one item in line. granted and slot are written under Queue.mu
// before ready is closed; ready closed with granted false means Close sent
// it away.
type waiter struct {
	ready   chan struct{}
	granted bool
	// sent is why the queue sent the item away before a slot came
	// (displaced by a stronger one, overtaken past its time); nil when it
	// was Close.
	sent     error
	slot     slot
	elem     *list.Element
	rank     Rank
	deadline time.Time // when the item stops waiting
}

// slot is one granted start.
type slot struct {
	round uint64
	start time.Time
}

// New returns a Queue with the limit and the ceiling at cfg.MaxConcurrent.
func New(cfg Config, opts ...Option) (*Queue, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := &Queue{cfg: cfg, now: time.Now, limit: cfg.MaxConcurrent, ceiling: cfg.MaxConcurrent}
	q.markIdleLocked()
	for _, o := range opts {
		o(q)
	}
	return q, nil
}

// Acquire is AcquireRanked with the zero Rank: first come first served
// among items that all use it.
func (q *Queue) Acquire(ctx context.Context, maxWait time.Duration) (release func(upstream.Signal), err error) {
	return q.AcquireRanked(ctx, maxWait, Rank{})
}

// AcquireRanked waits for a GPU slot, in Rank order: an item waits behind
// those that rank at or above it, and goes before those below it.
//
// A full line makes room for an item that ranks above its last (weakest)
// item: that one is sent away with ErrQueueFull; otherwise the new item
// is. An item placed ahead of waiting ones pushes their starts later:
// those whose estimated start now falls after their maxWait are sent away
// at once with ErrNoTimeToStart, rather than when their wait ends.
//
// It fails at once with ErrQueueFull when QueueSize items already wait, and
// at once with ErrNoTimeToStart when the estimated start is later than
// maxWait or the context's deadline, whichever comes first (a maxWait of 0
// or less: start now or not at all). The estimate counts the items ahead
// and the calls in flight against the slots allowed, each slot finishing a
// call per average service time; before any call has finished it is 0, and
// the wait itself is still bounded. While waiting it fails when ctx ends
// (wrapping ctx.Err()) or maxWait passes (ErrNoTimeToStart); either way the
// item leaves the line and holds no slot.
//
// On success the caller must call release exactly once, with what the
// call said of the server's health (see release); later calls of it do
// nothing.
//
// After Close it fails at once with ErrNoTimeToStart.
func (q *Queue) AcquireRanked(ctx context.Context, maxWait time.Duration, rank Rank) (release func(upstream.Signal), err error) {
	if q.leases == nil {
		return q.acquireLocal(ctx, maxWait, rank)
	}
	until := time.Now().Add(maxWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		until = dl
	}
	rel, err := q.acquireLocal(ctx, maxWait, rank)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	limit := q.allowedLocked()
	q.mu.Unlock()
	give, err := q.take(ctx, until, max(1, limit))
	if err != nil {
		q.giveBack(err)
		return nil, err
	}
	return func(sig upstream.Signal) {
		give()
		rel(sig)
	}, nil
}

// giveBack returns a local slot granted to an item that then found no
// shared slot: as if it had never started, so that the next in line gets
// it.
func (q *Queue) giveBack(cause error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.unstartLocked()
	if errors.Is(cause, ErrNoTimeToStart) {
		q.st.SpilledNoTime++
	} else {
		q.st.Canceled++
	}
	q.dispatchLocked()
	q.markIdleLocked()
}

// acquireLocal waits for a slot of this replica's queue.
func (q *Queue) acquireLocal(ctx context.Context, maxWait time.Duration, rank Rank) (release func(upstream.Signal), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("batcher: acquiring a GPU slot: %w", err)
	}
	wait := maxWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}

	q.mu.Lock()
	if q.closed {
		q.st.SpilledNoTime++
		q.mu.Unlock()
		return nil, errClosed()
	}
	if q.waiters.Len() == 0 && q.canStartLocked() {
		s := q.startLocked()
		q.mu.Unlock()
		return q.releaser(s), nil
	}
	if q.allowedLocked() == 0 {
		// Closed by the GPU manager: waiting would be for nothing.
		q.st.SpilledNoTime++
		q.mu.Unlock()
		return nil, fmt.Errorf("%w: GPU queue closed (ceiling 0)", ErrNoTimeToStart)
	}
	if wait <= 0 {
		q.st.SpilledNoTime++
		q.mu.Unlock()
		return nil, fmt.Errorf("%w: no slot free and no time to wait", ErrNoTimeToStart)
	}
	// at is the waiter the item goes before (nil: the end of the line);
	// ahead counts those it waits behind.
	at, ahead := q.placeLocked(rank)
	now := q.now()
	if est := q.estimateLocked(ahead, now); est > wait {
		q.st.SpilledNoTime++
		q.mu.Unlock()
		if est == never {
			return nil, fmt.Errorf("%w: GPU queue closed (ceiling 0)", ErrNoTimeToStart)
		}
		return nil, fmt.Errorf("%w: estimated start in %v, %v allowed", ErrNoTimeToStart, est, wait)
	}
	if n := q.waiters.Len(); n >= q.cfg.QueueSize {
		last := q.waiters.Back()
		if n == 0 || at == nil {
			q.st.SpilledFull++
			q.mu.Unlock()
			return nil, fmt.Errorf("%w: %d waiting, none weaker", ErrQueueFull, n)
		}
		// Room for a stronger item: the weakest waiting one goes.
		if at == last {
			at = nil
		}
		q.sendAwayLocked(last.Value.(*waiter), fmt.Errorf("%w: displaced by a stronger item", ErrQueueFull))
		q.st.SpilledFull++
		q.st.Displaced++
	}
	w := &waiter{ready: make(chan struct{}), rank: rank, deadline: now.Add(wait)}
	if at == nil {
		w.elem = q.waiters.PushBack(w)
	} else {
		w.elem = q.waiters.InsertBefore(w, at)
		q.shedLocked(w.elem.Next(), ahead+1, now)
	}
	q.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	var cause error
	select {
	case <-w.ready:
		if !w.granted {
			if w.sent != nil {
				return nil, w.sent // counted when sent away
			}
			return nil, errClosed() // counted by Close
		}
		return q.releaser(w.slot), nil
	case <-ctx.Done():
		cause = fmt.Errorf("batcher: waiting for a GPU slot: %w", ctx.Err())
	case <-timer.C:
		cause = fmt.Errorf("%w: waited %v", ErrNoTimeToStart, wait)
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case w.granted:
		// The slot came as the wait ended: give it back unused, as if it
		// had never started, so that the next in line gets it.
		q.unstartLocked()
		q.dispatchLocked()
		q.markIdleLocked()
	case w.sent != nil:
		// Sent away as the wait ended, and counted.
		return nil, w.sent
	case q.closed:
		// Close sent it away as the wait ended, and counted it.
		return nil, errClosed()
	default:
		q.waiters.Remove(w.elem)
	}
	if errors.Is(cause, ErrNoTimeToStart) {
		q.st.SpilledNoTime++
	} else {
		q.st.Canceled++
	}
	return nil, cause
}

// SetCeiling caps the calls in flight from outside, between 0 and
// MaxConcurrent (n is clamped): the GPU manager lowers it while VRAM is
// above its high-water mark and restores it after. Calls in flight are not
// interrupted; no new call starts until InFlight is below the new cap. 0
// closes the queue to new starts: new items are refused with
// ErrNoTimeToStart, those in line wait as their maxWait allows. The AIMD
// limit is kept, so restoring the ceiling restores the concurrency at once;
// it does not grow above the ceiling meanwhile.
func (q *Queue) SetCeiling(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ceiling = max(0, min(n, q.cfg.MaxConcurrent))
	q.dispatchLocked()
}

// errClosed is Acquire's answer after Close: an ErrNoTimeToStart, so that
// a caller sends the item elsewhere as it does when the GPU is busy.
func errClosed() error { return fmt.Errorf("%w: GPU queue closed", ErrNoTimeToStart) }

// Close closes the queue for good, for the shutdown of whatever owns it:
// no call starts after it (Acquire fails at once with ErrNoTimeToStart,
// and the items in line are sent away with it at once rather than when
// their maxWait ends), and in Waves pacing the pending rest timer is
// stopped, so that nothing of the queue runs after its owner is done with
// it. Calls in flight go on; their release still works and Idle is
// closed when the last ends. Close is safe to call more than once.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.stopRestLocked()
	for q.waiters.Len() > 0 {
		w := q.waiters.Remove(q.waiters.Front()).(*waiter)
		q.st.SpilledNoTime++
		close(w.ready)
	}
}

// Idle returns a channel that is closed when no call holds a slot: already
// closed when none does now, and a fresh one once a call starts. The GPU
// manager waits on it before it unloads the model, instead of polling
// InFlight. Items waiting in line do not count: with the ceiling at 0 they
// cannot start.
func (q *Queue) Idle() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.inFlight == 0 {
		return closedChan
	}
	if q.idle == nil {
		q.idle = make(chan struct{})
	}
	return q.idle
}

// closedChan is what Idle returns while no call holds a slot.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Stats returns a snapshot.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.st
	s.Limit, s.Ceiling = q.limit, q.ceiling
	s.InFlight, s.Waiting = q.inFlight, q.waiters.Len()
	s.ServiceTime = q.service
	q.leaseStats(&s)
	return s
}

// releaser returns the release function of one granted slot.
func (q *Queue) releaser(s slot) func(upstream.Signal) {
	var done atomic.Bool
	return func(sig upstream.Signal) {
		if done.Swap(true) {
			return
		}
		q.release(s, sig)
	}
}

// release frees a slot and adapts the limit to what the call said: an
// answer (SignalOK) counts toward growth; a server that could not take
// the call (sig.Overload: busy, crashed, down, hung, a 5xx) halves the
// limit, once per round; anything else (a bad answer, a 4xx, a call the
// caller's own deadline cut short) leaves the limit and the run of
// successes as they are.
func (q *Queue) release(s slot, sig upstream.Signal) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	q.inFlight--
	switch {
	case sig == upstream.SignalOK:
		q.observeLocked(now.Sub(s.start))
		q.run++
		need := q.cfg.SuccessesToGrow
		if need == 0 {
			need = q.limit
		}
		if q.run >= need {
			q.run = 0
			if q.limit < min(q.cfg.MaxConcurrent, q.ceiling) {
				q.limit++
				q.st.Grows++
			}
		}
	case sig.Overload():
		q.run = 0
		// Calls that started before the last cut were sent at the old
		// limit: their failures are the same burst, already answered.
		if s.round == q.round {
			q.round++
			q.limit = max(1, q.limit/2)
			q.st.Halvings++
		}
	}
	if q.cfg.Pacing == Waves && q.waveStarted >= q.cfg.WaveSize && q.inFlight == 0 {
		q.restLocked(now)
	}
	q.dispatchLocked()
	q.markIdleLocked()
}

// observeLocked adds one service time to the moving average.
func (q *Queue) observeLocked(d time.Duration) {
	d = max(d, 0)
	if q.service == 0 {
		q.service = d
		return
	}
	q.service += time.Duration(ewmaWeight * float64(d-q.service))
}

// allowedLocked is how many calls may be in flight now.
func (q *Queue) allowedLocked() int { return min(q.limit, q.ceiling) }

func (q *Queue) canStartLocked() bool {
	if q.closed || q.inFlight >= q.allowedLocked() {
		return false
	}
	return q.cfg.Pacing != Waves || (!q.resting && q.waveStarted < q.cfg.WaveSize)
}

func (q *Queue) startLocked() slot {
	q.inFlight++
	q.st.Started++
	if q.cfg.Pacing == Waves {
		q.waveStarted++
	}
	return slot{round: q.round, start: q.now()}
}

// unstartLocked undoes startLocked for a slot given back unused. Its wave
// is the current one: a wave does not end while one of its slots is held.
func (q *Queue) unstartLocked() {
	q.inFlight--
	q.st.Started--
	if q.cfg.Pacing == Waves {
		q.waveStarted--
	}
}

// markIdleLocked tells Idle's waiters when no call holds a slot. Callers
// that free a slot call it after dispatchLocked, so that a slot handed
// straight to the next in line does not read as idle in between.
func (q *Queue) markIdleLocked() {
	if q.inFlight == 0 && q.idle != nil {
		close(q.idle)
		q.idle = nil
	}
}

// placeLocked finds where an item of rank r goes in the line: before
// the first waiter it ranks ahead of (nil: at the end), and how many wait
// ahead of it. The line is short (SENTIMENT_GPU_QUEUE): a walk is cheaper
// than a heap's bookkeeping, and keeps arrival order among equals.
func (q *Queue) placeLocked(r Rank) (at *list.Element, ahead int) {
	for e := q.waiters.Front(); e != nil; e = e.Next() {
		if r.ahead(e.Value.(*waiter).rank) {
			return e, ahead
		}
		ahead++
	}
	return nil, ahead
}

// sendAwayLocked takes a waiter out of the line with err as its answer.
func (q *Queue) sendAwayLocked(w *waiter, err error) {
	q.waiters.Remove(w.elem)
	w.sent = err
	close(w.ready)
}

// shedLocked sends away, from e on (pos waiting ahead of e), the waiters
// an item placed ahead of them has pushed past their time: their
// estimated start is now later than the end of their wait.
func (q *Queue) shedLocked(e *list.Element, pos int, now time.Time) {
	for e != nil {
		next := e.Next()
		w := e.Value.(*waiter)
		if left := w.deadline.Sub(now); q.estimateLocked(pos, now) > left {
			q.sendAwayLocked(w, fmt.Errorf("%w: overtaken by stronger items, no slot before its deadline", ErrNoTimeToStart))
			q.st.SpilledNoTime++
			q.st.Overtaken++
		} else {
			pos++
		}
		e = next
	}
}

// dispatchLocked starts waiters from the front of the line while the limit,
// the ceiling and the pacing allow.
func (q *Queue) dispatchLocked() {
	for q.waiters.Len() > 0 && q.canStartLocked() {
		w := q.waiters.Remove(q.waiters.Front()).(*waiter)
		w.slot = q.startLocked()
		w.granted = true
		close(w.ready)
	}
}

// restLocked ends a wave whose calls have all ended: the next opens
// WaveDelay from now.
func (q *Queue) restLocked(now time.Time) {
	q.waveStarted = 0
	if q.cfg.WaveDelay <= 0 || q.closed {
		return
	}
	q.resting = true
	q.restUntil = now.Add(q.cfg.WaveDelay)
	q.stopRestLocked()
	q.restTimer = time.AfterFunc(q.cfg.WaveDelay, q.endRest)
}

// stopRestLocked stops the rest timer, if one is pending.
func (q *Queue) stopRestLocked() {
	if q.restTimer != nil {
		q.restTimer.Stop()
		q.restTimer = nil
	}
}

// endRest opens the next wave once the clock has reached restUntil; a clock
// that lags the timers (WithClock) is waited for with another timer.
func (q *Queue) endRest() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.resting || q.closed {
		return
	}
	if left := q.restUntil.Sub(q.now()); left > 0 {
		q.restTimer = time.AfterFunc(left, q.endRest)
		return
	}
	q.resting, q.restTimer = false, nil
	q.dispatchLocked()
}

// estimateLocked is how long an item placed behind ahead waiters would
// wait to start: never while the ceiling is 0.
func (q *Queue) estimateLocked(ahead int, now time.Time) time.Duration {
	allowed := q.allowedLocked()
	if allowed <= 0 {
		return never
	}
	svc := q.service
	if q.cfg.Pacing != Waves {
		return drain(q.inFlight, ahead, allowed, svc)
	}

	size, delay := q.cfg.WaveSize, q.cfg.WaveDelay
	var base time.Duration
	if q.resting {
		base = max(0, q.restUntil.Sub(now))
	} else {
		room := size - q.waveStarted
		if ahead < room {
			return drain(q.inFlight, ahead, allowed, svc)
		}
		// The current wave's last start, its call, and the rest after it.
		base = drain(q.inFlight, room-1, allowed, svc) + svc + delay
		ahead -= room
	}
	full := time.Duration((size+allowed-1)/allowed) * svc // one wave's calls, slot by slot
	waves := ahead / size
	return base + time.Duration(waves)*(full+delay) + drain(0, ahead%size, allowed, svc)
}

// drain estimates when the item behind ahead waiters starts, with inFlight
// calls running and allowed slots each finishing a call per svc: it needs
// inFlight+ahead+1-allowed calls to end first.
func drain(inFlight, ahead, allowed int, svc time.Duration) time.Duration {
	need := inFlight + ahead + 1 - allowed
	if need <= 0 {
		return 0
	}
	return time.Duration(need) * svc / time.Duration(allowed)
}

// InFlight is the number of calls holding a slot now; the GPU manager
// waits for it to reach 0 before it unloads the model.
func (q *Queue) InFlight() int { return q.Stats().InFlight }
