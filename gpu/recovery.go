package gpu

import (
	"fmt"
	"time"

	"github.com/catalystbot/sentiment/upstream"
)

// The recovery cycle is a state machine: a phase, and a pure function,
// next, that decides from the state and one event what comes after. Run
// performs the phase's action (drain, unload, read VRAM, restart, warm,
// wait), turns its result into an event and applies next; Report applies
// next to what a call said of the model server. Keeping every decision in
// next (the backoff, the count of cleanups in a row, the warm-up failures
// in a row, the gate's reason) lets a table test walk the whole cycle with
// no clock, no goroutine and no model server.

// phase is where the local tier's gate and the recovery cycle stand.
type phase int

const (
	// phaseOff: no model server to control; the gate stays closed and
	// nothing is unloaded or warmed. The zero value: a gate that nobody
	// set up does not admit.
	phaseOff phase = iota
	// phaseOpen: the gate is open.
	phaseOpen
	// phasePending: a failure report closed the gate; Run has yet to begin
	// the cleanup. Report never waits for Run, so the gate closes at once.
	phasePending
	// phaseDraining: no new GPU call starts; waiting for those in flight.
	phaseDraining
	// phaseUnloading: the model server is asked to unload the model.
	phaseUnloading
	// phaseVerifying: reading VRAM to see whether the unload gave it back
	// (state.check says after what).
	phaseVerifying
	// phaseRestarting: the memory did not come back; the owner's restart
	// command runs.
	phaseRestarting
	// phaseWarming: the model server loads the model.
	phaseWarming
	// phaseBackoff: waiting state.wait before state.then.
	phaseBackoff
)

func (p phase) String() string {
	switch p {
	case phaseOff:
		return "off"
	case phaseOpen:
		return "open"
	case phasePending:
		return "cleanup pending"
	case phaseDraining:
		return "draining"
	case phaseUnloading:
		return "unloading"
	case phaseVerifying:
		return "verifying"
	case phaseRestarting:
		return "restarting"
	case phaseWarming:
		return "warming"
	case phaseBackoff:
		return "backing off"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// busy reports whether the manager itself holds the gate closed for a
// step of its own. While it does, readings do not move the queue's
// ceiling (the cleanup owns it) and no new cleanup begins.
func (p phase) busy() bool { return p >= phaseDraining }

// check is which VRAM check phaseVerifying performs.
type check int

const (
	// checkUnload follows the unload: VRAM is read for up to
	// RecoveryTimeout, since the driver's counters lag the runner's exit.
	checkUnload check = iota
	// checkAgain follows the backoff after memory that did not come back:
	// one reading.
	checkAgain
	// checkRestart follows the restart command: up to RecoveryTimeout
	// again.
	checkRestart
)

// Why the model is loaded, in gate reasons and logs.
const (
	warmAtStart      = "start"
	warmAfterCleanup = "after cleanup"
)

// state is the recovery cycle and the gate, with the counts that decide
// backoffs and that Status shows.
type state struct {
	phase phase
	// gate is why the gate is closed; "" while it is open.
	gate string
	// cause is what the cleanup under way (or pending) is for.
	cause string
	// check is phaseVerifying's check.
	check check
	// wait and then are phaseBackoff's wait and the phase after it:
	// phaseVerifying (checkAgain) or phaseWarming.
	wait time.Duration
	then phase
	// warmWhy is why the model is being loaded, kept across the backoffs
	// between failed warm-ups.
	warmWhy string

	// streak is the cleanups begun within StableAfter of the gate's last
	// reopening, this one included; lastReopen is that reopening.
	streak     int
	lastReopen time.Time
	// warmFails is the failed warm-ups in a row; warmErr the last one's
	// error, until a warm-up succeeds.
	warmFails int
	warmErr   string
	// failures is the local calls failed in a row.
	failures int

	cleanups      uint64
	lastCleanupAt time.Time
	lastCleanup   string
	restarts      uint64
	// notFreed and vramMsg are what the last VRAM check after an unload
	// found.
	notFreed bool
	vramMsg  string
}

// rules are the parts of the configuration that next decides with.
type rules struct {
	// maxFailures is the failures in a row that begin a cleanup; 0 never.
	maxFailures int
	// restart: a restart command is configured.
	restart bool
	// minBackoff and maxBackoff bound the exponential waits; stableAfter
	// is how long the gate must stay open for a cleanup not to count as a
	// repeat; interval is the periodic cleanup's, for its reason.
	minBackoff, maxBackoff, stableAfter time.Duration
	interval                            time.Duration
}

// backoff is the wait before the n-th troubled attempt (n >= 1):
// minBackoff doubling up to maxBackoff.
func (r rules) backoff(n int) time.Duration {
	d := r.minBackoff
	for i := 1; i < n && d < r.maxBackoff; i++ {
		d *= 2
	}
	return min(d, r.maxBackoff)
}

// event is something that happened to the manager: an outcome of a
// phase's action, a trigger, a report of a local call.
type event interface{ isEvent() }

// evStart: Run began. The first warm-up, if one is due, starts now.
type evStart struct{}

// evReport: what a local call said of the model server (Report).
type evReport struct {
	sig    upstream.Signal
	detail string
}

// trigger is where a request for a cleanup came from.
type trigger int

const (
	// trigPressure: a reading found VRAM at critical, or leaking; reason
	// says so. Begins a cleanup only while the gate is open.
	trigPressure trigger = iota
	// trigReported: Run took up a failure report that closed the gate
	// (phasePending); the reason is the report's.
	trigReported
	// trigPeriodic: the cleanup interval came round. A periodic cleanup
	// is never a repeat: the owner asked for it.
	trigPeriodic
	// trigManual: the owner asked for one (RequestCleanup); reason says
	// who and why. Like a periodic one, never a repeat.
	trigManual
)

// evTrigger asks for a cleanup at time at.
type evTrigger struct {
	source trigger
	reason string
	at     time.Time
}

// evDrained: no GPU call is in flight any more, or the drain timed out.
type evDrained struct{}

// evUnloaded: the unload returned (a failed one too: a crashed runner has
// nothing to unload, and the VRAM check tells whether that matters).
type evUnloaded struct{}

// evVerified: the VRAM check's verdict, and what it saw.
type evVerified struct {
	freed bool
	msg   string
}

// evRestarted: the restart command ended (its failure is only logged: the
// VRAM check after it tells whether it helped).
type evRestarted struct{}

// evWarmed: the warm-up ended at time at, with err nil when the model is
// loaded (latency is the load's, for the log).
type evWarmed struct {
	err     error
	at      time.Time
	latency time.Duration
}

// evWaited: phaseBackoff's wait is over.
type evWaited struct{}

func (evStart) isEvent()     {}
func (evReport) isEvent()    {}
func (evTrigger) isEvent()   {}
func (evDrained) isEvent()   {}
func (evUnloaded) isEvent()  {}
func (evVerified) isEvent()  {}
func (evRestarted) isEvent() {}
func (evWarmed) isEvent()    {}
func (evWaited) isEvent()    {}

// next is the state after ev. It reads no clock and does no I/O: times
// come in the events. An event that does not belong to the current phase
// (a trigger while a cleanup runs, a stale wake-up) changes nothing, which
// is what keeps cleanups from overlapping.
func next(s state, ev event, r rules) state {
	switch ev := ev.(type) {
	case evStart:
		if s.phase == phaseWarming {
			s = s.warming(s.warmWhy)
		}
	case evReport:
		return s.report(ev, r)
	case evTrigger:
		return s.trigger(ev, r)
	case evDrained:
		if s.phase == phaseDraining {
			s.phase = phaseUnloading
			s.gate = "cleanup (" + s.cause + "): unloading the model"
		}
	case evUnloaded:
		if s.phase == phaseUnloading {
			// The gate keeps saying "unloading" while the memory is checked:
			// to a caller it is one step.
			s.phase, s.check = phaseVerifying, checkUnload
		}
	case evVerified:
		if s.phase == phaseVerifying {
			return s.verified(ev, r)
		}
	case evRestarted:
		if s.phase == phaseRestarting {
			s.restarts++
			s.phase, s.check = phaseVerifying, checkRestart
		}
	case evWarmed:
		if s.phase == phaseWarming {
			return s.warmed(ev, r)
		}
	case evWaited:
		if s.phase == phaseBackoff {
			if s.then == phaseVerifying {
				s.phase, s.check = phaseVerifying, checkAgain
				return s
			}
			s = s.warming(s.warmWhy)
		}
	}
	return s
}

// report counts a local call's outcome: an answer resets the failures in a
// row; a crashed runner or a refused connection closes an open gate at
// once, as do maxFailures failures in a row. A server that only asked to
// wait, and a call that says nothing of the server, are not counted.
func (s state) report(ev evReport, r rules) state {
	switch {
	case ev.sig == upstream.SignalOK:
		s.failures = 0
		return s
	case !ev.sig.Failure():
		return s
	}
	s.failures++
	if s.phase != phaseOpen {
		return s
	}
	var reason string
	switch {
	case ev.sig == upstream.SignalCrash:
		reason = "the model runner crashed: " + oneLine(ev.detail)
	case ev.sig == upstream.SignalDown:
		reason = "the model server refused the connection: " + oneLine(ev.detail)
	case r.maxFailures == 0 || s.failures < r.maxFailures:
		return s
	default:
		reason = fmt.Sprintf("%d local calls failed in a row, the last with: %s", s.failures, oneLine(ev.detail))
	}
	s.phase, s.cause, s.gate = phasePending, reason, reason+"; cleanup pending"
	return s
}

// trigger begins a cleanup when the phase allows one: a reading's only
// while the gate is open, a report's only while it is pending, a periodic
// one in either. A cleanup soon after the gate reopened is a repeat.
func (s state) trigger(ev evTrigger, r rules) state {
	reason := ev.reason
	switch {
	case ev.source == trigPressure && s.phase == phaseOpen:
	case ev.source == trigReported && s.phase == phasePending:
		reason = s.cause
	case ev.source == trigPeriodic && (s.phase == phaseOpen || s.phase == phasePending):
		reason = fmt.Sprintf("periodic unload and reload (every %s)", r.interval)
	case ev.source == trigManual && (s.phase == phaseOpen || s.phase == phasePending):
	default:
		return s
	}
	if ev.source == trigPeriodic || ev.source == trigManual || s.lastReopen.IsZero() || ev.at.Sub(s.lastReopen) >= r.stableAfter {
		s.streak = 1
	} else {
		s.streak++
	}
	s.phase, s.cause = phaseDraining, reason
	s.gate = "cleanup (" + reason + "): waiting for GPU calls in flight"
	s.failures = 0
	s.cleanups++
	s.lastCleanupAt, s.lastCleanup = ev.at, reason
	return s
}

// verified decides on a VRAM check. After the unload: memory not back
// means a backoff growing with the streak and a second look; memory back
// after a repeat means a backoff before the reload (a runner that needs a
// cleanup every few seconds should not be reloaded at that pace). On the
// second look, memory still held runs the restart command when there is
// one; otherwise, and after the restart, the model is loaded anyway:
// staying on the cloud tiers for good would be worse than a tight card.
func (s state) verified(ev evVerified, r rules) state {
	switch s.check {
	case checkUnload:
		if !ev.freed {
			s.notFreed, s.vramMsg = true, ev.msg
			d := r.backoff(s.streak)
			s.gate = fmt.Sprintf("VRAM not freed after unloading the model (%s); checking again in %s", ev.msg, d)
			return s.backingOff(d, phaseVerifying, warmAfterCleanup)
		}
		s.notFreed, s.vramMsg = false, ""
		if s.streak > 1 {
			d := r.backoff(s.streak - 1)
			s.gate = fmt.Sprintf("cleanup %d in a row (%s): waiting %s before loading the model again", s.streak, s.cause, d)
			return s.backingOff(d, phaseWarming, warmAfterCleanup)
		}
	case checkAgain:
		if !ev.freed && r.restart {
			s.phase = phaseRestarting
			s.gate = "VRAM not freed after unload (" + ev.msg + "): restarting the model server"
			return s
		}
		s.notFreed, s.vramMsg = !ev.freed, ev.msg
	case checkRestart:
		s.notFreed, s.vramMsg = !ev.freed, ev.msg
		if !ev.freed {
			s.vramMsg += " (after running the restart command)"
		}
	}
	return s.warming(warmAfterCleanup)
}

// warmed reopens the gate after a warm-up that loaded the model, or backs
// off, longer after each failure in a row.
func (s state) warmed(ev evWarmed, r rules) state {
	if ev.err != nil {
		s.warmFails++
		s.warmErr = errText(ev.err)
		d := r.backoff(s.warmFails)
		s.gate = fmt.Sprintf("warm-up failed (%s): %s; next try in %s", s.warmWhy, oneLine(ev.err.Error()), d)
		return s.backingOff(d, phaseWarming, s.warmWhy)
	}
	s.phase, s.gate = phaseOpen, ""
	s.warmFails, s.warmErr = 0, ""
	s.failures = 0
	s.lastReopen = ev.at
	return s
}

func (s state) warming(why string) state {
	s.phase, s.warmWhy = phaseWarming, why
	s.gate = "loading the model (" + why + ")"
	return s
}

func (s state) backingOff(d time.Duration, then phase, why string) state {
	s.phase, s.wait, s.then, s.warmWhy = phaseBackoff, d, then, why
	return s
}
