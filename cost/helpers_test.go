package cost

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York without the system's zone files

	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/logtest"
)

// alerts records the crossings the callback heard.
type alerts struct {
	mu  sync.Mutex
	got []Crossing
}

func (a *alerts) fn(_ context.Context, c Crossing) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, c)
}

func (a *alerts) list() []Crossing {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Crossing(nil), a.got...)
}

// count returns how many crossings of period were heard.
func (a *alerts) count(p Period) int {
	n := 0
	for _, c := range a.list() {
		if c.Period == p {
			n++
		}
	}
	return n
}

// rig is a Totals on a hand-moved clock, with its alerts and log.
type rig struct {
	*Totals
	clk    *clocktest.Clock
	alerts *alerts
	logs   *logtest.Buffer
}

func newRig(t *testing.T, cfg Config, start time.Time, opts ...Option) *rig {
	t.Helper()
	r := &rig{clk: clocktest.New(start), alerts: &alerts{}, logs: &logtest.Buffer{}}
	opts = append([]Option{WithClock(r.clk.Now), WithAlert(r.alerts.fn),
		WithLogger(slog.New(slog.NewTextHandler(r.logs, nil)))}, opts...)
	tot, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(tot.Close)
	r.Totals = tot
	return r
}

// to moves the clock to at.
func (r *rig) to(at time.Time) { r.clk.Advance(at.Sub(r.clk.Now())) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	z, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return z
}
