package cache

import (
	"container/list"
	"sync"
)

// memStore keeps answers in this process: a map by exact key, the
// answers of each ticker for near lookups, and one least-recently-used
// order for the bounds on entries, bytes and answers per ticker.
type memStore struct {
	cfg   *Config
	stats *counters

	mu       sync.Mutex
	byKey    map[string]*list.Element // of *memEntry
	byTicker map[string][]*memEntry
	lru      list.List // front: most recently used
	bytes    int64
	// tick orders uses: each entry keeps the tick of its last use, so
	// that a ticker's least recently used answer is found among its own.
	tick uint64
}

type memEntry struct {
	entry
	ticker string
	size   int64
	elem   *list.Element
	used   uint64
}

// touchLocked makes me the most recently used.
func (s *memStore) touchLocked(me *memEntry) {
	s.tick++
	me.used = s.tick
	s.lru.MoveToFront(me.elem)
}

func newMemStore(cfg *Config, stats *counters) *memStore {
	return &memStore{cfg: cfg, stats: stats, byKey: make(map[string]*list.Element), byTicker: make(map[string][]*memEntry)}
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// lookup finds the exact key, else the nearest answer of the ticker that
// the guard lets stand; a hit becomes the most recently used. An expired
// answer is dropped when met.
func (s *memStore) lookup(q *query, c *Cache) match {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[q.key]; ok {
		me := el.Value.(*memEntry)
		if !c.expired(&me.ans, now) {
			s.touchLocked(me)
			return match{e: &me.entry, exact: true, sim: 1}
		}
		s.removeLocked(me)
	}
	list := s.byTicker[q.ticker]
	candidates := make([]*entry, 0, len(list))
	for _, me := range list {
		candidates = append(candidates, &me.entry)
	}
	m := c.nearest(q, candidates, now)
	if m.e != nil {
		s.touchLocked(s.byKey[m.e.key].Value.(*memEntry))
	}
	return m
}

// store keeps e, replacing an answer under the same key, and evicts the
// least recently used answers beyond the bounds: the ticker's own first,
// then anyone's.
func (s *memStore) store(ticker string, e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[e.key]; ok {
		s.removeLocked(el.Value.(*memEntry))
	}
	s.tick++
	me := &memEntry{entry: *e, ticker: ticker, size: e.size(), used: s.tick}
	me.elem = s.lru.PushFront(me)
	s.byKey[e.key] = me.elem
	s.byTicker[ticker] = append(s.byTicker[ticker], me)
	s.bytes += me.size
	if list := s.byTicker[ticker]; len(list) > s.cfg.PerTicker {
		oldest := list[0]
		for _, x := range list[1:] {
			if x.used < oldest.used {
				oldest = x
			}
		}
		s.removeLocked(oldest)
		s.stats.evicted.Add(1)
	}
	for s.lru.Len() > s.cfg.MaxEntries || (s.bytes > s.cfg.MaxBytes && s.lru.Len() > 1) {
		s.removeLocked(s.lru.Back().Value.(*memEntry))
		s.stats.evicted.Add(1)
	}
}

func (s *memStore) removeLocked(me *memEntry) {
	s.lru.Remove(me.elem)
	delete(s.byKey, me.key)
	s.bytes -= me.size
	list := s.byTicker[me.ticker]
	for i, x := range list {
		if x == me {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byTicker, me.ticker)
	} else {
		s.byTicker[me.ticker] = list
	}
}
