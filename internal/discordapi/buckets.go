package discordapi

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Buckets are Discord's rate-limit buckets of webhooks: each webhook has
// its own bucket of a default limit per window, and Set puts webhooks in
// a shared one, as Discord does with the webhooks of one server. A window
// starts at its bucket's first request. It is safe for concurrent use.
type Buckets struct {
	mu         sync.Mutex
	limit      int
	resetAfter time.Duration
	byName     map[string]*bucket
	ofHook     map[string]string // webhook id -> bucket name
}

type bucket struct {
	limit      int
	resetAfter time.Duration
	count      int
	windowEnd  time.Time
}

// NewBuckets returns buckets whose default admits limit requests per
// resetAfter (DefaultLimit per DefaultResetAfter on Discord).
func NewBuckets(limit int, resetAfter time.Duration) *Buckets {
	return &Buckets{limit: limit, resetAfter: resetAfter, byName: make(map[string]*bucket), ofHook: make(map[string]string)}
}

// Set puts the webhook in the bucket called name, which admits limit
// requests per window of resetAfter. Webhooks given the same name share
// one bucket; the last limit and resetAfter set for a name hold.
func (bs *Buckets) Set(webhookID, name string, limit int, resetAfter time.Duration) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.byName[name]
	if b == nil {
		b = &bucket{}
		bs.byName[name] = b
	}
	b.limit, b.resetAfter = limit, resetAfter
	bs.ofHook[webhookID] = name
}

// Take counts one request of the webhook at now against its bucket. It
// returns the bucket's name (for SetHeaders), and whether the request is
// admitted; when not, wait is the time left in the window.
func (bs *Buckets) Take(webhookID string, now time.Time) (name string, ok bool, wait time.Duration) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	name, b := bs.bucketLocked(webhookID)
	if !now.Before(b.windowEnd) {
		b.count, b.windowEnd = 0, now.Add(b.resetAfter)
	}
	if b.count >= b.limit {
		return name, false, b.windowEnd.Sub(now)
	}
	b.count++
	return name, true, 0
}

// bucketLocked returns the webhook's bucket, making its own default one
// on first use; the name is a hash, opaque as Discord's are. bs.mu is
// held.
func (bs *Buckets) bucketLocked(webhookID string) (string, *bucket) {
	name, ok := bs.ofHook[webhookID]
	if !ok {
		f := fnv.New64a()
		_, _ = f.Write([]byte(webhookID))
		name = fmt.Sprintf("%016x", f.Sum64())
		bs.ofHook[webhookID] = name
	}
	b := bs.byName[name]
	if b == nil {
		b = &bucket{limit: bs.limit, resetAfter: bs.resetAfter}
		bs.byName[name] = b
	}
	return name, b
}

// SetHeaders writes the X-RateLimit-* headers of bucket name as it stands
// at now, as Discord does on every answer to a known webhook; nothing for
// a bucket that does not exist.
func (bs *Buckets) SetHeaders(h http.Header, name string, now time.Time) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.byName[name]
	if b == nil {
		return
	}
	after := max(0, b.windowEnd.Sub(now).Seconds())
	h.Set("X-RateLimit-Limit", strconv.Itoa(b.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, b.limit-b.count)))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.windowEnd.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", name)
}
