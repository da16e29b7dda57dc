package gpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/upstream"
)

// The manager is the GPU's side of the request path. The old bot crashed
// its GPU because nothing stood between a burst of headlines and the model
// server; the VRAM that ran out belonged to Ollama's runner, which only
// Ollama can free. So the manager watches the card where the driver
// publishes its memory (a Reader), shapes the GPU queue while memory is
// tight, and when it must, closes the local tier's gate, lets the calls on
// the GPU finish, has Ollama unload the model, checks that the memory came
// back, has Ollama load it again, and reopens the gate. While the gate is
// closed the router sends local work to the cloud tiers at once.

// Pressure is how full the watched card's VRAM is.
type Pressure int

// Pressure levels. The zero value is unknown: no reading, which is never
// taken for an empty card.
const (
	PressureUnknown Pressure = iota
	PressureNormal
	PressureHigh
	PressureCritical
)

func (p Pressure) String() string {
	switch p {
	case PressureNormal:
		return "normal"
	case PressureHigh:
		return "high"
	case PressureCritical:
		return "critical"
	}
	return "unknown"
}

// Queue is the GPU queue in front of the local tier, as the manager drives
// it: a ceiling on the calls it lets start, and word of when none is on
// the GPU. *batcher.Queue is one.
type Queue interface {
	// SetCeiling caps the calls in flight, 0 to MaxConcurrent; 0 lets no
	// new call start. Calls in flight are not interrupted.
	SetCeiling(n int)
	// InFlight is the number of calls holding a GPU slot now.
	InFlight() int
	// Idle is closed when no call holds a GPU slot: already closed when
	// none does now. A drain waits on it rather than polling InFlight.
	Idle() <-chan struct{}
}

// Controller is the model server as the manager acts through it: the
// local tier's own ollama.Client, so that preloads carry the keep_alive
// and num_ctx of the calls that follow.
type Controller interface {
	// Model names the model loaded and unloaded.
	Model() string
	// Warm loads the model and returns how long the load took.
	Warm(ctx context.Context) (time.Duration, error)
	// Unload asks the server to unload the model now.
	Unload(ctx context.Context) error
	// Loaded reports the model as the server holds it, if it does.
	Loaded(ctx context.Context) (ollama.LoadedModel, bool, error)
}

// Policy is how the manager watches VRAM and when it acts. The
// thresholds are proposals to tune on the owner's card, not figures from
// a vendor: they belong to configuration.
type Policy struct {
	// PollInterval is how often VRAM and the model's state are read.
	PollInterval time.Duration
	// HighWater and Critical are VRAM use in percent of the card's total:
	// at high water the GPU queue's concurrency is halved, calmer than a
	// cleanup; at critical the gate closes and the model is unloaded and
	// loaded again, since a runner that runs out of memory takes the PC
	// down with it.
	HighWater, Critical float64
	// MaxFailures is the local calls failed in a row that begin a cleanup;
	// 0: never on a count alone (a crashed runner or a refused connection
	// still does).
	MaxFailures int
	// RestartCmd, when set, is run by /bin/sh -c when an unload does not
	// give the memory back, after a backoff: the owner's way to restart
	// the model server (a systemd unit). Never run otherwise.
	RestartCmd string
	// DrainTimeout bounds the wait for calls on the GPU before an unload;
	// past it the unload goes ahead and Ollama ends them. 0: no wait.
	DrainTimeout time.Duration
	// Warmup loads the model before the gate first opens, so that the
	// first real call does not pay for a cold load.
	Warmup bool
}

// ManagerConfig is what a Manager watches and acts through, and its policy.
type ManagerConfig struct {
	// Reader reads VRAM; nil watches nothing (SENTIMENT_GPU_READER=none):
	// pressure stays unknown and Status says why, while failure reports
	// and periodic cleanups still work.
	Reader Reader
	// Controller loads and unloads the local model; nil means the local
	// tier is off (or not an Ollama server): the gate stays closed and
	// nothing is unloaded or warmed.
	Controller Controller
	// Queue is the GPU queue; nil leaves concurrency alone (cleanups then
	// do not wait for calls in flight).
	Queue Queue
	// MaxConcurrent is the queue's normal ceiling (LLM_MAX_CONCURRENT),
	// restored when pressure falls; at least 1 with a Queue.
	MaxConcurrent int
	// Policy is the VRAM policy.
	Policy Policy
	// CleanupInterval, when > 0, unloads and reloads the model that often
	// whatever the readings say (GPU_CLEANUP_INTERVAL_SEC, the old bot's
	// habit); 0 turns it off.
	CleanupInterval time.Duration
	// PCIBusID, when set ("0000:03:00.0"), is the card whose pressure
	// counts: the one Ollama runs on when the machine has several.
	// Empty: the fullest discrete card (see Manager).
	PCIBusID string

	// Now is the clock for timestamps and for telling repeated cleanups
	// from isolated ones; nil is time.Now. Waiting (polls, drains,
	// backoffs) uses the runtime's timers, which testing/synctest makes
	// virtual, so tests run the manager inside a synctest bubble.
	Now func() time.Time
	// Coordinator, when set, lets one replica at a time clean up a model
	// server several share; the others keep their gates closed meanwhile.
	Coordinator Coordinator
	// RunCommand runs Policy.RestartCmd; nil runs it with /bin/sh -c,
	// keeping the first line of its output for the log.
	RunCommand func(ctx context.Context, cmd string) error

	// Tuning; zero values take the defaults in brackets.

	// Hysteresis is how many percentage points below HighWater the
	// pressure must fall before the ceiling is restored [5; negative:
	// none; at most half of HighWater].
	Hysteresis float64
	// LeakPolls is the number of polls in a row that VRAM may keep rising
	// above high water, with the ceiling already cut, before a cleanup
	// [3]; negative turns the check off. Cutting concurrency does not
	// stop a runner that leaks, and a cleanup before critical is calmer
	// than one after the runner has run out of memory.
	LeakPolls int
	// MinBackoff and MaxBackoff bound the exponential wait between
	// troubled recoveries: VRAM not freed, a warm-up that failed, a
	// cleanup soon after the last [5s, 5m].
	MinBackoff, MaxBackoff time.Duration
	// RecoveryTimeout is how long a cleanup waits for VRAM to come back
	// after the unload, reading every RecoveryPoll [10s, 250ms]; the
	// driver's counters lag the runner's exit by a second or so.
	RecoveryTimeout, RecoveryPoll time.Duration
	// StableAfter is how long the gate must stay open for the next
	// cleanup to count as a fresh one rather than a repeat [1m].
	StableAfter time.Duration
	// RestartTimeout bounds RestartCmd [2m].
	RestartTimeout time.Duration
}

// Defaults of the tuning fields.
const (
	defaultHysteresis      = 5
	defaultLeakPolls       = 3
	defaultMinBackoff      = 5 * time.Second
	defaultMaxBackoff      = 5 * time.Minute
	defaultRecoveryTimeout = 10 * time.Second
	defaultRecoveryPoll    = 250 * time.Millisecond
	defaultStableAfter     = time.Minute
	defaultRestartTimeout  = 2 * time.Minute

	// readTimeout and psTimeout bound one reading and one /api/ps;
	// unloadTimeout one unload and warmTimeout one warm-up (all its
	// attempts: a cold load of a large model from disk takes minutes). A
	// model server that accepts the connection and then stalls (the frozen
	// PC) must not hold the manager, and with it the gate, forever.
	readTimeout   = 10 * time.Second
	psTimeout     = 5 * time.Second
	unloadTimeout = 30 * time.Second
	warmTimeout   = 5 * time.Minute
	// freedShare is the part of the model's size_vram that must come back
	// for an unload to count as having freed its memory: Ollama's own
	// scheduler waits for 80 % (server/sched.go waitForVRAMRecovery).
	freedShare = 0.8
)

// Status is the manager's view for GPUStatus.
type Status struct {
	// Devices are the latest readings, every card the reader saw.
	Devices []Device
	// Reader is the kind of reader that found the cards ("sysfs",
	// "rocm-smi", "amd-smi", "nvidia-smi"; with "auto", the one that
	// answered), or "none" while no reader works: none configured, no
	// reading yet, or the last reading found no card. A card that is there
	// but failed to read (a GPU in reset) keeps the reader that found it.
	// ReaderError says why readings are missing or partial; empty when all
	// is well.
	Reader      string
	ReaderError string
	// Pressure is the watched card's level; PressurePercent its VRAM use
	// and PressureCard which card that is (its PCI address or name).
	Pressure        Pressure
	PressurePercent float64
	PressureCard    string
	// Ceiling is the queue ceiling the manager set last; CeilingCut is
	// true while high water holds it below MaxConcurrent.
	Ceiling    int
	CeilingCut bool
	// Model is the local model as Ollama reports it.
	Model ModelStatus
	// LastCleanupAt, LastCleanupReason and Cleanups describe unload and
	// reload cycles (periodic ones included).
	LastCleanupAt     time.Time
	LastCleanupReason string
	Cleanups          uint64
	// Restarts counts runs of the restart command.
	Restarts uint64
	// VRAMNotFreed is set when the last unload did not give the memory
	// back; VRAMMessage says by how much it fell short.
	VRAMNotFreed bool
	VRAMMessage  string
	// Admitting is whether the local tier takes work now; GateReason says
	// why not. Phase is where the gate and the recovery cycle stand:
	// "open", "off" (no model server to control), "cleanup pending",
	// "draining", "unloading", "verifying", "restarting", "warming",
	// "backing off".
	Admitting  bool
	GateReason string
	Phase      string
	// ConsecutiveFailures is the local calls failed in a row.
	ConsecutiveFailures int
	// ObservedAt is when the readings were taken.
	ObservedAt time.Time
}

// ModelStatus is the local model's state.
type ModelStatus struct {
	Name string
	// Loaded is whether /api/ps lists it; Size and SizeVRAM are its bytes
	// in all and on the GPU, ExpiresAt when Ollama will unload it, and
	// ContextLength the num_ctx it was loaded with.
	Loaded         bool
	Size, SizeVRAM uint64
	ExpiresAt      time.Time
	ContextLength  int
	// Warm is whether the manager's last preload succeeded and the model
	// has stayed loaded since; WarmupLatency is that preload's load time.
	Warm          bool
	WarmupLatency time.Duration
	// Error is why the model is not warm: the last warm-up's failure
	// while it stands, else the last failure of /api/ps.
	Error string
}

// Manager watches the GPU and guards the local tier. Admit, Report and
// Status are safe for concurrent use and never block on I/O; Run does the
// work on the caller's goroutine.
//
// Pressure is read from one card: PCIBusID when configured, otherwise the
// fullest discrete card (APUs are left out unless they are all there is).
// Ollama does not say which card it uses, and with several it may split a
// model across them; the fullest one is the first to fail. An APU's
// carve-out is full with the desktop alone and would otherwise read as
// permanent pressure.
type Manager struct {
	cfg   ManagerConfig
	rules rules
	log   *slog.Logger
	now   func() time.Time
	run   func(ctx context.Context, cmd string) error
	// wake tells Run that a report closed the gate (phasePending).
	wake chan struct{}
	// manual carries an owner's request for a cleanup to Run;
	// lastManual is when the last one was taken.
	manual     chan string
	lastManual time.Time
	// peerBusy is set while another replica cleans up the shared model
	// server (Coordinator); leading while this one does (Run's alone).
	peerBusy atomic.Bool
	leading  bool

	mu sync.Mutex
	st state

	devices    []Device
	readerKind string
	readErr    string
	observedAt time.Time
	level      Pressure
	pct        float64
	card       string
	cut        bool
	ceiling    int
	rising     int
	// modelVRAM is the most VRAM the model was last seen holding: what a
	// reload needs, also after a crashed runner that holds nothing.
	modelVRAM uint64
	lastUsed  uint64
	haveLast  bool

	model ModelStatus
	// psErr is the last failure of /api/ps, cleared by the next success.
	psErr string
}

// NewManager checks cfg and returns a Manager; nothing runs until Run. The
// gate starts closed when the model is to be warmed first (Policy.Warmup)
// or there is no Controller, open otherwise. log nil discards.
func NewManager(cfg ManagerConfig, log *slog.Logger) (*Manager, error) {
	p := cfg.Policy
	if cfg.Reader != nil {
		if p.PollInterval <= 0 {
			return nil, fmt.Errorf("gpu manager: PollInterval=%v: must be positive", p.PollInterval)
		}
		if !(p.HighWater > 0 && p.HighWater < p.Critical && p.Critical <= 100) {
			return nil, fmt.Errorf("gpu manager: HighWater=%g, Critical=%g: need 0 < high water < critical <= 100 (percent of VRAM)", p.HighWater, p.Critical)
		}
	}
	if cfg.Queue != nil && cfg.MaxConcurrent < 1 {
		return nil, fmt.Errorf("gpu manager: MaxConcurrent=%d: must be at least 1 with a queue", cfg.MaxConcurrent)
	}
	if p.MaxFailures < 0 || p.DrainTimeout < 0 || cfg.CleanupInterval < 0 {
		return nil, fmt.Errorf("gpu manager: MaxFailures=%d, DrainTimeout=%v, CleanupInterval=%v: none may be negative",
			p.MaxFailures, p.DrainTimeout, cfg.CleanupInterval)
	}
	switch {
	case cfg.Hysteresis == 0:
		cfg.Hysteresis = defaultHysteresis
	case cfg.Hysteresis < 0:
		cfg.Hysteresis = 0
	}
	// A band wider than half the high-water mark would hold the ceiling
	// cut on a nearly empty card.
	cfg.Hysteresis = min(cfg.Hysteresis, p.HighWater/2)
	setDefault(&cfg.LeakPolls, defaultLeakPolls)
	setDefault(&cfg.MinBackoff, defaultMinBackoff)
	setDefault(&cfg.MaxBackoff, defaultMaxBackoff)
	setDefault(&cfg.RecoveryTimeout, defaultRecoveryTimeout)
	setDefault(&cfg.RecoveryPoll, defaultRecoveryPoll)
	setDefault(&cfg.StableAfter, defaultStableAfter)
	setDefault(&cfg.RestartTimeout, defaultRestartTimeout)
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Manager{
		cfg: cfg,
		rules: rules{
			maxFailures: p.MaxFailures,
			restart:     p.RestartCmd != "",
			minBackoff:  cfg.MinBackoff,
			maxBackoff:  cfg.MaxBackoff,
			stableAfter: cfg.StableAfter,
			interval:    cfg.CleanupInterval,
		},
		log:        log,
		now:        cfg.Now,
		run:        cfg.RunCommand,
		wake:       make(chan struct{}, 1),
		manual:     make(chan string, 1),
		readerKind: KindNone,
		ceiling:    cfg.MaxConcurrent,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.run == nil {
		m.run = shellCommand
	}
	switch {
	case cfg.Controller == nil:
		m.st.phase, m.st.gate = phaseOff, "local tier off: no model server to control"
	case p.Warmup:
		m.st.phase, m.st.warmWhy, m.st.gate = phaseWarming, warmAtStart, "waiting for the first warm-up of the model"
	default:
		m.st.phase = phaseOpen
	}
	if cfg.Controller != nil {
		m.model.Name = clip(cfg.Controller.Model(), maxName)
	}
	return m, nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Admit says whether the router may call the local tier now and, when it
// may not, why. It is the router's Gate.
func (m *Manager) Admit() (ok bool, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.phase == phaseOpen {
		if m.peerBusy.Load() {
			return false, peerCleanupGate
		}
		return true, ""
	}
	return false, "GPU gate closed: " + m.st.gate
}

// Report is told what every local call said of the model server's health
// (upstream.Signal, read once by the router) and, for a failure, its text.
// An answer resets the count of failures in a row. A crashed runner or a
// refused connection (Signal.Fatal) closes the gate at once and asks Run
// for a cleanup; so do Policy.MaxFailures failures in a row. A server that
// only asked to wait (SignalBusy, Ollama's full queue) and a call that
// says nothing of the server (SignalNone) are not counted.
func (m *Manager) Report(sig upstream.Signal, detail string) {
	if sig != upstream.SignalOK && !sig.Failure() {
		return
	}
	m.mu.Lock()
	before := m.st
	m.st = next(m.st, evReport{sig: sig, detail: detail}, m.rules)
	after := m.st
	m.mu.Unlock()
	if after.phase == phasePending && before.phase != phasePending {
		m.log.Warn("closing the GPU gate", "reason", after.cause)
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// ManualCleanupInterval is the least time between two cleanups asked for
// by the owner (RequestCleanup): an unload and reload takes the local
// tier away for seconds, and a script in a loop must not keep it away.
const ManualCleanupInterval = time.Minute

// Errors of RequestCleanup.
var (
	// ErrNoModelServer: there is no model server to unload and reload.
	ErrNoModelServer = errors.New("no local Ollama model server to clean up")
)

// CleanupBusyError refuses a cleanup asked for while one runs.
type CleanupBusyError struct{ Phase string }

func (e *CleanupBusyError) Error() string {
	return "a cleanup is already running (" + e.Phase + "): wait for the local tier to reopen"
}

// CleanupTooSoonError refuses a cleanup asked for within
// ManualCleanupInterval of the last one asked for.
type CleanupTooSoonError struct{ RetryAfter time.Duration }

func (e *CleanupTooSoonError) Error() string {
	return fmt.Sprintf("a cleanup was asked for less than %s ago: ask again in %s", ManualCleanupInterval, e.RetryAfter.Round(time.Second))
}

// RequestCleanup asks Run for an unload and reload of the local model now
// (reason says who asked and why): the same cycle a crash or VRAM
// pressure starts, drain first. It is refused while one runs
// (*CleanupBusyError), within ManualCleanupInterval of the last one asked
// for (*CleanupTooSoonError), and without a model server
// (ErrNoModelServer).
func (m *Manager) RequestCleanup(reason string) error {
	if m.cfg.Controller == nil {
		return ErrNoModelServer
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.st.phase; p != phaseOpen && p != phasePending {
		return &CleanupBusyError{Phase: p.String()}
	}
	now := m.now()
	if !m.lastManual.IsZero() {
		if wait := ManualCleanupInterval - now.Sub(m.lastManual); wait > 0 {
			return &CleanupTooSoonError{RetryAfter: wait}
		}
	}
	select {
	case m.manual <- "asked for: " + reason:
		m.lastManual = now
		return nil
	default:
		return &CleanupBusyError{Phase: "a request is waiting to be taken up"}
	}
}

// Status returns a snapshot.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		Devices:             append([]Device(nil), m.devices...),
		Reader:              m.readerKind,
		ReaderError:         m.readErr,
		Pressure:            m.level,
		PressurePercent:     m.pct,
		PressureCard:        m.card,
		Ceiling:             m.ceiling,
		CeilingCut:          m.cut,
		Model:               m.model,
		LastCleanupAt:       m.st.lastCleanupAt,
		LastCleanupReason:   m.st.lastCleanup,
		Cleanups:            m.st.cleanups,
		Restarts:            m.st.restarts,
		VRAMNotFreed:        m.st.notFreed,
		VRAMMessage:         m.st.vramMsg,
		Admitting:           m.st.phase == phaseOpen && !m.peerBusy.Load(),
		GateReason:          m.st.gate,
		Phase:               m.st.phase.String(),
		ConsecutiveFailures: m.st.failures,
		ObservedAt:          m.observedAt,
	}
	if m.st.phase == phaseOpen && m.peerBusy.Load() {
		s.GateReason = peerCleanupGate
	}
	s.Model.Error = m.st.warmErr
	if s.Model.Error == "" {
		s.Model.Error = m.psErr
	}
	switch {
	case m.cfg.Reader == nil:
		s.ReaderError = "no VRAM reader configured (SENTIMENT_GPU_READER=none): VRAM is not watched"
		s.ObservedAt = m.now()
	case m.observedAt.IsZero() && s.ReaderError == "":
		s.ReaderError = "no reading yet"
	}
	return s
}

// Run polls VRAM every Policy.PollInterval and acts on what it reads,
// on the failures Report signals and on the periodic cleanup, until ctx
// ends. It warms the model first when Policy.Warmup is set. It starts no
// goroutine: everything, the cleanups included, runs here, one thing at a
// time, so cleanups never overlap. Call it once; Admit closes for good if
// it is not running, since only Run reopens the gate after a failure.
//
// Run drives the recovery state machine (recovery.go): in each phase it
// performs that phase's action, turns the outcome into an event and lets
// next decide what follows. While the gate is open, pending or backing
// off, it waits for a reading to take, a cleanup to begin or the backoff
// to end.
func (m *Manager) Run(ctx context.Context) {
	var poll, periodic <-chan time.Time
	if m.cfg.Reader != nil {
		t := time.NewTicker(m.cfg.Policy.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	if m.cfg.Controller != nil && m.cfg.CleanupInterval > 0 {
		t := time.NewTicker(m.cfg.CleanupInterval)
		defer t.Stop()
		periodic = t.C
	}
	// backoff is phaseBackoff's timer, started on entering the phase.
	var backoff *time.Timer
	defer func() {
		if backoff != nil {
			backoff.Stop()
		}
	}()
	// probe carries what a cleanup saw before its unload to the checks
	// after it.
	var probe unloadProbe

	// A replica stopped in the middle of its cleanup gives the lease back
	// on its way out: otherwise every other replica would keep its gate
	// closed until the lease expired (CleanupLeaseTTL), and so would this
	// one's next incarnation.
	defer m.releaseLead(ctx)

	if m.cfg.Reader != nil {
		m.poll(ctx)
	}
	m.apply(evStart{})
	for {
		s := m.state()
		var ev event
		switch s.phase {
		case phaseDraining:
			ev = m.drain(ctx)
		case phaseUnloading:
			ev = m.unload(ctx, &probe)
		case phaseVerifying:
			ev = m.verify(ctx, &probe, s.check)
		case phaseRestarting:
			ev = m.restart(ctx)
		case phaseWarming:
			ev = m.warm(ctx)
		default: // open, off, pending, backing off: wait for something
			var waited <-chan time.Time
			if s.phase == phaseBackoff && backoff != nil {
				waited = backoff.C
			}
			select {
			case <-ctx.Done():
			case <-poll:
				ev = m.poll(ctx)
			case <-periodic:
				ev = evTrigger{source: trigPeriodic, at: m.now()}
			case <-m.wake:
				ev = evTrigger{source: trigReported, at: m.now()}
			case reason := <-m.manual:
				ev = evTrigger{source: trigManual, reason: reason, at: m.now()}
			case <-waited:
				backoff = nil
				ev = evWaited{}
			}
		}
		if ctx.Err() != nil {
			return
		}
		m.coordinate(ctx)
		if ev == nil || !m.mayBegin(ctx, ev) {
			continue
		}
		if before, after := m.apply(ev); after.phase == phaseBackoff && before.phase != phaseBackoff {
			if backoff != nil {
				backoff.Stop()
			}
			backoff = time.NewTimer(after.wait)
		}
	}
}

// state returns the recovery state.
func (m *Manager) state() state {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// apply moves the state machine by ev and does what the move itself
// calls for: on reopening the gate, the queue's ceiling is restored and the
// leak count starts afresh (the reload reset the runner's memory). It logs
// the moves an operator wants to see.
func (m *Manager) apply(ev event) (before, after state) {
	m.mu.Lock()
	before = m.st
	m.st = next(m.st, ev, m.rules)
	after = m.st
	setCeiling := -1
	if after.phase == phaseOpen && before.phase != phaseOpen {
		m.rising, m.haveLast = 0, false
		if m.level != PressureUnknown {
			m.cut = m.level >= PressureHigh
		}
		if m.cfg.Queue != nil {
			m.ceiling = m.normalCeilingLocked()
			setCeiling = m.ceiling
		}
	}
	m.mu.Unlock()
	if setCeiling >= 0 {
		m.cfg.Queue.SetCeiling(setCeiling)
	}
	m.logMove(before, after, ev)
	return before, after
}

// logMove logs a move of the state machine that an operator wants to see.
func (m *Manager) logMove(before, after state, ev event) {
	switch {
	case after.phase == phaseDraining && before.phase != phaseDraining:
		m.log.Warn("GPU cleanup", "reason", after.cause, "in_a_row", after.streak)
	case after.phase == phaseBackoff && before.phase == phaseVerifying && after.then == phaseVerifying:
		m.log.Error("GPU cleanup: VRAM not freed by the unload", "detail", after.vramMsg, "retry_in", after.wait)
	case after.phase == phaseBackoff && before.phase == phaseVerifying:
		m.log.Warn("GPU cleanups in a row: backing off before the reload", "in_a_row", after.streak, "wait", after.wait)
	case after.phase == phaseBackoff && before.phase == phaseWarming:
		m.log.Error("model warm-up failed", "why", before.warmWhy, "err", after.warmErr, "retry_in", after.wait)
	case after.phase == phaseWarming && before.phase == phaseVerifying && before.check != checkUnload && after.notFreed:
		m.log.Error("VRAM still not freed; loading the model anyway", "detail", after.vramMsg)
	case after.phase == phaseOpen && before.phase == phaseWarming:
		var latency time.Duration
		if w, ok := ev.(evWarmed); ok {
			latency = w.latency
		}
		m.log.Info("model warm; local tier open", "model", m.cfg.Controller.Model(), "why", before.warmWhy, "latency", latency)
	}
}

// read takes one reading and records it in the status. It returns the
// watched card, or ok false when it could not be read.
func (m *Manager) read(ctx context.Context) (card Device, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	devices, kind, err := readWithKind(rctx, m.cfg.Reader)
	cancel()
	devices = cleanDevices(devices)
	card, ok, why := m.pick(devices)
	now := m.now()

	var msgs []string
	if err != nil {
		msgs = append(msgs, err.Error())
	} else if len(devices) == 0 {
		msgs = append(msgs, kind+": "+ErrNoDevice.Error())
	}
	if why != "" {
		msgs = append(msgs, why)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	m.devices, m.observedAt = devices, now
	m.readErr = clip(strings.Join(msgs, "; "), maxErrText)
	var cardErr *CardError
	switch {
	case len(devices) > 0:
		m.readerKind = clip(kind, maxName)
	case errors.As(err, &cardErr):
		// The reader found a card that did not read (a GPU in reset): it
		// still works, and says why in ReaderError.
	default:
		m.readerKind = KindNone
	}
	if !ok {
		// Unknown is never read as empty: the ceiling stays where it is.
		m.level, m.pct, m.card, m.rising, m.haveLast = PressureUnknown, 0, "", 0, false
		return card, false
	}
	pct := card.UsedFraction() * 100
	m.level, m.pct, m.card = m.classify(pct), pct, cardName(card)
	return card, true
}

// cleanDevices makes a reading's text fit for Status, whatever Reader took
// it.
func cleanDevices(devices []Device) []Device {
	out := make([]Device, len(devices))
	for i, d := range devices {
		d.Name, d.Vendor, d.PCIBusID = clip(d.Name, maxName), clip(d.Vendor, maxName), clip(d.PCIBusID, maxName)
		d.Source = clip(d.Source, maxErrText)
		out[i] = d
	}
	return out
}

// pick chooses the card whose pressure counts (see Manager).
func (m *Manager) pick(devices []Device) (Device, bool, string) {
	if id := m.cfg.PCIBusID; id != "" {
		for _, d := range devices {
			if d.PCIBusID == normalizePCI(id) && d.VRAMTotal > 0 {
				return d, true, ""
			}
		}
		return Device{}, false, "the watched card " + id + " is not among the readings"
	}
	var best Device
	found := false
	for _, integrated := range []bool{false, true} {
		for _, d := range devices {
			if d.Integrated == integrated && d.VRAMTotal > 0 && (!found || d.UsedFraction() > best.UsedFraction()) {
				best, found = d, true
			}
		}
		if found {
			return best, true, ""
		}
	}
	if len(devices) > 0 {
		return Device{}, false, "no card reports a VRAM total"
	}
	return Device{}, false, ""
}

func cardName(d Device) string {
	if d.PCIBusID != "" {
		return d.PCIBusID
	}
	return d.Name
}

// classify turns a VRAM percentage into a level, holding "high" until the
// pressure is Hysteresis points under high water so that a card hovering
// at the mark does not flap the ceiling.
func (m *Manager) classify(pct float64) Pressure {
	p := m.cfg.Policy
	switch {
	case pct >= p.Critical:
		return PressureCritical
	case pct >= p.HighWater:
		return PressureHigh
	case m.cut && pct > p.HighWater-m.cfg.Hysteresis:
		return PressureHigh
	}
	return PressureNormal
}

// poll reads VRAM and the model's state, adjusts the queue's ceiling, and
// returns a trigger when the reading calls for a cleanup.
func (m *Manager) poll(ctx context.Context) event {
	card, ok := m.read(ctx)
	m.refreshModel(ctx)

	m.mu.Lock()
	if ok {
		// Count the polls in a row that found more VRAM used above high
		// water; read already reset the count for a failed reading.
		if m.level >= PressureHigh && m.haveLast && card.VRAMUsed > m.lastUsed {
			m.rising++
		} else {
			m.rising = 0
		}
		m.lastUsed, m.haveLast = card.VRAMUsed, true
	}
	setCeiling := -1
	if ok && !m.st.phase.busy() && m.cfg.Queue != nil {
		if cut := m.level >= PressureHigh; cut != m.cut {
			m.cut = cut
			m.ceiling = m.normalCeilingLocked()
			setCeiling = m.ceiling
		}
	}
	var cleanup string
	if ok && m.st.phase == phaseOpen {
		switch {
		case m.level == PressureCritical:
			cleanup = fmt.Sprintf("VRAM %.1f%% used on %s, at or above critical (%g%%)", m.pct, m.card, m.cfg.Policy.Critical)
		case m.cut && m.cfg.LeakPolls > 0 && m.rising >= m.cfg.LeakPolls:
			cleanup = fmt.Sprintf("VRAM still rising above high water (%.1f%% on %s) for %d polls with concurrency cut: the model server may be leaking",
				m.pct, m.card, m.rising)
		}
	}
	level, pct := m.level, m.pct
	m.mu.Unlock()

	if setCeiling >= 0 {
		m.cfg.Queue.SetCeiling(setCeiling)
		m.log.Info("GPU queue ceiling changed", "ceiling", setCeiling, "pressure", level.String(), "vram_percent", pct)
	}
	if cleanup == "" {
		return nil
	}
	return evTrigger{source: trigPressure, reason: cleanup, at: m.now()}
}

// normalCeilingLocked is the ceiling outside a cleanup: MaxConcurrent, or
// half of it (at least 1) while pressure is high.
func (m *Manager) normalCeilingLocked() int {
	if m.cut {
		return max(1, m.cfg.MaxConcurrent/2)
	}
	return m.cfg.MaxConcurrent
}

// refreshModel asks Ollama which models it holds and records ours.
func (m *Manager) refreshModel(ctx context.Context) {
	if m.cfg.Controller == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, psTimeout)
	lm, ok, err := m.cfg.Controller.Loaded(pctx)
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			m.psErr = errText(err)
		}
		return
	}
	m.psErr = ""
	m.model.Loaded = ok
	m.model.Size, m.model.SizeVRAM, m.model.ExpiresAt, m.model.ContextLength = lm.Size, lm.SizeVRAM, lm.ExpiresAt, lm.ContextLength
	if ok && lm.SizeVRAM > 0 {
		m.modelVRAM = lm.SizeVRAM
	}
	if !ok {
		m.model.Warm = false
	}
}

// drain is phaseDraining's action: it stops new GPU calls and waits for
// those in flight, at most Policy.DrainTimeout; past it the cleanup goes
// on (the unload then waits on Ollama's side for the calls to end).
func (m *Manager) drain(ctx context.Context) event {
	q := m.cfg.Queue
	if q == nil {
		return evDrained{}
	}
	q.SetCeiling(0)
	m.mu.Lock()
	m.ceiling = 0
	m.mu.Unlock()
	if m.cfg.Policy.DrainTimeout == 0 {
		return evDrained{}
	}
	idle := q.Idle()
	select {
	case <-idle:
		return evDrained{}
	default:
	}
	deadline := time.NewTimer(m.cfg.Policy.DrainTimeout)
	defer deadline.Stop()
	select {
	case <-ctx.Done():
	case <-idle:
	case <-deadline.C:
		m.log.Warn("GPU cleanup: drain timed out; unloading with calls in flight",
			"in_flight", q.InFlight(), "timeout", m.cfg.Policy.DrainTimeout)
	}
	return evDrained{}
}

// unloadProbe is what a cleanup saw before its unload: the watched card's
// VRAM use and the model's size_vram, against which the checks after the
// unload judge whether the memory came back.
type unloadProbe struct {
	before   uint64
	beforeOK bool
	expected uint64
	// reload is the VRAM the model needs to load again: its size_vram,
	// or the last one seen when the runner holds nothing (it crashed).
	reload uint64
}

// unload is phaseUnloading's action: it reads VRAM and the model's size
// first, then asks Ollama to unload the model.
func (m *Manager) unload(ctx context.Context, p *unloadProbe) event {
	*p = unloadProbe{}
	if m.cfg.Reader != nil {
		before, ok := m.read(ctx)
		p.before, p.beforeOK = before.VRAMUsed, ok
	}
	pctx, cancel := context.WithTimeout(ctx, psTimeout)
	if lm, ok, err := m.cfg.Controller.Loaded(pctx); err == nil && ok {
		p.expected = lm.SizeVRAM
	}
	cancel()
	m.mu.Lock()
	p.reload = max(p.expected, m.modelVRAM)
	m.mu.Unlock()

	uctx, ucancel := context.WithTimeout(ctx, unloadTimeout)
	err := m.cfg.Controller.Unload(uctx)
	ucancel()
	if err != nil {
		// A crashed runner or a server that is down has nothing to
		// unload; the VRAM check tells whether that matters.
		m.log.Warn("GPU cleanup: unload failed", "err", err)
	}
	m.mu.Lock()
	m.model.Loaded, m.model.Warm = false, false
	m.mu.Unlock()
	return evUnloaded{}
}

// verify is phaseVerifying's action: it reads VRAM until the unload shows
// (RecoveryTimeout after an unload or a restart), or once (after a
// backoff).
func (m *Manager) verify(ctx context.Context, p *unloadProbe, c check) event {
	wait := m.cfg.RecoveryTimeout
	if c == checkAgain {
		wait = 0
	}
	freed, msg := m.waitFreed(ctx, p, wait)
	return evVerified{freed: freed, msg: msg}
}

// waitFreed reads VRAM every RecoveryPoll, for at most wait (0: once),
// until the unload shows: the card below critical, room to load the
// model again below critical and, when the model held VRAM before, at
// least 80 % of it back. Without a reader, or with
// readings failing, it cannot tell and lets the reload go ahead. msg says
// what was seen.
func (m *Manager) waitFreed(ctx context.Context, p *unloadProbe, wait time.Duration) (freed bool, msg string) {
	if m.cfg.Reader == nil {
		return true, "not checked: no VRAM reader"
	}
	var deadline, tick <-chan time.Time
	if wait > 0 {
		d := time.NewTimer(wait)
		defer d.Stop()
		deadline = d.C
		t := time.NewTicker(m.cfg.RecoveryPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		card, ok := m.read(ctx)
		if !ok {
			msg = "VRAM could not be read after the unload"
		} else if freed, msg = m.judgeFreed(p, card); freed {
			return true, msg
		}
		if wait == 0 {
			return !ok, msg
		}
		select {
		case <-ctx.Done():
			return false, msg
		case <-deadline:
			return !ok, msg
		case <-tick:
		}
	}
}

// judgeFreed compares a reading after the unload with the one before.
func (m *Manager) judgeFreed(p *unloadProbe, after Device) (bool, string) {
	pct := after.UsedFraction() * 100
	var dropped int64
	if p.beforeOK {
		dropped = int64(p.before) - int64(after.VRAMUsed)
	}
	msg := fmt.Sprintf("VRAM used %d MiB, %.1f%%", after.VRAMUsed/mib, pct)
	if p.beforeOK {
		msg = fmt.Sprintf("VRAM used went from %d to %d MiB (%.1f%%)", p.before/mib, after.VRAMUsed/mib, pct)
	}
	enough := true
	if p.expected > 0 && p.beforeOK {
		need := int64(float64(p.expected) * freedShare)
		enough = dropped >= need
		msg += fmt.Sprintf("; the model held %d MiB", p.expected/mib)
	}
	if pct >= m.cfg.Policy.Critical {
		enough = false
		msg += fmt.Sprintf("; still at or above critical (%g%%)", m.cfg.Policy.Critical)
	} else if p.reload > 0 && after.VRAMTotal > 0 {
		// Memory the model server keeps after the unload (a leak) leaves
		// no room to load the model again: the reload would be back at
		// critical at once, or fail out of memory.
		if next := float64(after.VRAMUsed+p.reload) * 100 / float64(after.VRAMTotal); next >= m.cfg.Policy.Critical {
			enough = false
			msg += fmt.Sprintf("; loading the model again (%d MiB) would take the card to %.1f%%, at or above critical (%g%%)",
				p.reload/mib, next, m.cfg.Policy.Critical)
		}
	}
	if !enough {
		msg += "; Ollama on ROCm can keep VRAM after an unload (ollama#7606, #10597)"
	}
	return enough, msg
}

// restart is phaseRestarting's action: the configured restart command.
func (m *Manager) restart(ctx context.Context) event {
	rctx, cancel := context.WithTimeout(ctx, m.cfg.RestartTimeout)
	defer cancel()
	if err := m.run(rctx, m.cfg.Policy.RestartCmd); err != nil {
		m.log.Error("model server restart command failed", "err", err)
	} else {
		m.log.Warn("model server restart command ran (SENTIMENT_GPU_RESTART_CMD)")
	}
	return evRestarted{}
}

// warm is phaseWarming's action: it preloads the model and records the
// model's state; nil when ctx ended meanwhile.
func (m *Manager) warm(ctx context.Context) event {
	wctx, wcancel := context.WithTimeout(ctx, warmTimeout)
	latency, err := m.cfg.Controller.Warm(wctx)
	wcancel()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		m.mu.Lock()
		m.model.Warm = false
		m.mu.Unlock()
		return evWarmed{err: err}
	}
	m.refreshModel(ctx)
	m.mu.Lock()
	m.model.Warm, m.model.WarmupLatency = true, latency
	m.mu.Unlock()
	return evWarmed{at: m.now(), latency: latency}
}

// shellCommand runs cmd with /bin/sh -c, keeping the start of its output
// for the error. The command's text is not repeated in the error: the
// owner's command may carry a credential (a curl with a token).
func shellCommand(ctx context.Context, cmd string) error {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", cmd)
	out := cappedBuffer{max: maxToolStderr}
	c.Stdout, c.Stderr = &out, &out
	c.WaitDelay = toolWaitDelay
	if err := c.Run(); err != nil {
		if line := firstLine(out.buf.Bytes()); line != "" {
			return fmt.Errorf("running the restart command: %w: %s", err, line)
		}
		return fmt.Errorf("running the restart command: %w", err)
	}
	return nil
}
