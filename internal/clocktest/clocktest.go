// Package clocktest is the hand-moved clock of the tests whose code takes
// a clock (func() time.Time): the quota windows, the GPU queue's service
// times. Tests that need timers and deadlines too run in a testing/synctest
// bubble instead.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a clock the test moves by hand. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time; pass c.Now where code takes a clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
