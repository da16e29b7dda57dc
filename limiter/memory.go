package limiter

import (
	"slices"
	"sync"
	"time"
)

// store is the in-memory backend: one sliding-window log per provider and
// window. Times are nanoseconds since base, taken with Sub so that the
// monotonic clock is used when the clock gives one (a wall-clock step
// neither frees nor blocks slots).
type store struct {
	clock func() time.Time
	base  time.Time
	// provs is filled at construction and only read after; the states it
	// points to change under mu.
	provs map[Provider]*provState
	mu    sync.Mutex
}

type provState struct {
	limits Limits
	rules  []rule
	// logs[i] holds every slot that still counts in the window of
	// rules[i], those claimed for the future included, sorted. A log is
	// cut by time only, never to the limit's count: once a slot is
	// cancelled, an older one can bind again, so it must still be there.
	logs [][]int64
	// recent holds the latest slots after now − MinInterval (after now
	// when MinInterval is 0), at most recentKeep of them, sorted: its last
	// is the anchor, the latest slot, which holds a new one back by the
	// least interval and by FIFO order. It is kept apart from the window
	// logs, which fill rewrites. When the latest slot is cancelled, the
	// one before it becomes the anchor.
	recent []int64
	// older is the latest slot recent let go to stay within recentKeep
	// (while hasOlder). Should cancels empty recent, it is the anchor
	// again; if it was cancelled too, nothing earlier is known and it
	// stays the anchor, which spaces calls more than needed, never less.
	older    int64
	hasOlder bool
}

// recentKeep is how many latest slots a provider keeps for its anchor:
// that many can be cancelled in a row before the anchor stops going back.
const recentKeep = 8

func newStore(limits map[Provider]Limits, clock func() time.Time) *store {
	s := &store{clock: clock, base: clock(), provs: make(map[Provider]*provState, len(limits))}
	for name, l := range limits {
		l = l.normalized()
		if l.none() {
			continue
		}
		rs := l.rules()
		s.provs[name] = &provState{limits: l, rules: rs, logs: make([][]int64, len(rs))}
	}
	return s
}

func (s *store) now() int64 { return int64(s.clock().Sub(s.base)) }

// reserve claims the next slot of provider unless it is more than maxWait
// away.
func (s *store) reserve(provider Provider, maxWait time.Duration) (slot, error) {
	p := s.provs[provider]
	if p == nil {
		return slot{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	at, binding := p.next(now)
	wait := time.Duration(at - now)
	if wait > maxWait {
		return slot{}, &NoSlotError{Provider: provider, Window: binding, Wait: wait}
	}
	p.add(at)
	return slot{wait: wait, at: at}, nil
}

// record counts a slot claimed elsewhere (through Redis) at time at, so the
// fallback knows what this replica already used.
func (s *store) record(provider Provider, at int64) {
	p := s.provs[provider]
	if p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.prune(s.now())
	p.add(at)
}

// cancel gives back the slot at time at: one entry of that time leaves
// every log that still holds one. Slots claimed for the same instant are
// alike, so which of them leaves does not matter; a slot that already left
// a window by time leaves nothing there.
func (s *store) cancel(provider Provider, at int64) {
	p := s.provs[provider]
	if p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.prune(s.now())
	for i := range p.logs {
		p.logs[i] = removeOne(p.logs[i], at)
	}
	p.recent = removeOne(p.recent, at)
	if len(p.recent) == 0 && p.hasOlder {
		p.recent = append(p.recent, p.older)
	}
}

// removeOne drops one entry equal to at from the sorted log, if any.
func removeOne(log []int64, at int64) []int64 {
	if j, found := slices.BinarySearch(log, at); found {
		return slices.Delete(log, j, j+1)
	}
	return log
}

// fill sets each local window of provider to hold exactly used[i] slots
// (as many as its limit keeps): dropping the oldest when it holds more,
// adding slots at now when it holds fewer. The added slots leave the window
// a full window length from now, which errs on the safe side.
func (s *store) fill(provider Provider, used []int) {
	p := s.provs[provider]
	if p == nil || len(used) != len(p.rules) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	p.prune(now)
	for i, r := range p.rules {
		want := min(max(used[i], 0), r.n)
		log := p.logs[i]
		if len(log) > want {
			log = log[len(log)-want:]
		}
		for len(log) < want {
			j, _ := slices.BinarySearch(log, now+1)
			log = slices.Insert(log, j, now)
		}
		p.logs[i] = log
	}
}

// prune drops the slots that left their window: a slot at s counts in a
// window of length T containing a new slot t ≥ now only while s > now − T.
func (p *provState) prune(now int64) {
	for i, r := range p.rules {
		p.logs[i] = cutBefore(p.logs[i], now-int64(r.length))
	}
	cut := now - int64(p.limits.MinInterval)
	p.recent = cutBefore(p.recent, cut)
	if p.hasOlder && p.older <= cut {
		p.hasOlder = false
	}
}

// cutBefore drops the entries ≤ cut of a sorted log. Each call usually
// drops none or a few, while a log holding slots claimed far ahead can be
// long: the search gallops from the front instead of bisecting the whole
// log, so it stays within the cache lines it needs.
func cutBefore(log []int64, cut int64) []int64 {
	if len(log) == 0 || log[0] > cut {
		return log
	}
	lo, hi := 0, 1 // log[lo] ≤ cut
	for hi < len(log) && log[hi] <= cut {
		lo, hi = hi, 2*hi
	}
	hi = min(hi, len(log))
	j, _ := slices.BinarySearch(log[lo:hi], cut+1) // first slot > cut
	return log[lo+j:]
}

// next returns the earliest slot ≥ now that keeps every window within its
// limit and the least interval, and the window that binds it ("" when now
// is free). Slots are FIFO (never before the latest one, which recent
// holds), so every logged slot is ≤ the new one, and a window of length T
// containing it holds the slots in (t−T, t]: fewer than n of those means
// slot[k−n] ≤ t−T.
func (p *provState) next(now int64) (int64, string) {
	p.prune(now)
	at, binding := now, ""
	if k := len(p.recent); k > 0 {
		if b := p.recent[k-1] + int64(p.limits.MinInterval); b > at {
			at, binding = b, WindowInterval
		}
	}
	for i, r := range p.rules {
		log := p.logs[i]
		if len(log) < r.n {
			continue
		}
		// On a tie the longer window is named: it is the one to wait out.
		if b := log[len(log)-r.n] + int64(r.length); b > now && b >= at {
			at, binding = b, r.name
		}
	}
	return at, binding
}

// add logs a slot in every window. at is normally ≥ every logged slot; a
// recorded one may not be, and is inserted in order.
func (p *provState) add(at int64) {
	for i := range p.logs {
		p.logs[i] = insertSorted(p.logs[i], at)
	}
	p.recent = insertSorted(p.recent, at)
	if len(p.recent) > recentKeep {
		if !p.hasOlder || p.recent[0] > p.older {
			p.older, p.hasOlder = p.recent[0], true
		}
		// Shifted in place: reslicing the front off would make append
		// allocate again every few slots.
		p.recent = p.recent[:copy(p.recent, p.recent[1:])]
	}
}

func insertSorted(log []int64, at int64) []int64 {
	if n := len(log); n == 0 || log[n-1] <= at {
		return append(log, at)
	}
	j, _ := slices.BinarySearch(log, at)
	return slices.Insert(log, j, at)
}

// usage reports provider's windows as this process sees them.
func (s *store) usage(provider Provider) []WindowUsage {
	p := s.provs[provider]
	if p == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.clock()
	now := int64(wall.Sub(s.base))
	at := func(t int64) time.Time { return wall.Add(time.Duration(t - now)).Round(0) }
	p.prune(now)
	out := make([]WindowUsage, 0, len(p.rules)+1)
	for i, r := range p.rules {
		log := p.logs[i]
		u := WindowUsage{Window: r.name, Used: uint64(min(len(log), r.n)), Limit: uint64(r.n), ResetsAt: wall.Round(0)}
		if len(log) > 0 {
			// Slots claimed beyond the window's end keep it full after
			// the oldest leaves: the one that frees it is the n-th latest.
			u.ResetsAt = at(log[max(len(log)-r.n, 0)] + int64(r.length))
		}
		out = append(out, u)
	}
	if p.limits.MinInterval > 0 {
		u := WindowUsage{Window: WindowInterval, Limit: 1, ResetsAt: wall.Round(0)}
		if k := len(p.recent); k > 0 {
			u.Used, u.ResetsAt = 1, at(p.recent[k-1]+int64(p.limits.MinInterval))
		}
		out = append(out, u)
	}
	return out
}
