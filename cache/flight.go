package cache

import "sync"

// flights are the items being judged now: a call for the same item, or a
// near-identical one the guard lets stand, waits for the answer instead of
// calling a model too.
type flights struct {
	mu       sync.Mutex
	byKey    map[string]*flight
	byTicker map[string][]*flight
}

// flight is one item being judged.
type flight struct {
	q *query
	// done is closed when the judging call ends; ans and keep are set
	// before.
	done chan struct{}
	ans  stored
	keep bool
}

// claim returns the flight a call for q should wait for, or, when there
// is none, a new one it leads (leader true).
func (fl *flights) claim(q *query, c *Cache) (f *flight, leader bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if f := fl.byKey[q.key]; f != nil {
		return f, false
	}
	var best *flight
	bestSim := 0.0
	for _, f := range fl.byTicker[q.ticker] {
		sim, ok := c.similarity(q, &f.q.text, f.q.vec)
		if !ok || sim < c.cfg.Similarity || sim <= bestSim {
			continue
		}
		if c.guard.Check(&q.text, &f.q.text, q.pre, f.q.pre) != "" {
			c.stats.refusals.Add(1)
			continue
		}
		best, bestSim = f, sim
	}
	if best != nil {
		return best, false
	}
	f = &flight{q: q, done: make(chan struct{})}
	fl.byKey[q.key] = f
	if fl.byTicker == nil {
		fl.byTicker = make(map[string][]*flight)
	}
	fl.byTicker[q.ticker] = append(fl.byTicker[q.ticker], f)
	return f, true
}

// finish ends f with its answer (keep false: none worth sharing) and wakes
// its waiters.
func (fl *flights) finish(f *flight, s stored, keep bool) {
	fl.mu.Lock()
	delete(fl.byKey, f.q.key)
	list := fl.byTicker[f.q.ticker]
	for i, g := range list {
		if g == f {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(fl.byTicker, f.q.ticker)
	} else {
		fl.byTicker[f.q.ticker] = list
	}
	fl.mu.Unlock()
	f.ans, f.keep = s, keep
	close(f.done)
}
