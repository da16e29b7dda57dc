package gpu

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/catalystbot/sentiment/config"
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
// it: a ceiling on the calls it lets start, and the number on the GPU now.
// *batcher.Queue is one.
type Queue interface {
	// SetCeiling caps the calls in flight, 0 to MaxConcurrent; 0 lets no
	// new call start. Calls in flight are not interrupted.
	SetCeiling(n int)
	// InFlight is the number of calls holding a GPU slot now.
	InFlight() int
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
	// Policy is the VRAM policy (config.GPUPolicy): poll interval, high
	// water and critical in percent of the card's VRAM, failures in a row
	// that trigger a cleanup (0: never on a count alone), the restart
	// command, the drain timeout, and warm-up at start.
	Policy config.GPUPolicy
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

	// drainPoll is how often a drain looks at the queue's InFlight (the
	// queue has no notification; a call takes seconds, so this is fine).
	drainPoll = 50 * time.Millisecond
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
	// Reader is the reader's kind, "none" without one. ReaderError says
	// why readings are missing or partial; empty when all is well.
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
	// why not.
	Admitting  bool
	GateReason string
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
	cfg     ManagerConfig
	log     *slog.Logger
	now     func() time.Time
	run     func(ctx context.Context, cmd string) error
	trigger chan string

	mu sync.Mutex
	// gate: open, or closed with a reason. busy is true while the manager
	// itself holds it closed (warm-up, cleanup, recovery); a gate closed
	// by Report but not yet busy is waiting for Run to take the trigger.
	gateOpen   bool
	gateReason string
	busy       bool
	failures   int

	devices    []Device
	readErr    string
	observedAt time.Time
	level      Pressure
	pct        float64
	card       string
	cut        bool
	ceiling    int
	rising     int
	lastUsed   uint64
	haveLast   bool

	model ModelStatus
	// psErr and warmErr are the last failures of /api/ps and of a
	// warm-up; each is cleared by the next success of its kind.
	psErr, warmErr string

	cleanups      uint64
	restarts      uint64
	lastCleanupAt time.Time
	lastReason    string
	notFreed      bool
	notFreedMsg   string

	// streak counts cleanups begun within StableAfter of the gate's last
	// reopening; warmFails the failed warm-ups in a row.
	streak     int
	lastReopen time.Time
	warmFails  int
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
	m := &Manager{cfg: cfg, log: log, now: cfg.Now, run: cfg.RunCommand, trigger: make(chan string, 1),
		ceiling: cfg.MaxConcurrent}
	if m.now == nil {
		m.now = time.Now
	}
	if m.run == nil {
		m.run = shellCommand
	}
	switch {
	case cfg.Controller == nil:
		m.gateReason = "local tier off: no model server to control"
	case p.Warmup:
		m.busy, m.gateReason = true, "waiting for the first warm-up of the model"
	default:
		m.gateOpen = true
	}
	if cfg.Controller != nil {
		m.model.Name = cfg.Controller.Model()
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
	return m.gateOpen, m.gateReason
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
	if sig == upstream.SignalOK {
		m.failures = 0
		m.mu.Unlock()
		return
	}
	m.failures++
	if m.cfg.Controller == nil || !m.gateOpen || m.busy {
		m.mu.Unlock()
		return
	}
	var reason string
	switch {
	case sig == upstream.SignalCrash:
		reason = "the model runner crashed: " + oneLine(detail)
	case sig == upstream.SignalDown:
		reason = "the model server refused the connection: " + oneLine(detail)
	case m.cfg.Policy.MaxFailures == 0 || m.failures < m.cfg.Policy.MaxFailures:
		m.mu.Unlock()
		return
	default:
		reason = fmt.Sprintf("%d local calls failed in a row, the last with: %s", m.failures, oneLine(detail))
	}
	m.gateOpen, m.gateReason = false, reason+"; cleanup pending"
	m.mu.Unlock()
	m.log.Warn("closing the GPU gate", "reason", reason)
	select {
	case m.trigger <- reason:
	default:
	}
}

// oneLine keeps an error message to one short line for a gate reason.
func oneLine(s string) string {
	return clip(strings.Join(strings.Fields(s), " "), 300)
}

// Status returns a snapshot.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		Devices:             append([]Device(nil), m.devices...),
		Reader:              KindNone,
		ReaderError:         m.readErr,
		Pressure:            m.level,
		PressurePercent:     m.pct,
		PressureCard:        m.card,
		Ceiling:             m.ceiling,
		CeilingCut:          m.cut,
		Model:               m.model,
		LastCleanupAt:       m.lastCleanupAt,
		LastCleanupReason:   m.lastReason,
		Cleanups:            m.cleanups,
		Restarts:            m.restarts,
		VRAMNotFreed:        m.notFreed,
		VRAMMessage:         m.notFreedMsg,
		Admitting:           m.gateOpen,
		GateReason:          m.gateReason,
		ConsecutiveFailures: m.failures,
		ObservedAt:          m.observedAt,
	}
	s.Model.Error = m.warmErr
	if s.Model.Error == "" {
		s.Model.Error = m.psErr
	}
	if m.cfg.Reader != nil {
		s.Reader = m.cfg.Reader.Name()
		if m.observedAt.IsZero() && s.ReaderError == "" {
			s.ReaderError = "no reading yet"
		}
	} else {
		s.ReaderError = "no VRAM reader configured (SENTIMENT_GPU_READER=none): VRAM is not watched"
		s.ObservedAt = m.now()
	}
	return s
}

// recovery is a step of a cleanup that waits: Run's loop keeps polling
// while it does, and runs the step when its timer fires.
type recovery struct {
	step  recoveryStep
	timer *time.Timer
	// before and expected carry a cleanup's reading from before the
	// unload and the model's size_vram, for a later check.
	before   uint64
	beforeOK bool
	expected uint64
}

type recoveryStep int

const (
	stepNone    recoveryStep = iota
	stepRecheck              // VRAM was not freed: look again, restart, warm
	stepWarm                 // load the model again
)

func (r *recovery) pending() bool { return r.step != stepNone }

func (r *recovery) schedule(s recoveryStep, d time.Duration) {
	r.stop()
	r.step, r.timer = s, time.NewTimer(d)
}

func (r *recovery) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.step, r.timer = stepNone, nil
}

func (r *recovery) c() <-chan time.Time {
	if r.timer == nil {
		return nil
	}
	return r.timer.C
}

// Run polls VRAM every Policy.PollInterval and acts on what it reads,
// on the failures Report signals and on the periodic cleanup, until ctx
// ends. It warms the model first when Policy.Warmup is set. It starts no
// goroutine: everything, the cleanups included, runs here, one thing at a
// time, so cleanups never overlap. Call it once; Admit closes for good if
// it is not running, since only Run reopens the gate after a failure.
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
	var r recovery
	defer r.stop()

	if m.cfg.Reader != nil {
		m.poll(ctx)
	}
	if m.cfg.Controller != nil && m.cfg.Policy.Warmup {
		m.warm(ctx, &r, "start")
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll:
			if reason := m.poll(ctx); reason != "" && !r.pending() {
				m.cleanup(ctx, &r, reason, false)
			}
		case <-periodic:
			if !r.pending() {
				m.cleanup(ctx, &r, fmt.Sprintf("periodic unload and reload (every %s)", m.cfg.CleanupInterval), true)
			}
		case reason := <-m.trigger:
			if !r.pending() {
				m.cleanup(ctx, &r, reason, false)
			}
		case <-r.c():
			m.resume(ctx, &r)
		}
	}
}

// read takes one reading and records it in the status. It returns the
// watched card, or ok false when it could not be read.
func (m *Manager) read(ctx context.Context) (card Device, ok bool) {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	devices, err := m.cfg.Reader.Read(rctx)
	cancel()
	card, ok, why := m.pick(devices)
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.devices, m.observedAt, m.readErr = devices, now, ""
	switch {
	case err != nil && why != "":
		m.readErr = err.Error() + "; " + why
	case err != nil:
		m.readErr = err.Error()
	case why != "":
		m.readErr = why
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
// returns the reason for a cleanup when one is due.
func (m *Manager) poll(ctx context.Context) (cleanup string) {
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
	if ok && !m.busy && m.cfg.Queue != nil {
		if cut := m.level >= PressureHigh; cut != m.cut {
			m.cut = cut
			m.ceiling = m.normalCeilingLocked()
			setCeiling = m.ceiling
		}
	}
	if ok && m.gateOpen && !m.busy && m.cfg.Controller != nil {
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
	return cleanup
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
			m.psErr = err.Error()
		}
		return
	}
	m.psErr = ""
	m.model.Loaded = ok
	m.model.Size, m.model.SizeVRAM, m.model.ExpiresAt, m.model.ContextLength = lm.Size, lm.SizeVRAM, lm.ExpiresAt, lm.ContextLength
	if !ok {
		m.model.Warm = false
	}
}

// setGate records the gate's state; closing it marks the manager busy.
func (m *Manager) setGate(open bool, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gateOpen, m.gateReason, m.busy = open, reason, !open
}

// backoff is the wait before the n-th troubled attempt (n >= 1): MinBackoff
// doubling up to MaxBackoff.
func (m *Manager) backoff(n int) time.Duration {
	d := m.cfg.MinBackoff
	for i := 1; i < n && d < m.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, m.cfg.MaxBackoff)
}

// cleanup closes the gate, drains the GPU, unloads the model and checks
// that its VRAM came back. Then it warms the model at once, or, when the
// memory did not come back or cleanups come too close together, schedules
// the next step after a backoff and returns to the loop. A periodic
// cleanup is never counted as a repeat: the owner asked for it.
func (m *Manager) cleanup(ctx context.Context, r *recovery, reason string, periodic bool) {
	now := m.now()
	m.mu.Lock()
	m.gateOpen, m.busy, m.gateReason = false, true, "cleanup ("+reason+"): waiting for GPU calls in flight"
	m.failures = 0
	m.cleanups++
	m.lastCleanupAt, m.lastReason = now, reason
	if periodic || m.lastReopen.IsZero() || now.Sub(m.lastReopen) >= m.cfg.StableAfter {
		m.streak = 1
	} else {
		m.streak++
	}
	streak := m.streak
	m.mu.Unlock()
	// A trigger that came in meanwhile is served by this cleanup; emptied
	// only now that busy is set, so none slips in between and starts a
	// second cleanup once the gate reopens.
	select {
	case <-m.trigger:
	default:
	}
	m.log.Warn("GPU cleanup", "reason", reason, "in_a_row", streak)

	m.drain(ctx)
	if ctx.Err() != nil {
		return
	}

	var before Device
	if m.cfg.Reader != nil {
		before, r.beforeOK = m.read(ctx)
		r.before = before.VRAMUsed
	}
	r.expected = 0
	pctx, cancel := context.WithTimeout(ctx, psTimeout)
	if lm, ok, err := m.cfg.Controller.Loaded(pctx); err == nil && ok {
		r.expected = lm.SizeVRAM
	}
	cancel()

	m.setGate(false, "cleanup ("+reason+"): unloading the model")
	uctx, ucancel := context.WithTimeout(ctx, unloadTimeout)
	err := m.cfg.Controller.Unload(uctx)
	ucancel()
	if err != nil {
		// A crashed runner or a server that is down has nothing to
		// unload; the VRAM check below tells whether that matters.
		m.log.Warn("GPU cleanup: unload failed", "err", err)
	}
	m.mu.Lock()
	m.model.Loaded, m.model.Warm = false, false
	m.mu.Unlock()

	freed, msg := m.waitFreed(ctx, r, m.cfg.RecoveryTimeout)
	if ctx.Err() != nil {
		return
	}
	if !freed {
		d := m.backoff(streak)
		m.mu.Lock()
		m.notFreed, m.notFreedMsg = true, msg
		m.gateReason = fmt.Sprintf("VRAM not freed after unloading the model (%s); checking again in %s", msg, d)
		m.mu.Unlock()
		m.log.Error("GPU cleanup: VRAM not freed by the unload", "detail", msg, "retry_in", d)
		r.schedule(stepRecheck, d)
		return
	}
	m.mu.Lock()
	m.notFreed, m.notFreedMsg = false, ""
	m.mu.Unlock()
	if streak > 1 {
		d := m.backoff(streak - 1)
		m.setGate(false, fmt.Sprintf("cleanup %d in a row (%s): waiting %s before loading the model again", streak, reason, d))
		m.log.Warn("GPU cleanups in a row: backing off before the reload", "in_a_row", streak, "wait", d)
		r.schedule(stepWarm, d)
		return
	}
	m.warm(ctx, r, "after cleanup")
}

// resume runs a recovery step whose backoff has passed.
func (m *Manager) resume(ctx context.Context, r *recovery) {
	step := r.step
	r.stop()
	if step == stepRecheck {
		freed, msg := m.waitFreed(ctx, r, 0)
		if !freed && m.cfg.Policy.RestartCmd != "" {
			m.setGate(false, "VRAM not freed after unload ("+msg+"): restarting the model server")
			m.restart(ctx)
			freed, msg = m.waitFreed(ctx, r, m.cfg.RecoveryTimeout)
			if !freed {
				msg += " (after running the restart command)"
			}
		}
		if ctx.Err() != nil {
			return
		}
		m.mu.Lock()
		m.notFreed, m.notFreedMsg = !freed, msg
		m.mu.Unlock()
		if !freed {
			m.log.Error("VRAM still not freed; loading the model anyway", "detail", msg)
		}
	}
	m.warm(ctx, r, "after cleanup")
}

// restart runs the configured restart command.
func (m *Manager) restart(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, m.cfg.RestartTimeout)
	defer cancel()
	err := m.run(rctx, m.cfg.Policy.RestartCmd)
	m.mu.Lock()
	m.restarts++
	m.mu.Unlock()
	if err != nil {
		m.log.Error("model server restart command failed", "err", err)
		return
	}
	m.log.Warn("model server restart command ran (SENTIMENT_GPU_RESTART_CMD)")
}

// drain stops new GPU calls and waits for those in flight, at most
// Policy.DrainTimeout; past it the cleanup goes on (the unload then waits
// on Ollama's side for the calls to end).
func (m *Manager) drain(ctx context.Context) {
	q := m.cfg.Queue
	if q == nil {
		return
	}
	q.SetCeiling(0)
	m.mu.Lock()
	m.ceiling = 0
	m.mu.Unlock()
	if q.InFlight() == 0 || m.cfg.Policy.DrainTimeout == 0 {
		return
	}
	deadline := time.NewTimer(m.cfg.Policy.DrainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for q.InFlight() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			m.log.Warn("GPU cleanup: drain timed out; unloading with calls in flight",
				"in_flight", q.InFlight(), "timeout", m.cfg.Policy.DrainTimeout)
			return
		case <-tick.C:
		}
	}
}

// waitFreed reads VRAM every RecoveryPoll, for at most wait (0: once),
// until the unload shows: the card below critical and, when the model
// held VRAM before, at least 80 % of it back. Without a reader, or with
// readings failing, it cannot tell and lets the reload go ahead. msg says
// what was seen.
func (m *Manager) waitFreed(ctx context.Context, r *recovery, wait time.Duration) (freed bool, msg string) {
	if m.cfg.Reader == nil {
		return true, "not checked: no VRAM reader"
	}
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	var tick <-chan time.Time
	if wait > 0 {
		t := time.NewTicker(m.cfg.RecoveryPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		card, ok := m.read(ctx)
		if !ok {
			msg = "VRAM could not be read after the unload"
		} else if freed, msg = m.judgeFreed(r, card); freed {
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
func (m *Manager) judgeFreed(r *recovery, after Device) (bool, string) {
	pct := after.UsedFraction() * 100
	var dropped int64
	if r.beforeOK {
		dropped = int64(r.before) - int64(after.VRAMUsed)
	}
	msg := fmt.Sprintf("VRAM used %d MiB, %.1f%%", after.VRAMUsed/mib, pct)
	if r.beforeOK {
		msg = fmt.Sprintf("VRAM used went from %d to %d MiB (%.1f%%)", r.before/mib, after.VRAMUsed/mib, pct)
	}
	enough := true
	if r.expected > 0 && r.beforeOK {
		need := int64(float64(r.expected) * freedShare)
		enough = dropped >= need
		msg += fmt.Sprintf("; the model held %d MiB", r.expected/mib)
	}
	if pct >= m.cfg.Policy.Critical {
		enough = false
		msg += fmt.Sprintf("; still at or above critical (%g%%)", m.cfg.Policy.Critical)
	}
	if !enough {
		msg += "; Ollama on ROCm can keep VRAM after an unload (ollama#7606, #10597)"
	}
	return enough, msg
}

// warm preloads the model and reopens the gate; on failure it keeps the
// gate closed and schedules another try after a growing backoff.
func (m *Manager) warm(ctx context.Context, r *recovery, why string) {
	m.setGate(false, "loading the model ("+why+")")
	wctx, wcancel := context.WithTimeout(ctx, warmTimeout)
	latency, err := m.cfg.Controller.Warm(wctx)
	wcancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		m.mu.Lock()
		m.warmFails++
		d := m.backoff(m.warmFails)
		m.model.Warm, m.warmErr = false, err.Error()
		m.gateReason = fmt.Sprintf("warm-up failed (%s): %v; next try in %s", why, err, d)
		m.mu.Unlock()
		m.log.Error("model warm-up failed", "why", why, "err", err, "retry_in", d)
		r.schedule(stepWarm, d)
		return
	}
	m.refreshModel(ctx)
	m.mu.Lock()
	m.warmFails, m.warmErr = 0, ""
	m.model.Warm, m.model.WarmupLatency = true, latency
	m.gateOpen, m.gateReason, m.busy, m.failures = true, "", false, 0
	m.lastReopen = m.now()
	m.rising, m.haveLast = 0, false
	if m.level != PressureUnknown {
		m.cut = m.level >= PressureHigh
	}
	setCeiling := -1
	if m.cfg.Queue != nil {
		m.ceiling = m.normalCeilingLocked()
		setCeiling = m.ceiling
	}
	m.mu.Unlock()
	if setCeiling >= 0 {
		m.cfg.Queue.SetCeiling(setCeiling)
	}
	m.log.Info("model warm; local tier open", "model", m.cfg.Controller.Model(), "why", why, "latency", latency)
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
