package gpu

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/upstream"
)

// The manager tests run in synctest bubbles: the poll ticker, drains and
// backoffs run on the bubble's virtual clock, and synctest.Wait returns
// once the manager has done all it can at the current instant. A test
// sleeps only to move that clock; half a poll interval past a tick keeps
// each check away from the instant the tick fires.

// step moves the virtual clock by d and waits for the manager to settle.
func step(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestHighWaterCutsAndRestoresCeiling: above high water the queue's ceiling
// is halved; it stays cut until pressure is Hysteresis points under high
// water, then MaxConcurrent comes back.
func TestHighWaterCutsAndRestoresCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		e.start()
		step(500 * time.Millisecond)
		if ok, why := e.m.Admit(); !ok || e.queue.last() != 4 {
			t.Fatalf("after warm-up: admit %v (%s), ceiling %d; want open, 4", ok, why, e.queue.last())
		}
		for _, s := range []struct {
			pct      float64
			ceiling  int
			pressure Pressure
		}{
			{50, 4, PressureNormal},
			{85, 2, PressureHigh},
			{82, 2, PressureHigh}, // under high water, within the hysteresis
			{76, 2, PressureHigh},
			{74, 4, PressureNormal},
			{81, 2, PressureHigh},
			{60, 4, PressureNormal},
		} {
			e.gpu.setPercent(s.pct)
			step(time.Second)
			st := e.m.Status()
			if e.queue.last() != s.ceiling || st.Pressure != s.pressure || st.Ceiling != s.ceiling || st.CeilingCut != (s.ceiling < 4) {
				t.Errorf("at %.0f%%: ceiling %d, status %v %.1f%% ceiling %d cut %v; want ceiling %d, %v",
					s.pct, e.queue.last(), st.Pressure, st.PressurePercent, st.Ceiling, st.CeilingCut, s.ceiling, s.pressure)
			}
		}
		if got, want := e.queue.history(), []int{4, 2, 4, 2, 4}; !slices.Equal(got, want) {
			t.Errorf("ceilings set %v, want %v (no flapping)", got, want)
		}
		if st := e.m.Status(); st.Cleanups != 0 || !st.Admitting {
			t.Errorf("high water alone cleaned up or closed the gate: %+v", st)
		}
	})
}

// TestCriticalCleanup: at critical the gate closes, the queue is drained,
// the model is unloaded, VRAM is seen to drop, the model is warmed and the
// gate reopens.
func TestCriticalCleanup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		e.start()
		step(500 * time.Millisecond)
		// The reload after the cleanup takes 3 s, so the closed gate can be
		// seen.
		e.ollama.PushLoad(upstreamtest.OllamaModelControl(), upstreamtest.Delay(3*time.Second, upstreamtest.OllamaModelControl()))

		e.gpu.setPercent(95)
		step(time.Second)
		st := e.m.Status()
		if st.Admitting || !strings.Contains(st.GateReason, "loading the model") {
			t.Errorf("during the reload: admitting %v (%q)", st.Admitting, st.GateReason)
		}
		if !strings.Contains(st.LastCleanupReason, "critical") || st.Cleanups != 1 || st.Model.Loaded {
			t.Errorf("status during the reload: %+v", st)
		}
		if got := e.ollama.ControlRequests(); !slices.Equal(got, []string{"load", "unload", "load"}) {
			t.Errorf("control requests %v, want load, unload, load", got)
		}
		if ok, _ := e.m.Admit(); ok {
			t.Error("Admit is true during the cleanup")
		}

		step(3 * time.Second)
		st = e.m.Status()
		if !st.Admitting || st.GateReason != "" || !st.Model.Warm || !st.Model.Loaded || st.Model.WarmupLatency != 3*time.Second {
			t.Errorf("after the reload: %+v", st)
		}
		if st.VRAMNotFreed || st.Pressure != PressureNormal || st.Model.SizeVRAM != modelVRAM || st.Model.ContextLength != 2048 {
			t.Errorf("after the reload: not freed %v, pressure %v, model %+v", st.VRAMNotFreed, st.Pressure, st.Model)
		}
		// Critical cut the ceiling on the poll that saw it, the drain shut
		// it, the reopen restored it.
		if got, want := e.queue.history(), []int{4, 2, 0, 4}; !slices.Equal(got, want) {
			t.Errorf("ceilings %v, want %v", got, want)
		}
		if e.gpu.percent() >= 90 {
			t.Errorf("VRAM at %.1f%% after the cleanup", e.gpu.percent())
		}
	})
}

// TestVRAMNotFreed: an unload that leaves the memory held is reported,
// then the manager backs off (exponentially across repeats), runs the
// restart command, and warms the model again.
func TestVRAMNotFreed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, func(c *ManagerConfig) { c.Policy.RestartCmd = "systemctl restart ollama" })
		e.start()
		step(500 * time.Millisecond)

		for round, backoff := range []time.Duration{5 * time.Second, 10 * time.Second} {
			e.gpu.setStuck(true)
			e.gpu.setPercent(95)
			step(time.Second) // the poll that sees critical; the unload
			step(10 * time.Second)
			st := e.m.Status()
			if !st.VRAMNotFreed || !strings.Contains(st.VRAMMessage, "7606") || st.Admitting ||
				!strings.Contains(st.GateReason, "VRAM not freed") || !strings.Contains(st.GateReason, backoff.String()) {
				t.Fatalf("round %d, after the recovery wait: %+v", round, st)
			}
			if n := len(e.commands()); n != round {
				t.Fatalf("round %d: restart ran %d times before the backoff ended", round, n)
			}
			step(backoff - time.Second)
			if n := len(e.commands()); n != round {
				t.Fatalf("round %d: restart ran before the %v backoff ended", round, backoff)
			}
			step(time.Second)
			st = e.m.Status()
			if n := len(e.commands()); n != round+1 || e.commands()[round] != "systemctl restart ollama" {
				t.Fatalf("round %d: restart commands %q", round, e.commands())
			}
			if !st.Admitting || st.VRAMNotFreed || !st.Model.Warm || st.Restarts != uint64(round+1) {
				t.Errorf("round %d, after restart and reload: %+v", round, st)
			}
		}
		if got := e.ollama.ControlRequests(); !slices.Equal(got, []string{"load", "unload", "load", "unload", "load"}) {
			t.Errorf("control requests %v", got)
		}
	})
}

// TestLeakKeptAfterUnload: the unload gives back the model's memory but
// the runner's leak stays, so loading the model again would put the card
// back at critical: that is not freed either. The manager backs off, runs
// the restart command, and only then warms the model and reopens.
func TestLeakKeptAfterUnload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, func(c *ManagerConfig) { c.Policy.RestartCmd = "systemctl restart ollama" })
		e.start()
		step(500 * time.Millisecond)
		e.gpu.setKeepLeak(true)
		e.gpu.setPercent(92)
		step(time.Second) // the poll that sees critical; the unload
		step(10 * time.Second)
		st := e.m.Status()
		if e.gpu.percent() >= 90 || st.Admitting || !st.VRAMNotFreed || !strings.Contains(st.VRAMMessage, "loading the model again") {
			t.Fatalf("after the unload (card at %.1f%%): %+v", e.gpu.percent(), st)
		}
		if n := len(e.commands()); n != 0 {
			t.Fatalf("restart ran %d times before the backoff", n)
		}
		step(5 * time.Second)
		st = e.m.Status()
		if got := e.commands(); len(got) != 1 {
			t.Fatalf("restart commands %q, want one", got)
		}
		if !st.Admitting || st.VRAMNotFreed || !st.Model.Warm || st.Restarts != 1 || e.gpu.percent() >= 80 {
			t.Errorf("after restart and reload (card at %.1f%%): %+v", e.gpu.percent(), st)
		}
	})
}

// TestCrashedRunnerLeakKept: a runner that crashed holds nothing in
// /api/ps, but the size it was last seen with still tells whether the
// model fits again.
func TestCrashedRunnerLeakKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		e.start()
		step(500 * time.Millisecond)
		// The runner died out of memory: its model is gone, its leak is
		// not, and the card is below critical.
		e.gpu.setKeepLeak(true)
		ctl := ollama.New(ollama.Config{BaseURL: e.ollama.URL, Model: "mistral"}, e.ollama.Client())
		if err := ctl.Unload(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.gpu.setPercent(70)
		e.m.Report(upstream.SignalCrash, "http 500: llama runner process has terminated: error: out of memory")
		step(10 * time.Second)
		st := e.m.Status()
		if !st.VRAMNotFreed || !strings.Contains(st.VRAMMessage, "loading the model again") || st.Admitting {
			t.Errorf("card at %.1f%%, status %+v", e.gpu.percent(), st)
		}
	})
}

// TestVRAMNotFreedWithoutRestart: with no restart command the model is
// warmed after the backoff anyway, and the status keeps saying the memory
// was not freed.
func TestVRAMNotFreedWithoutRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, func(c *ManagerConfig) { c.Policy.Critical = 99 })
		e.start()
		step(500 * time.Millisecond)
		e.gpu.setStuck(true)
		e.m.Report(upstream.SignalCrash, "http 500: llama runner process has terminated: error:fault")
		step(10*time.Second + 5*time.Second)
		st := e.m.Status()
		if len(e.commands()) != 0 || !st.Admitting || !st.VRAMNotFreed || !strings.Contains(st.VRAMMessage, "went from") {
			t.Errorf("commands %q, status %+v", e.commands(), st)
		}
	})
}

// TestCrashLeavesVRAMHeld: the runner is gone (nothing in /api/ps, so no
// size to compare), but the card stays at critical: that is not freed
// either, and the reload waits for the backoff.
func TestCrashLeavesVRAMHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		e.start()
		step(500 * time.Millisecond)
		// The runner dies and leaves its memory behind.
		e.gpu.setStuck(true)
		ctl := ollama.New(ollama.Config{BaseURL: e.ollama.URL, Model: "mistral"}, e.ollama.Client())
		if err := ctl.Unload(t.Context()); err != nil {
			t.Fatal(err)
		}
		e.gpu.setPercent(95)
		e.m.Report(upstream.SignalCrash, "http 500: llama runner process has terminated: exit status 2")
		step(10 * time.Second)
		st := e.m.Status()
		if !st.VRAMNotFreed || !strings.Contains(st.VRAMMessage, "critical") || st.Admitting {
			t.Errorf("status %+v", st)
		}
	})
}

// TestFailureTriggers: MaxFailures in a row, a runner crash and a refused
// connection each close the gate at once and lead to one cleanup; a full
// Ollama queue and successes do not.
func TestFailureTriggers(t *testing.T) {
	const (
		http500 = upstream.SignalServerError
		crash   = upstream.SignalCrash
		refused = upstream.SignalDown
		busy    = upstream.SignalBusy
		ok      = upstream.SignalOK
		none    = upstream.SignalNone
	)
	cases := []struct {
		name    string
		reports []upstream.Signal
		cleanup bool
		reason  string
	}{
		{"two failures", []upstream.Signal{http500, http500}, false, ""},
		{"success resets the count", []upstream.Signal{http500, http500, ok, http500, http500}, false, ""},
		{"max failures", []upstream.Signal{http500, ok, http500, http500, http500}, true, "3 local calls failed in a row"},
		{"bad answers count too", []upstream.Signal{upstream.SignalBadAnswer, upstream.SignalHung, upstream.SignalRejected}, true, "3 local calls failed in a row"},
		{"runner crash", []upstream.Signal{crash}, true, "the model runner crashed"},
		{"connection refused", []upstream.Signal{refused}, true, "refused the connection"},
		{"queue full is not a failure", []upstream.Signal{busy, busy, busy, busy}, false, ""},
		{"caller gone is not a failure", []upstream.Signal{none, none, none}, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newManagerEnv(t, nil)
				e.start()
				step(500 * time.Millisecond)
				for _, sig := range tc.reports {
					e.m.Report(sig, "upstream said "+sig.String())
				}
				// The gate closes in Report itself, before Run acts.
				ok, why := e.m.Admit()
				if ok == tc.cleanup || (tc.cleanup && !strings.Contains(why, tc.reason)) {
					t.Errorf("right after the reports: admit %v (%q), want %v with %q", ok, why, !tc.cleanup, tc.reason)
				}
				synctest.Wait()
				st := e.m.Status()
				want := uint64(0)
				if tc.cleanup {
					want = 1
				}
				if st.Cleanups != want || !st.Admitting || (tc.cleanup && !strings.Contains(st.LastCleanupReason, tc.reason)) {
					t.Errorf("cleanups %d (%q), admitting %v; want %d", st.Cleanups, st.LastCleanupReason, st.Admitting, want)
				}
				if tc.cleanup && st.ConsecutiveFailures != 0 {
					t.Errorf("failures in a row %d after the cleanup, want 0", st.ConsecutiveFailures)
				}
			})
		})
	}
}

// TestCleanupsNeverOverlap: triggers that arrive while a cleanup runs (a
// crash report, a critical reading, a periodic tick) are served by it, not
// by a second one running beside it or right after it.
func TestCleanupsNeverOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		var mu sync.Mutex
		active, peak := 0, 0
		e.ollama.SetLoadDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
			mu.Lock()
			active++
			peak = max(peak, active)
			mu.Unlock()
			upstreamtest.Delay(2*time.Second, upstreamtest.OllamaModelControl())(c)
			mu.Lock()
			active--
			mu.Unlock()
		}))
		e.start()
		step(2*time.Second + 500*time.Millisecond) // the start warm-up

		e.queue.setInFlight(1) // holds the cleanup in its drain
		e.m.Report(upstream.SignalCrash, "http 500: llama runner process has terminated: exit status 2")
		synctest.Wait()
		e.m.Report(upstream.SignalCrash, "http 500: llama runner process has terminated: exit status 2")
		e.gpu.setPercent(95)
		step(3 * time.Second) // polls see critical while draining
		e.queue.setInFlight(0)
		step(10 * time.Second) // drain ends; unload 2 s; reload 2 s; a few polls after

		st := e.m.Status()
		if st.Cleanups != 1 || !st.Admitting {
			t.Errorf("cleanups %d, admitting %v (%q); want one cleanup, gate open", st.Cleanups, st.Admitting, st.GateReason)
		}
		if got := e.ollama.ControlRequests(); !slices.Equal(got, []string{"load", "unload", "load"}) {
			t.Errorf("control requests %v, want load, unload, load", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if peak != 1 {
			t.Errorf("%d load/unload requests at once, want 1", peak)
		}
	})
}

// TestDrainWaitsForInFlight: the unload waits until no call is on the GPU,
// or until DrainTimeout passes.
func TestDrainWaitsForInFlight(t *testing.T) {
	t.Run("calls finish", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newManagerEnv(t, nil)
			e.start()
			step(500 * time.Millisecond)
			e.queue.setInFlight(2)
			e.m.Report(upstream.SignalCrash, "llama runner process has terminated")
			step(5 * time.Second)
			if e.queue.last() != 0 {
				t.Errorf("ceiling %d while draining, want 0", e.queue.last())
			}
			if got := e.ollama.ControlRequests(); !slices.Equal(got, []string{"load"}) {
				t.Fatalf("control requests %v while 2 calls were in flight, want no unload", got)
			}
			e.queue.setInFlight(0)
			synctest.Wait() // the drain ends at once: it waits on Idle, not on a poll
			if got := e.ollama.ControlRequests(); !slices.Equal(got, []string{"load", "unload", "load"}) {
				t.Errorf("control requests %v after the drain, want load, unload, load", got)
			}
		})
	})
	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newManagerEnv(t, nil)
			e.start()
			step(500 * time.Millisecond)
			e.queue.setInFlight(1)
			e.m.Report(upstream.SignalCrash, "llama runner process has terminated")
			step(10*time.Second - time.Millisecond)
			if n := len(e.ollama.ControlRequests()); n != 1 {
				t.Fatalf("unloaded before DrainTimeout")
			}
			step(time.Millisecond)
			if got := e.ollama.ControlRequests(); !slices.Equal(got, []string{"load", "unload", "load"}) {
				t.Errorf("control requests %v after DrainTimeout, want load, unload, load", got)
			}
		})
	})
}

// TestPeriodicCleanup: CleanupInterval unloads and reloads on schedule;
// 0 never does.
func TestPeriodicCleanup(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		want     uint64
	}{{time.Minute, 3}, {0, 0}} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e := newManagerEnv(t, func(c *ManagerConfig) { c.CleanupInterval = tc.interval })
				e.start()
				step(3*time.Minute + 30*time.Second)
				st := e.m.Status()
				if st.Cleanups != tc.want || !st.Admitting {
					t.Errorf("cleanups %d, admitting %v; want %d", st.Cleanups, st.Admitting, tc.want)
				}
				if tc.want > 0 && !strings.Contains(st.LastCleanupReason, "periodic") {
					t.Errorf("reason %q", st.LastCleanupReason)
				}
				if loads, unloads := e.gpu.counts(); loads != int(tc.want)+1 || unloads != int(tc.want) {
					t.Errorf("%d loads, %d unloads", loads, unloads)
				}
			})
		})
	}
}

// TestWarmupAtStart: the gate is closed until the first warm-up succeeds;
// a failed warm-up is retried after a backoff, with the gate closed.
func TestWarmupAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		if ok, why := e.m.Admit(); ok || !strings.Contains(why, "warm-up") {
			t.Errorf("before Run: admit %v (%q)", ok, why)
		}
		crash := upstreamtest.Error(500, "llama runner process has terminated: exit status 2")
		e.ollama.PushLoad(crash, crash, crash)
		e.start()
		step(3*time.Second + 500*time.Millisecond) // three attempts, 1 s and 2 s apart
		ok, why := e.m.Admit()
		if ok || !strings.Contains(why, "warm-up failed") || !strings.Contains(why, "next try in 5s") {
			t.Errorf("after a failed warm-up: admit %v (%q)", ok, why)
		}
		if st := e.m.Status(); st.Model.Warm || st.Model.Error == "" {
			t.Errorf("model status %+v", st.Model)
		}
		step(5 * time.Second)
		st := e.m.Status()
		if !st.Admitting || !st.Model.Warm || !st.Model.Loaded || st.Model.Error != "" {
			t.Errorf("after the retry: %+v", st)
		}
	})
}

// TestStatusWithoutReadings: no reader, no controller, an unreadable
// counter: the status says why, the pressure is unknown (never normal),
// and an unknown reading leaves the ceiling alone.
func TestStatusWithoutReadings(t *testing.T) {
	t.Run("no reader, no controller", func(t *testing.T) {
		m, err := NewManager(ManagerConfig{Policy: testPolicy()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		st := m.Status()
		if st.Reader != "none" || !strings.Contains(st.ReaderError, "no VRAM reader") || st.Pressure != PressureUnknown || st.Pressure.String() != "unknown" {
			t.Errorf("status %+v", st)
		}
		if ok, why := m.Admit(); ok || !strings.Contains(why, "local tier off") {
			t.Errorf("Admit = %v, %q", ok, why)
		}
		m.Report(upstream.SignalCrash, "llama runner process has terminated") // nothing to clean up, no panic
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		m.Run(ctx) // returns at once
	})
	t.Run("unreadable counter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newManagerEnv(t, nil)
			e.start()
			step(500 * time.Millisecond)
			e.gpu.setPercent(85)
			step(time.Second)
			// A GPU in reset: the counter reads with an error.
			if err := os.Remove(e.gpu.path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(e.gpu.path, 0o755); err != nil {
				t.Fatal(err)
			}
			step(time.Second)
			st := e.m.Status()
			if st.Pressure != PressureUnknown || st.ReaderError == "" || st.Reader != "sysfs" || e.queue.last() != 2 {
				t.Errorf("pressure %v, reader %q error %q, ceiling %d; want unknown, an error, ceiling still 2",
					st.Pressure, st.Reader, st.ReaderError, e.queue.last())
			}
		})
	})
}

// TestPickCard: the fullest discrete card counts, an APU only when alone,
// a configured PCI address wins.
func TestPickCard(t *testing.T) {
	d1 := Device{PCIBusID: "0000:03:00.0", VRAMTotal: 100, VRAMUsed: 50}
	d2 := Device{PCIBusID: "0000:0b:00.0", VRAMTotal: 100, VRAMUsed: 70}
	apu := Device{PCIBusID: "0000:12:00.0", VRAMTotal: 100, VRAMUsed: 99, Integrated: true}
	for _, tc := range []struct {
		name    string
		pci     string
		devices []Device
		want    string
	}{
		{"fullest discrete", "", []Device{d1, d2, apu}, "0000:0b:00.0"},
		{"apu alone", "", []Device{apu}, "0000:12:00.0"},
		{"configured", "0000:03:00.0", []Device{d1, d2, apu}, "0000:03:00.0"},
		{"configured missing", "0000:99:00.0", []Device{d1}, ""},
		{"none", "", nil, ""},
	} {
		m, err := NewManager(ManagerConfig{PCIBusID: tc.pci, Policy: testPolicy()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		d, ok, _ := m.pick(tc.devices)
		if ok != (tc.want != "") || (ok && d.PCIBusID != tc.want) {
			t.Errorf("%s: picked %q (%v), want %q", tc.name, d.PCIBusID, ok, tc.want)
		}
	}
}

// TestNewManagerValidates rejects a policy that cannot work.
func TestNewManagerValidates(t *testing.T) {
	reader := NewSysfs(filepath.Join(t.TempDir(), "none"))
	for _, tc := range []struct {
		name string
		edit func(*ManagerConfig)
		want string
	}{
		{"high water above critical", func(c *ManagerConfig) { c.Policy.HighWater = 95 }, "high water < critical"},
		{"critical above 100", func(c *ManagerConfig) { c.Policy.Critical = 120 }, "<= 100"},
		{"no poll interval", func(c *ManagerConfig) { c.Policy.PollInterval = 0 }, "PollInterval"},
		{"queue without concurrency", func(c *ManagerConfig) { c.Queue, c.MaxConcurrent = &fakeQueue{}, 0 }, "MaxConcurrent"},
		{"negative interval", func(c *ManagerConfig) { c.CleanupInterval = -time.Second }, "negative"},
	} {
		cfg := ManagerConfig{Reader: reader, Policy: testPolicy(), MaxConcurrent: 4}
		tc.edit(&cfg)
		if _, err := NewManager(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// TestShellCommand is the default RunCommand: /bin/sh -c, with the
// command's complaint in the error.
func TestShellCommand(t *testing.T) {
	if err := shellCommand(t.Context(), "true"); err != nil {
		t.Errorf("true: %v", err)
	}
	err := shellCommand(t.Context(), "echo 'unit ollama.service not found' >&2; exit 5")
	if err == nil || !strings.Contains(err.Error(), "exit status 5") || !strings.Contains(err.Error(), "ollama.service not found") {
		t.Errorf("failing command: %v", err)
	}
}

// TestStalledUnloadDoesNotHoldTheGate: a model server that accepts the
// unload and then stalls (the frozen PC) must not keep the manager, and
// with it the local tier's gate, stuck: the unload gives up after its
// bound, the model is warmed again and the gate reopens.
func TestStalledUnloadDoesNotHoldTheGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		e.start()
		step(500 * time.Millisecond)
		if ok, why := e.m.Admit(); !ok {
			t.Fatalf("gate closed after warm-up: %s", why)
		}
		e.ollama.PushLoad(upstreamtest.Hang()) // the unload stalls
		e.m.Report(upstream.SignalCrash, "http 500: llama runner process has terminated: exit status 2")
		step(10 * time.Second)
		if ok, _ := e.m.Admit(); ok {
			t.Fatal("gate open while the unload is still stalled")
		}
		step(5 * time.Minute)
		st := e.m.Status()
		if !st.Admitting || st.Cleanups != 1 {
			t.Fatalf("after the stalled unload: admitting %v (%q), %d cleanups; want the gate open again after one cleanup", st.Admitting, st.GateReason, st.Cleanups)
		}
	})
}

// TestRequestedCleanup: the owner's cleanup runs the whole cycle; a second
// request while it runs is refused, and so is one within
// ManualCleanupInterval of the first; after that interval one is taken.
func TestRequestedCleanup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newManagerEnv(t, nil)
		e.start()
		step(time.Second)
		if err := e.m.RequestCleanup("sentimentctl"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var busy *CleanupBusyError
		if st := e.m.Status(); st.Admitting {
			if err := e.m.RequestCleanup("again"); err == nil {
				t.Fatal("a second request was taken")
			}
		} else if err := e.m.RequestCleanup("again"); !errors.As(err, &busy) {
			t.Errorf("a request during the cleanup: %v, want *CleanupBusyError", err)
		}
		step(time.Minute - 2*time.Second)
		st := e.m.Status()
		if st.Cleanups != 1 || !st.Admitting || !strings.Contains(st.LastCleanupReason, "asked for: sentimentctl") {
			t.Fatalf("cleanups %d, admitting %v, reason %q; want the one asked for, done", st.Cleanups, st.Admitting, st.LastCleanupReason)
		}
		var soon *CleanupTooSoonError
		if err := e.m.RequestCleanup("too soon"); !errors.As(err, &soon) || soon.RetryAfter <= 0 {
			t.Errorf("a request within the interval: %v, want *CleanupTooSoonError", err)
		}
		step(2 * time.Second)
		if err := e.m.RequestCleanup("later"); err != nil {
			t.Errorf("a request after the interval: %v", err)
		}
		step(30 * time.Second)
		if loads, unloads := e.gpu.counts(); e.m.Status().Cleanups != 2 || unloads != 2 || loads != 3 {
			t.Errorf("cleanups %d, %d loads, %d unloads; want 2 cleanups", e.m.Status().Cleanups, loads, unloads)
		}
	})
}

func TestRequestedCleanupWithoutModelServer(t *testing.T) {
	m, err := NewManager(ManagerConfig{Policy: testPolicy(), MaxConcurrent: 1, Queue: &fakeQueue{}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RequestCleanup("x"); !errors.Is(err, ErrNoModelServer) {
		t.Errorf("%v, want ErrNoModelServer", err)
	}
}
