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
	provs map[string]*provState
	mu    sync.Mutex
}

type provState struct {
	limits Limits
	rules  []rule
	// logs[i] holds the slot times of rules[i], sorted, at most rules[i].n
	// of them, none older than the window.
	logs    [][]int64
	last    int64 // the latest slot claimed, when hasLast
	hasLast bool
}

func newStore(limits map[string]Limits, clock func() time.Time) *store {
	s := &store{clock: clock, base: clock(), provs: make(map[string]*provState, len(limits))}
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
func (s *store) reserve(provider string, maxWait time.Duration) (time.Duration, error) {
	p := s.provs[provider]
	if p == nil {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	slot, binding := p.next(now)
	wait := time.Duration(slot - now)
	if wait > maxWait {
		return 0, &NoSlotError{Provider: provider, Window: binding, Wait: wait}
	}
	p.add(slot)
	return wait, nil
}

// record counts a slot claimed elsewhere (through Redis) at time at, so the
// fallback knows what this replica already used.
func (s *store) record(provider string, at int64) {
	p := s.provs[provider]
	if p == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.prune(s.now())
	p.add(at)
}

// fill sets each local window of provider to hold exactly used[i] slots
// (as many as its limit keeps): dropping the oldest when it holds more,
// adding slots at now when it holds fewer. The added slots leave the window
// a full window length from now, which errs on the safe side.
func (s *store) fill(provider string, used []int) {
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

// prune drops the slots that left their window and keeps at most n per log:
// only the n latest can bind a new slot.
func (p *provState) prune(now int64) {
	for i, r := range p.rules {
		log := p.logs[i]
		cut := now - int64(r.length)
		j, _ := slices.BinarySearch(log, cut+1) // first slot > cut
		log = log[j:]
		if len(log) > r.n {
			log = log[len(log)-r.n:]
		}
		p.logs[i] = log
	}
}

// next returns the earliest slot ≥ now that keeps every window within its
// limit and the least interval, and the window that binds it ("" when now
// is free). Slots are FIFO, so every logged slot is ≤ the new one, and a
// window of length T containing it holds the slots in (t−T, t]: fewer than
// n of those means slot[k−n] ≤ t−T.
func (p *provState) next(now int64) (int64, string) {
	p.prune(now)
	slot, binding := now, ""
	if p.hasLast {
		if b := p.last + int64(p.limits.MinInterval); b > slot {
			slot, binding = b, WindowInterval
		}
	}
	for i, r := range p.rules {
		log := p.logs[i]
		if len(log) < r.n {
			continue
		}
		// On a tie the longer window is named: it is the one to wait out.
		if b := log[len(log)-r.n] + int64(r.length); b > now && b >= slot {
			slot, binding = b, r.name
		}
	}
	return slot, binding
}

// add logs a slot in every window. at is normally ≥ every logged slot; a
// recorded one may not be, and is inserted in order.
func (p *provState) add(at int64) {
	for i, r := range p.rules {
		log := p.logs[i]
		if n := len(log); n == 0 || log[n-1] <= at {
			log = append(log, at)
		} else {
			j, _ := slices.BinarySearch(log, at)
			log = slices.Insert(log, j, at)
		}
		if len(log) > r.n {
			log = log[len(log)-r.n:]
		}
		p.logs[i] = log
	}
	if !p.hasLast || at > p.last {
		p.last, p.hasLast = at, true
	}
}

// usage reports provider's windows as this process sees them.
func (s *store) usage(provider string) []WindowUsage {
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
		u := WindowUsage{Window: r.name, Used: uint64(len(p.logs[i])), Limit: uint64(r.n), ResetsAt: wall.Round(0)}
		if len(p.logs[i]) > 0 {
			u.ResetsAt = at(p.logs[i][0] + int64(r.length))
		}
		out = append(out, u)
	}
	if p.limits.MinInterval > 0 {
		u := WindowUsage{Window: WindowInterval, Limit: 1, ResetsAt: wall.Round(0)}
		if end := p.last + int64(p.limits.MinInterval); p.hasLast && end > now {
			u.Used, u.ResetsAt = 1, at(end)
		}
		out = append(out, u)
	}
	return out
}
