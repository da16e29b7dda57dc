package router

import (
	"sync"
	"time"
)

// errWindow counts errors by type over the last hour, in one-minute
// buckets, for Stats. Old buckets are dropped as time moves on, so memory
// stays bounded whatever the error rate.
type errWindow struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets [60]errBucket
}

type errBucket struct {
	minute int64 // Unix minute this bucket holds; 0 when empty
	counts map[string]uint64
}

func newErrWindow(now func() time.Time) *errWindow { return &errWindow{now: now} }

func (w *errWindow) add(kind string) {
	m := w.now().Unix() / 60
	w.mu.Lock()
	defer w.mu.Unlock()
	b := &w.buckets[m%60]
	if b.minute != m {
		b.minute = m
		clear(b.counts)
	}
	if b.counts == nil {
		b.counts = map[string]uint64{}
	}
	b.counts[kind]++
}

// lastHour sums the buckets of the last 60 minutes.
func (w *errWindow) lastHour() map[string]uint64 {
	m := w.now().Unix() / 60
	out := map[string]uint64{}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.buckets {
		if b.minute > m-60 && b.minute <= m {
			for k, v := range b.counts {
				out[k] += v
			}
		}
	}
	return out
}
