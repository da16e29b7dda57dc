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
	ticker, key string
	text        *Text
	pre         float64
	// done is closed when the judging call ends; ans and keep are set
	// before.
	done chan struct{}
	ans  stored
	keep bool
}

// claim returns the flight a call for (ticker, key, t) should wait for,
// or, when there is none, a new one it leads (leader true).
func (fl *flights) claim(ticker, key string, t *Text, pre float64, c *Cache) (f *flight, leader bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if f := fl.byKey[key]; f != nil {
		return f, false
	}
	var best *flight
	bestSim := 0.0
	for _, f := range fl.byTicker[ticker] {
		sim := Similarity(t, f.text)
		if sim < c.cfg.Similarity || sim <= bestSim {
			continue
		}
		if c.guard.Check(t, f.text, pre, f.pre) != "" {
			c.stats.refusals.Add(1)
			continue
		}
		best, bestSim = f, sim
	}
	if best != nil {
		return best, false
	}
	f = &flight{ticker: ticker, key: key, text: t, pre: pre, done: make(chan struct{})}
	fl.byKey[key] = f
	if fl.byTicker == nil {
		fl.byTicker = make(map[string][]*flight)
	}
	fl.byTicker[ticker] = append(fl.byTicker[ticker], f)
	return f, true
}

// finish ends f with its answer (keep false: none worth sharing) and wakes
// its waiters.
func (fl *flights) finish(f *flight, s stored, keep bool) {
	fl.mu.Lock()
	delete(fl.byKey, f.key)
	list := fl.byTicker[f.ticker]
	for i, g := range list {
		if g == f {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(fl.byTicker, f.ticker)
	} else {
		fl.byTicker[f.ticker] = list
	}
	fl.mu.Unlock()
	f.ans, f.keep = s, keep
	close(f.done)
}
