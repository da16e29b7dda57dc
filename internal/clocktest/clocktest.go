// Package clocktest is the hand-moved clock of the tests whose code takes
// a clock: the quota windows, the GPU queue's service times (Now), the
// alerts' timeouts (Now and After). Tests whose code reads time.Now and
// its timers directly run in a testing/synctest bubble instead.
package clocktest

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Clock is a clock the test moves by hand. It is safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	t      time.Time
	timers []timer
	// made counts the timers After has made; changed is closed when it
	// grows, for AwaitTimers.
	made    int
	changed chan struct{}
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// New returns a clock standing at t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time; pass c.Now where code takes a clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d, firing the timers it passes.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at.After(c.t) {
			kept = append(kept, tm)
			continue
		}
		tm.ch <- c.t
	}
	c.timers = kept
}

// After is time.After on the clock: the channel receives the clock's
// time once Advance has moved it d on. A d of zero or less fires at once.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
	} else {
		c.timers = append(c.timers, timer{at: c.t.Add(d), ch: ch})
	}
	c.made++
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	return ch
}

// AwaitTimers waits until After has made at least n timers in all, or
// ctx ends: tests order themselves on it before they Advance, instead of
// sleeping.
func (c *Clock) AwaitTimers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.made >= n {
			c.mu.Unlock()
			return nil
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch, made := c.changed, c.made
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("clocktest: %d of %d timers made: %w", made, n, ctx.Err())
		}
	}
}
