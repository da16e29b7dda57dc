package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/catalystbot/sentiment/internal/discordapi"
	"github.com/catalystbot/sentiment/internal/llmapi"
)

// Options are what a Sim is given besides its knobs.
type Options struct {
	// SysfsRoot is where the card's sysfs tree is written, for the
	// service's GPU manager to read (SENTIMENT_GPU_SYSFS_ROOT); empty
	// writes none, and the card lives only in the state.
	SysfsRoot string
	// Log gets a line at start and for each change of scenario; nil
	// discards. Calls are not logged: load tests make millions.
	Log *slog.Logger
}

// Sim is the simulated world, an http.Handler serving every upstream the
// service calls and the control API under /_sim/. It starts no
// goroutines of its own; Close ends the calls it is holding.
type Sim struct {
	opts    Options
	log     *slog.Logger
	judge   *judge
	card    *card
	models  *llmapi.OllamaModels
	discord *discordWorld
	// stop is closed by Close: held calls (hangs, queues, latencies) end
	// with their connection dropped, so that a server shutdown need not
	// wait for them.
	stop      chan struct{}
	closeOnce sync.Once
	// ctl serialises scenario changes, so that a PATCH reads and replaces
	// the scenario as one step.
	ctl sync.Mutex

	mu  sync.Mutex
	sc  Scenario
	rng *rand.Rand
	ups map[string]*upstreamSim
	// changed is closed, and replaced, when a counter moves: tests wait
	// on it rather than sleep.
	changed chan struct{}
}

// upstreamSim is one upstream's knobs in force and its counters; s.mu guards
// it.
type upstreamSim struct {
	name string
	cfg  Upstream
	// sem holds a token per call in a slot; nil when slots are unlimited.
	sem        chan struct{}
	stormUntil time.Time
	counters
}

type counters struct {
	requests, ok, canceled int64
	inFlight, maxInFlight  int
	queued, maxQueued      int
	errors                 map[string]int64
	status                 map[int]int64
	// posts and edits count Discord's executes and edits.
	posts, edits int64
}

// New builds the world with the knobs of sc, writing the card's sysfs tree
// when opts says where.
func New(sc Scenario, opts Options) (*Sim, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	j, err := newJudge()
	if err != nil {
		return nil, err
	}
	c, err := newCard(opts.SysfsRoot, sc.GPU)
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Sim{
		opts: opts, log: log, judge: j, card: c,
		models:  llmapi.NewOllamaModels(),
		discord: newDiscordWorld(),
		stop:    make(chan struct{}),
		ups:     make(map[string]*upstreamSim, len(Names)),
	}
	for _, name := range Names {
		s.ups[name] = &upstreamSim{name: name, counters: newCounters()}
	}
	// The card follows the model server: a loaded model holds its size in
	// VRAM until it is unloaded.
	s.models.OnLoad(func(model string) {
		size, _ := s.models.Size()
		s.card.load(model, size)
	})
	s.models.OnUnload(s.card.unload)
	s.apply(sc, true)
	return s, nil
}

func newCounters() counters {
	return counters{errors: make(map[string]int64), status: make(map[int]int64)}
}

// Close ends every call the world is holding (their connections drop) and
// makes later held calls end at once. It is idempotent.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.stop) })
}

// Scenario returns the knobs in force.
func (s *Sim) Scenario() Scenario {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sc
}

// Replace puts sc in force in place of every knob, storms included: a
// storm running stops unless sc starts one. A seed of 0 keeps the random
// sequence going; another restarts it from that seed. It returns the
// scenario as it now reads (the seed in use, storms started).
func (s *Sim) Replace(sc Scenario) (Scenario, error) {
	if err := sc.Validate(); err != nil {
		return Scenario{}, err
	}
	s.ctl.Lock()
	defer s.ctl.Unlock()
	return s.apply(sc, true), nil
}

// Patch reads data (a scenario's JSON, or part of one) over the knobs in
// force and puts the result in force: what data leaves out stays, storms
// running go on, and the random sequence restarts only if data sets
// another seed.
func (s *Sim) Patch(data []byte) (Scenario, error) {
	s.ctl.Lock()
	defer s.ctl.Unlock()
	sc, err := ParseScenario(data, s.Scenario())
	if err != nil {
		return Scenario{}, err
	}
	return s.apply(sc, false), nil
}

// apply puts sc in force and returns it as it now reads: the seed in use,
// storms (actions) cleared.
func (s *Sim) apply(sc Scenario, replace bool) Scenario {
	now := time.Now()
	s.mu.Lock()
	reseed := s.rng == nil || (replace && sc.Seed != 0) || (!replace && sc.Seed != s.sc.Seed)
	if reseed {
		for sc.Seed == 0 {
			sc.Seed = rand.Uint64()
		}
		s.rng = newRand(sc.Seed)
	} else {
		sc.Seed = s.sc.Seed
	}
	var storms []string
	for _, name := range Names {
		u, k := s.ups[name], must(sc.Upstream(name))
		if (u.sem == nil) != (k.Slots == 0) || (u.sem != nil && cap(u.sem) != k.Slots) {
			// Calls in a slot give their token back to the channel they
			// took it from; new calls see the new number of slots.
			u.sem = nil
			if k.Slots > 0 {
				u.sem = make(chan struct{}, k.Slots)
			}
		}
		if replace {
			u.stormUntil = time.Time{}
		}
		if k.Storm > 0 {
			u.stormUntil = now.Add(time.Duration(k.Storm))
			storms = append(storms, name+" "+time.Duration(k.Storm).String())
			k.Storm = 0
		}
		u.cfg = *k
	}
	s.sc = sc
	s.notifyLocked()
	s.mu.Unlock()

	s.card.configure(sc.GPU)
	s.models.SetSize(sc.GPU.ModelMiB*MiB, sc.GPU.ModelMiB*MiB)
	s.discord.configure(sc.Discord.BucketLimit, time.Duration(sc.Discord.BucketReset))
	s.updateBusy()
	s.log.Info("scenario in force", "seed", sc.Seed, "replace", replace, "storms", strings.Join(storms, ", "))
	return sc
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("sim: unknown upstream")
	}
	return v
}

// notifyLocked wakes whoever waits on a change; s.mu is held.
func (s *Sim) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// awaitState waits until cond holds for the state, or ctx ends.
func (s *Sim) awaitState(ctx context.Context, cond func(State) bool) error {
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		if cond(s.State()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ServeHTTP routes a request: the control API, Discord's webhooks, the
// model APIs.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.serveControl(w, r)
		return
	}
	if p, ok := discordapi.ParsePath(r.URL.Path); ok {
		s.serveDiscord(w, r, p)
		return
	}
	rec := llmapi.ReadRequest(r)
	ep, model := llmapi.Identify(rec)
	if ep.Format() == llmapi.Ollama {
		s.models.Expire()
	}
	switch {
	case ep == llmapi.OllamaPS:
		s.models.PS().Write(w)
	case ep == llmapi.OllamaTags:
		size, _ := s.models.Size()
		llmapi.Tags(s.knownModels(), size).Write(w)
	case ep == llmapi.OllamaVersion:
		llmapi.Version().Write(w)
	case ep == llmapi.OllamaEmbed:
		llmapi.Embeddings(rec.Body).Write(w)
	case ep == llmapi.OpenAIModels:
		llmapi.ModelList(s.knownModels()).Write(w)
	case ep.Format() == llmapi.Ollama && llmapi.IsLoadRequest(rec.Path, rec.Body):
		s.serveOllamaControl(w, r, rec, model)
	case ep.ModelCall():
		s.serveModel(w, r, rec, ep.Format(), model)
	default:
		llmapi.JSON(http.StatusNotFound, map[string]any{"error": r.Method + " " + r.URL.Path + " is not simulated; see llmsim -help"}).Write(w)
	}
}

// knownModels is what /api/tags and /v1/models list: the service's
// default model and every model loaded since the start.
func (s *Sim) knownModels() []string {
	names := s.models.Known()
	for _, n := range names {
		if n == "mistral:latest" {
			return names
		}
	}
	return append([]string{"mistral:latest"}, names...)
}

// errFull is a call that found the slots and the queue full; errStopped
// one held when the simulator was closed.
var (
	errFull    = errors.New("slots and queue full")
	errStopped = errors.New("simulator closed")
)

// answerer writes an upstream's own answers to the failures every
// upstream can be made to have, and returns the status written.
type answerer interface {
	// rateLimited is a 429 asking to come back after d; storm says it is
	// a storm's (Discord answers those as global).
	rateLimited(d time.Duration, storm bool) int
	// overloaded is the "503" kind and a full queue's answer.
	overloaded() int
	// serverError is the "500" kind and CrashWhenFull's answer.
	serverError() int
}

// gate runs a call through the upstream's knobs, in this order: a storm,
// admit (the upstream's own checks: an API key, a webhook's bucket), the
// drawn 429 or 503, a slot (or a place in the queue, or the full queue's
// answer), a drawn hang, the latency. When it returns ok the call holds a
// slot (release gives it back) and fault says how it should fail, if at
// all ("500", "reset", "malformed", "prose" or ""). When not ok, the call
// has been answered (or has ended) and counted, and fault names the kind
// counted ("" when admit answered it, "canceled" when the client gave up).
func (s *Sim) gate(w http.ResponseWriter, r *http.Request, u *upstreamSim, a answerer, admit func(Upstream) bool) (release func(), k Upstream, fault string, ok bool) {
	ctx := r.Context()
	k, stormLeft, fault, latency := s.begin(u)
	refuse := func(kind string, status int) (func(), Upstream, string, bool) {
		s.failed(u, kind, status)
		return nil, k, kind, false
	}
	end := func(err error) (func(), Upstream, string, bool) {
		s.gone(u, w, err)
		return nil, k, "canceled", false
	}
	if stormLeft > 0 {
		return refuse(KindStorm, a.rateLimited(stormLeft, true))
	}
	if admit != nil && !admit(k) {
		return nil, k, "", false
	}
	switch fault {
	case Kind429:
		return refuse(Kind429, a.rateLimited(time.Duration(k.RetryAfter), false))
	case Kind503:
		return refuse(Kind503, a.overloaded())
	}
	release, err := s.acquire(ctx, u)
	switch {
	case errors.Is(err, errFull) && k.CrashWhenFull:
		return refuse(KindCrash, a.serverError())
	case errors.Is(err, errFull):
		return refuse(KindQueueFull, a.overloaded())
	case err != nil:
		return end(err)
	}
	if fault == KindHang {
		s.count(u, KindHang)
		err := s.wait(ctx, -1)
		release()
		s.gone(u, w, err)
		return nil, k, KindHang, false
	}
	if err := s.wait(ctx, latency); err != nil {
		release()
		return end(err)
	}
	return release, k, fault, true
}

// begin counts a call and draws its fate: the storm's time left (> 0
// during one), or else the failure drawn for it and its latency. Both are
// drawn for every call, so that the sequence a seed gives does not depend
// on which calls fail.
func (s *Sim) begin(u *upstreamSim) (k Upstream, stormLeft time.Duration, fault string, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.requests++
	s.notifyLocked()
	k = u.cfg
	fault = k.Errors.draw(s.rng.Float64())
	latency = k.Latency.Sample(s.rng)
	if left := time.Until(u.stormUntil); left > 0 {
		return k, left, "", 0
	}
	return k, 0, fault, latency
}

// sample draws a latency.
func (s *Sim) sample(l Latency) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return l.Sample(s.rng)
}

// acquire takes a slot, waiting in the queue while the slots are full and
// the queue has room. Its error is errFull when neither has room, the
// ctx's when the client gave up waiting, errStopped when the simulator was
// closed.
func (s *Sim) acquire(ctx context.Context, u *upstreamSim) (release func(), err error) {
	s.mu.Lock()
	sem := u.sem
	take := func() {
		u.inFlight++
		u.maxInFlight = max(u.maxInFlight, u.inFlight)
		s.notifyLocked()
	}
	release = func() {
		s.mu.Lock()
		u.inFlight--
		s.notifyLocked()
		s.mu.Unlock()
		if sem != nil {
			<-sem
		}
		s.busyChanged(u)
	}
	if sem == nil {
		take()
		s.mu.Unlock()
		s.busyChanged(u)
		return release, nil
	}
	select {
	case sem <- struct{}{}:
		take()
		s.mu.Unlock()
		s.busyChanged(u)
		return release, nil
	default:
	}
	if u.queued >= u.cfg.Queue {
		s.mu.Unlock()
		return nil, errFull
	}
	u.queued++
	u.maxQueued = max(u.maxQueued, u.queued)
	s.notifyLocked()
	s.mu.Unlock()

	// Go hands a freed buffer slot to the sender that has waited longest,
	// so the queue is served in order of arrival.
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.stop:
		err = errStopped
	}
	s.mu.Lock()
	u.queued--
	s.notifyLocked()
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	take()
	s.mu.Unlock()
	s.busyChanged(u)
	return release, nil
}

// wait waits d (forever when d < 0) unless the client gives up (the ctx's
// error) or the simulator is closed (errStopped).
func (s *Sim) wait(ctx context.Context, d time.Duration) error {
	if d == 0 {
		return nil
	}
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return errStopped
	}
}

// gone ends a call that will get no answer: counted as canceled when its
// client gave up, its connection dropped when the simulator was closed.
func (s *Sim) gone(u *upstreamSim, w http.ResponseWriter, err error) {
	if errors.Is(err, errStopped) {
		llmapi.ResetConn(w)
		return
	}
	s.mu.Lock()
	u.canceled++
	s.notifyLocked()
	s.mu.Unlock()
}

// count counts one outcome of kind.
func (s *Sim) count(u *upstreamSim, kind string) {
	s.mu.Lock()
	u.errors[kind]++
	s.notifyLocked()
	s.mu.Unlock()
}

// failed counts a failure of kind answered with status.
func (s *Sim) failed(u *upstreamSim, kind string, status int) {
	s.mu.Lock()
	u.errors[kind]++
	u.status[status]++
	s.notifyLocked()
	s.mu.Unlock()
}

// answered counts an answer with status; a 2xx is a success.
func (s *Sim) answered(u *upstreamSim, status int) {
	s.mu.Lock()
	u.status[status]++
	if status >= 200 && status <= 299 {
		u.ok++
	}
	s.notifyLocked()
	s.mu.Unlock()
}

// busyChanged moves the card's gpu_busy_percent with Ollama's calls in
// slots: the share of the slots in use (any call at all is 100% when
// slots are unlimited).
func (s *Sim) busyChanged(u *upstreamSim) {
	if u.name == NameOllama {
		s.updateBusy()
	}
}

func (s *Sim) updateBusy() {
	s.mu.Lock()
	u := s.ups[NameOllama]
	pct := 0
	switch {
	case u.cfg.Slots > 0:
		pct = u.inFlight * 100 / u.cfg.Slots
	case u.inFlight > 0:
		pct = 100
	}
	s.mu.Unlock()
	s.card.setBusy(pct)
}
