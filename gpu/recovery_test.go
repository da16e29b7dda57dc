package gpu

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/upstream"
)

// The recovery state machine alone: no clock, no goroutine, no model
// server. Times are plain values carried by the events.

var (
	testRules = rules{
		maxFailures: 3,
		restart:     true,
		minBackoff:  5 * time.Second,
		maxBackoff:  5 * time.Minute,
		stableAfter: time.Minute,
		interval:    5 * time.Minute,
	}
	t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
)

// with returns s changed by edit, so that a case reads as its difference
// from a named state.
func with(s state, edit func(*state)) state {
	edit(&s)
	return s
}

// TestNext is the transition function phase by event.
func TestNext(t *testing.T) {
	noRestart := testRules
	noRestart.restart = false
	countless := testRules
	countless.maxFailures = 0

	const cause = "VRAM 95.0% used on 0000:03:00.0, at or above critical (90%)"
	const seen = "VRAM used went from 13000 to 12900 MiB (79.1%)"
	open := state{phase: phaseOpen, lastReopen: t0, streak: 1, cleanups: 4, lastCleanup: "earlier", lastCleanupAt: t0.Add(-time.Hour)}
	pending := with(open, func(s *state) {
		s.phase, s.cause, s.gate, s.failures = phasePending, "the model runner crashed: exit status 2", "the model runner crashed: exit status 2; cleanup pending", 1
	})
	draining := with(open, func(s *state) {
		s.phase, s.cause, s.gate, s.cleanups = phaseDraining, cause, "cleanup ("+cause+"): waiting for GPU calls in flight", 5
	})
	unloading := with(draining, func(s *state) { s.phase, s.gate = phaseUnloading, "cleanup ("+cause+"): unloading the model" })
	verifying := with(unloading, func(s *state) { s.phase, s.check = phaseVerifying, checkUnload })
	again := with(verifying, func(s *state) {
		s.check, s.notFreed, s.vramMsg = checkAgain, true, seen
		s.gate = "VRAM not freed after unloading the model (" + seen + "); checking again in 5s"
	})
	restarting := with(again, func(s *state) {
		s.phase, s.gate = phaseRestarting, "VRAM not freed after unload ("+seen+"): restarting the model server"
	})
	warming := with(verifying, func(s *state) {
		s.phase, s.warmWhy, s.gate = phaseWarming, warmAfterCleanup, "loading the model (after cleanup)"
	})
	backoff := with(warming, func(s *state) {
		s.phase, s.wait, s.then, s.warmFails, s.warmErr = phaseBackoff, 5*time.Second, phaseWarming, 1, "boom"
		s.gate = "warm-up failed (after cleanup): boom; next try in 5s"
	})
	off := state{phase: phaseOff, gate: "local tier off: no model server to control"}
	starting := state{phase: phaseWarming, warmWhy: warmAtStart, gate: "waiting for the first warm-up of the model"}

	type tc struct {
		name  string
		rules rules
		from  state
		ev    event
		want  state
	}
	cases := []tc{
		// Run begins.
		{name: "start: the first warm-up begins", from: starting, ev: evStart{},
			want: with(starting, func(s *state) { s.gate = "loading the model (start)" })},
		{name: "start: an open gate stays open", from: open, ev: evStart{}, want: open},

		// Reports of local calls.
		{name: "an answer resets the failures", from: with(open, func(s *state) { s.failures = 2 }),
			ev: evReport{sig: upstream.SignalOK}, want: open},
		{name: "a full queue is not a failure", from: open, ev: evReport{sig: upstream.SignalBusy, detail: "503"}, want: open},
		{name: "a call that says nothing is not a failure", from: open, ev: evReport{sig: upstream.SignalNone}, want: open},
		{name: "one failure is counted", from: open, ev: evReport{sig: upstream.SignalServerError, detail: "500"},
			want: with(open, func(s *state) { s.failures = 1 })},
		{name: "max failures in a row close the gate", from: with(open, func(s *state) { s.failures = 2 }),
			ev: evReport{sig: upstream.SignalBadAnswer, detail: "not JSON:\n  {oops"},
			want: with(open, func(s *state) {
				s.phase, s.failures = phasePending, 3
				s.cause = "3 local calls failed in a row, the last with: not JSON: {oops"
				s.gate = s.cause + "; cleanup pending"
			})},
		{name: "no count without max failures", rules: countless, from: with(open, func(s *state) { s.failures = 10 }),
			ev: evReport{sig: upstream.SignalServerError}, want: with(open, func(s *state) { s.failures = 11 })},
		{name: "a crashed runner closes the gate at once", from: open,
			ev:   evReport{sig: upstream.SignalCrash, detail: "exit status 2"},
			want: with(pending, func(s *state) {})},
		{name: "a refused connection closes the gate at once", from: open,
			ev: evReport{sig: upstream.SignalDown, detail: "dial tcp: connection refused"},
			want: with(open, func(s *state) {
				s.phase, s.failures = phasePending, 1
				s.cause = "the model server refused the connection: dial tcp: connection refused"
				s.gate = s.cause + "; cleanup pending"
			})},
		{name: "a crash while pending is only counted", from: pending, ev: evReport{sig: upstream.SignalCrash, detail: "again"},
			want: with(pending, func(s *state) { s.failures = 2 })},
		{name: "a crash while draining is only counted", from: draining, ev: evReport{sig: upstream.SignalCrash, detail: "again"},
			want: with(draining, func(s *state) { s.failures = 1 })},
		{name: "a crash with no model server is only counted", from: off, ev: evReport{sig: upstream.SignalCrash},
			want: with(off, func(s *state) { s.failures = 1 })},

		// Triggers.
		{name: "critical begins a cleanup", from: with(open, func(s *state) { s.lastReopen, s.failures = time.Time{}, 2 }),
			ev:   evTrigger{source: trigPressure, reason: cause, at: t0},
			want: with(draining, func(s *state) { s.lastReopen, s.lastCleanupAt, s.lastCleanup = time.Time{}, t0, cause })},
		{name: "a cleanup soon after the reopening is a repeat", from: open,
			ev: evTrigger{source: trigPressure, reason: cause, at: t0.Add(10 * time.Second)},
			want: with(draining, func(s *state) {
				s.streak, s.lastCleanupAt, s.lastCleanup = 2, t0.Add(10*time.Second), cause
			})},
		{name: "a cleanup after StableAfter is fresh", from: with(open, func(s *state) { s.streak = 4 }),
			ev:   evTrigger{source: trigPressure, reason: cause, at: t0.Add(time.Minute)},
			want: with(draining, func(s *state) { s.lastCleanupAt, s.lastCleanup = t0.Add(time.Minute), cause })},
		{name: "a periodic cleanup is never a repeat", from: with(open, func(s *state) { s.streak = 3 }),
			ev: evTrigger{source: trigPeriodic, at: t0.Add(time.Second)},
			want: with(draining, func(s *state) {
				s.cause = "periodic unload and reload (every 5m0s)"
				s.gate = "cleanup (" + s.cause + "): waiting for GPU calls in flight"
				s.lastCleanupAt, s.lastCleanup = t0.Add(time.Second), s.cause
			})},
		{name: "Run takes up a pending report", from: pending, ev: evTrigger{source: trigReported, at: t0.Add(time.Hour)},
			want: with(pending, func(s *state) {
				s.phase, s.failures, s.cleanups = phaseDraining, 0, 5
				s.gate = "cleanup (" + s.cause + "): waiting for GPU calls in flight"
				s.lastCleanupAt, s.lastCleanup = t0.Add(time.Hour), s.cause
			})},
		{name: "a periodic cleanup serves a pending report", from: pending, ev: evTrigger{source: trigPeriodic, at: t0.Add(time.Hour)},
			want: with(pending, func(s *state) {
				s.phase, s.failures, s.cleanups = phaseDraining, 0, 5
				s.cause = "periodic unload and reload (every 5m0s)"
				s.gate = "cleanup (" + s.cause + "): waiting for GPU calls in flight"
				s.lastCleanupAt, s.lastCleanup = t0.Add(time.Hour), s.cause
			})},
		{name: "a reading does not begin a cleanup while one is pending", from: pending,
			ev: evTrigger{source: trigPressure, reason: cause, at: t0}, want: pending},
		{name: "a stale wake-up with the gate open is ignored", from: open,
			ev: evTrigger{source: trigReported, at: t0}, want: open},
		{name: "no cleanup without a model server", from: off, ev: evTrigger{source: trigPeriodic, at: t0}, want: off},

		// The cleanup's steps.
		{name: "drained: unload", from: draining, ev: evDrained{}, want: unloading},
		{name: "unloaded: check the memory", from: unloading, ev: evUnloaded{}, want: verifying},
		{name: "freed: reload", from: with(verifying, func(s *state) { s.notFreed, s.vramMsg = true, "old" }),
			ev: evVerified{freed: true, msg: seen}, want: warming},
		{name: "freed on a repeat: back off before the reload", from: with(verifying, func(s *state) { s.streak = 2 }),
			ev: evVerified{freed: true, msg: seen},
			want: with(verifying, func(s *state) {
				s.streak, s.phase, s.wait, s.then, s.warmWhy = 2, phaseBackoff, 5*time.Second, phaseWarming, warmAfterCleanup
				s.gate = "cleanup 2 in a row (" + cause + "): waiting 5s before loading the model again"
			})},
		{name: "freed on the fourth in a row: a longer backoff", from: with(verifying, func(s *state) { s.streak = 4 }),
			ev: evVerified{freed: true, msg: seen},
			want: with(verifying, func(s *state) {
				s.streak, s.phase, s.wait, s.then, s.warmWhy = 4, phaseBackoff, 20*time.Second, phaseWarming, warmAfterCleanup
				s.gate = "cleanup 4 in a row (" + cause + "): waiting 20s before loading the model again"
			})},
		{name: "not freed: back off, then look again", from: verifying, ev: evVerified{freed: false, msg: seen},
			want: with(again, func(s *state) {
				s.phase, s.wait, s.then, s.check, s.warmWhy = phaseBackoff, 5*time.Second, phaseVerifying, checkUnload, warmAfterCleanup
			})},
		{name: "not freed on the third in a row: a longer backoff", from: with(verifying, func(s *state) { s.streak = 3 }),
			ev: evVerified{freed: false, msg: seen},
			want: with(again, func(s *state) {
				s.streak, s.phase, s.wait, s.then, s.check, s.warmWhy = 3, phaseBackoff, 20*time.Second, phaseVerifying, checkUnload, warmAfterCleanup
				s.gate = "VRAM not freed after unloading the model (" + seen + "); checking again in 20s"
			})},
		{name: "freed on the second look: reload", from: again, ev: evVerified{freed: true, msg: "VRAM used 1024 MiB, 6.3%"},
			want: with(again, func(s *state) {
				s.phase, s.warmWhy, s.gate = phaseWarming, warmAfterCleanup, "loading the model (after cleanup)"
				s.notFreed, s.vramMsg = false, "VRAM used 1024 MiB, 6.3%"
			})},
		{name: "still held: the restart command", from: again, ev: evVerified{freed: false, msg: seen}, want: restarting},
		{name: "still held, no restart command: reload anyway", rules: noRestart, from: again,
			ev: evVerified{freed: false, msg: seen},
			want: with(again, func(s *state) {
				s.phase, s.warmWhy, s.gate = phaseWarming, warmAfterCleanup, "loading the model (after cleanup)"
			})},
		{name: "restarted: check the memory", from: restarting, ev: evRestarted{},
			want: with(restarting, func(s *state) { s.phase, s.check, s.restarts = phaseVerifying, checkRestart, 1 })},
		{name: "still held after the restart: reload anyway",
			from: with(restarting, func(s *state) { s.phase, s.check = phaseVerifying, checkRestart }),
			ev:   evVerified{freed: false, msg: seen},
			want: with(restarting, func(s *state) {
				s.phase, s.check, s.warmWhy, s.gate = phaseWarming, checkRestart, warmAfterCleanup, "loading the model (after cleanup)"
				s.vramMsg = seen + " (after running the restart command)"
			})},
		{name: "freed after the restart: reload",
			from: with(restarting, func(s *state) { s.phase, s.check = phaseVerifying, checkRestart }),
			ev:   evVerified{freed: true, msg: "VRAM used 1024 MiB, 6.3%"},
			want: with(restarting, func(s *state) {
				s.phase, s.check, s.warmWhy, s.gate = phaseWarming, checkRestart, warmAfterCleanup, "loading the model (after cleanup)"
				s.notFreed, s.vramMsg = false, "VRAM used 1024 MiB, 6.3%"
			})},
		{name: "warm: the gate opens", from: with(warming, func(s *state) { s.warmFails, s.warmErr, s.failures = 2, "boom", 1 }),
			ev:   evWarmed{at: t0.Add(time.Hour), latency: 3 * time.Second},
			want: with(warming, func(s *state) { s.phase, s.gate, s.lastReopen = phaseOpen, "", t0.Add(time.Hour) })},
		{name: "warm-up failed: back off", from: warming, ev: evWarmed{err: errors.New("http 500:\nboom")},
			want: with(backoff, func(s *state) {
				s.warmErr = "http 500:\nboom"
				s.gate = "warm-up failed (after cleanup): http 500: boom; next try in 5s"
			})},
		{name: "warm-up failed again and again: the backoff stops at MaxBackoff",
			from: with(warming, func(s *state) { s.warmFails = 6 }), ev: evWarmed{err: errors.New("boom")},
			want: with(backoff, func(s *state) {
				s.warmFails, s.wait = 7, 5*time.Minute
				s.gate = "warm-up failed (after cleanup): boom; next try in 5m0s"
			})},
		{name: "a failed first warm-up keeps saying so", from: with(starting, func(s *state) { s.gate = "loading the model (start)" }),
			ev: evWarmed{err: errors.New("boom")},
			want: with(starting, func(s *state) {
				s.phase, s.wait, s.then, s.warmFails, s.warmErr = phaseBackoff, 5*time.Second, phaseWarming, 1, "boom"
				s.gate = "warm-up failed (start): boom; next try in 5s"
			})},
		{name: "backoff over: look again", from: with(again, func(s *state) { s.phase, s.then = phaseBackoff, phaseVerifying }),
			ev: evWaited{}, want: with(again, func(s *state) { s.then = phaseVerifying })},
		{name: "backoff over: warm again", from: backoff, ev: evWaited{},
			want: with(backoff, func(s *state) { s.phase, s.gate = phaseWarming, "loading the model (after cleanup)" })},
	}

	// Each step's outcome belongs to its own phase: anywhere else it
	// changes nothing, and no trigger begins a cleanup while one runs.
	steps := []struct {
		ev    event
		owner phase
	}{
		{evStart{}, phaseWarming}, {evDrained{}, phaseDraining}, {evUnloaded{}, phaseUnloading},
		{evVerified{freed: true}, phaseVerifying}, {evRestarted{}, phaseRestarting},
		{evWarmed{at: t0}, phaseWarming}, {evWaited{}, phaseBackoff},
	}
	triggers := map[string]event{
		"a reading":     evTrigger{source: trigPressure, reason: cause, at: t0.Add(time.Hour)},
		"a report":      evTrigger{source: trigReported, at: t0.Add(time.Hour)},
		"the interval":  evTrigger{source: trigPeriodic, at: t0.Add(time.Hour)},
		"a crash":       evReport{sig: upstream.SignalCrash, detail: "exit status 2"},
		"a refused one": evReport{sig: upstream.SignalDown, detail: "connection refused"},
	}
	for _, from := range []state{off, open, draining, unloading, verifying, restarting, warming, backoff} {
		for _, st := range steps {
			if st.owner != from.phase {
				cases = append(cases, tc{name: fmt.Sprintf("%T in %v is ignored", st.ev, from.phase), from: from, ev: st.ev, want: from})
			}
		}
		if !from.phase.busy() {
			continue
		}
		for what, ev := range triggers {
			want := from
			if _, ok := ev.(evReport); ok {
				want.failures++
			}
			cases = append(cases, tc{name: fmt.Sprintf("%s while %v begins nothing", what, from.phase), from: from, ev: ev, want: want})
		}
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.rules
			if r == (rules{}) {
				r = testRules
			}
			if got := next(c.from, c.ev, r); got != c.want {
				t.Errorf("next(%v, %T%+v)\n got %+v\nwant %+v", c.from.phase, c.ev, c.ev, got, c.want)
			}
		})
	}
}

// walk applies events in turn and returns the final state and the phases
// passed through.
func walk(s state, r rules, evs ...event) (state, []phase) {
	var phases []phase
	for _, ev := range evs {
		s = next(s, ev, r)
		phases = append(phases, s.phase)
	}
	return s, phases
}

// cleanup is the events of one cleanup at time at whose unload frees the
// memory.
func cleanup(at time.Time, reason string) []event {
	return []event{
		evTrigger{source: trigPressure, reason: reason, at: at},
		evDrained{}, evUnloaded{}, evVerified{freed: true, msg: "freed"},
	}
}

// TestNextRepeatedCleanups: cleanups that follow each other within
// StableAfter of the reopening back off before the reload, longer each
// time; one after a quiet minute, and a periodic one, are fresh.
func TestNextRepeatedCleanups(t *testing.T) {
	s := state{phase: phaseOpen}
	at := t0
	for i, want := range []time.Duration{0, 5 * time.Second, 10 * time.Second, 20 * time.Second} {
		var phases []phase
		s, phases = walk(s, testRules, cleanup(at, "critical")...)
		if want == 0 {
			if s.phase != phaseWarming {
				t.Fatalf("cleanup %d: %v (%v), want a reload at once", i+1, s.phase, phases)
			}
		} else {
			if s.phase != phaseBackoff || s.wait != want || s.then != phaseWarming || s.streak != i+1 {
				t.Fatalf("cleanup %d: %+v, want a %v backoff before the reload", i+1, s, want)
			}
			s = next(s, evWaited{}, testRules)
		}
		at = at.Add(2 * time.Second)
		s = next(s, evWarmed{at: at}, testRules)
		if s.phase != phaseOpen {
			t.Fatalf("cleanup %d: the gate did not reopen: %+v", i+1, s)
		}
		at = at.Add(10 * time.Second) // the next one comes soon
	}
	if s.cleanups != 4 {
		t.Errorf("%d cleanups counted, want 4", s.cleanups)
	}

	fresh, _ := walk(s, testRules, cleanup(at.Add(time.Minute), "critical")...)
	if fresh.phase != phaseWarming || fresh.streak != 1 {
		t.Errorf("a cleanup a minute after the reopening: %v, streak %d; want a reload at once, streak 1", fresh.phase, fresh.streak)
	}
	periodic, _ := walk(s, testRules, evTrigger{source: trigPeriodic, at: at}, evDrained{}, evUnloaded{}, evVerified{freed: true})
	if periodic.phase != phaseWarming || periodic.streak != 1 {
		t.Errorf("a periodic cleanup right after the reopening: %v, streak %d; want a reload at once, streak 1", periodic.phase, periodic.streak)
	}
}

// TestNextVRAMNotFreed walks a cleanup whose memory does not come back:
// a backoff, a second look, the restart command when there is one, and a
// reload whatever the memory does then.
func TestNextVRAMNotFreed(t *testing.T) {
	noRestart := testRules
	noRestart.restart = false
	start := []event{evTrigger{source: trigPressure, reason: "critical", at: t0}, evDrained{}, evUnloaded{}, evVerified{msg: "held"}, evWaited{}}
	for _, tc := range []struct {
		name       string
		rules      rules
		evs        []event
		wantPhases []phase
		notFreed   bool
		msg        string
		restarts   uint64
	}{
		{
			name:  "the restart frees it",
			rules: testRules,
			evs:   append(slices.Clone(start), evVerified{msg: "held"}, evRestarted{}, evVerified{freed: true, msg: "back"}, evWarmed{at: t0}),
			wantPhases: []phase{phaseDraining, phaseUnloading, phaseVerifying, phaseBackoff, phaseVerifying,
				phaseRestarting, phaseVerifying, phaseWarming, phaseOpen},
			msg: "back", restarts: 1,
		},
		{
			name:  "still held after the restart",
			rules: testRules,
			evs:   append(slices.Clone(start), evVerified{msg: "held"}, evRestarted{}, evVerified{msg: "held"}, evWarmed{at: t0}),
			wantPhases: []phase{phaseDraining, phaseUnloading, phaseVerifying, phaseBackoff, phaseVerifying,
				phaseRestarting, phaseVerifying, phaseWarming, phaseOpen},
			notFreed: true, msg: "held (after running the restart command)", restarts: 1,
		},
		{
			name:       "no restart command",
			rules:      noRestart,
			evs:        append(slices.Clone(start), evVerified{msg: "held"}, evWarmed{at: t0}),
			wantPhases: []phase{phaseDraining, phaseUnloading, phaseVerifying, phaseBackoff, phaseVerifying, phaseWarming, phaseOpen},
			notFreed:   true, msg: "held",
		},
		{
			name:       "freed on the second look",
			rules:      testRules,
			evs:        append(slices.Clone(start), evVerified{freed: true, msg: "back"}, evWarmed{at: t0}),
			wantPhases: []phase{phaseDraining, phaseUnloading, phaseVerifying, phaseBackoff, phaseVerifying, phaseWarming, phaseOpen},
			msg:        "back",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, phases := walk(state{phase: phaseOpen}, tc.rules, tc.evs...)
			if !slices.Equal(phases, tc.wantPhases) {
				t.Errorf("phases %v, want %v", phases, tc.wantPhases)
			}
			if s.notFreed != tc.notFreed || s.vramMsg != tc.msg || s.restarts != tc.restarts || s.gate != "" {
				t.Errorf("final %+v; want not freed %v, message %q, %d restarts, the gate open", s, tc.notFreed, tc.msg, tc.restarts)
			}
		})
	}
}

// TestNextWarmupBackoff: failed warm-ups in a row wait MinBackoff,
// doubling, never more than MaxBackoff; a success starts the count again.
func TestNextWarmupBackoff(t *testing.T) {
	s := state{phase: phaseWarming, warmWhy: warmAtStart}
	var waits []time.Duration
	for range 9 {
		s = next(s, evWarmed{err: errors.New("boom")}, testRules)
		waits = append(waits, s.wait)
		s = next(s, evWaited{}, testRules)
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	if !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	s = next(s, evWarmed{at: t0}, testRules)
	if s.phase != phaseOpen || s.warmFails != 0 || s.warmErr != "" {
		t.Fatalf("after a success: %+v", s)
	}
	s = next(next(s, evTrigger{source: trigPeriodic, at: t0}, testRules), evDrained{}, testRules)
	s = next(next(s, evUnloaded{}, testRules), evVerified{freed: true}, testRules)
	if s = next(s, evWarmed{err: errors.New("boom")}, testRules); s.wait != 5*time.Second {
		t.Errorf("first failure after a success waits %v, want 5s", s.wait)
	}
}

func TestBackoff(t *testing.T) {
	r := rules{minBackoff: time.Second, maxBackoff: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := r.backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}
