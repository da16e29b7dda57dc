package upstreamtest

import (
	"sync"
	"time"
)

// Slots is a model server with a fixed number of parallel slots, as the
// owner's GPU under Ollama: a call that finds every slot taken gets the
// crashed runner's HTTP 500 (the card out of VRAM); one that finds a slot
// holds it for the service time, then answers 200 in the fake's format.
// Install it with fake.SetDefault(s.Behavior()).
//
// A slot is freed before the answer is written, so by the time a client
// has its answer (and releases its own queue slot) the server has room
// again, as a runner that has finished generating does. That is why the
// slots are counted here and not with the fake's InFlight, which falls
// only once the answer is out.
type Slots struct {
	n       int
	service time.Duration

	mu                  sync.Mutex
	busy, peak, crashes int
	served              int
}

// NewSlots returns a server of n slots, each call holding one for service.
func NewSlots(n int, service time.Duration) *Slots {
	return &Slots{n: n, service: service}
}

// Behavior answers calls as the slotted server.
func (s *Slots) Behavior() Behavior {
	return func(c *Call) {
		s.mu.Lock()
		if s.busy >= s.n {
			s.crashes++
			s.mu.Unlock()
			OllamaRunnerTerminated()(c)
			return
		}
		s.busy++
		s.peak = max(s.peak, s.busy)
		s.mu.Unlock()

		t := time.NewTimer(s.service)
		select {
		case <-t.C:
		case <-c.R.Context().Done():
		case <-c.Stopped():
		}
		t.Stop()
		s.mu.Lock()
		s.busy--
		s.served++
		s.mu.Unlock()
		Answer(BullishJSON)(c)
	}
}

// Counts returns the most calls served at once, the 500s answered for
// calls beyond the slots, and the calls served.
func (s *Slots) Counts() (peak, crashes, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.crashes, s.served
}
