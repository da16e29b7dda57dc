package sim

import (
	"strconv"
	"time"
)

// State is what GET /_sim/state returns: the knobs in force, what each
// upstream has seen, and the model server and card as they stand. Every
// counter is present from the start (at 0), so a script can read any of
// them without guarding against null.
type State struct {
	// Seed is the seed in use (the scenario's, or the one picked).
	Seed      uint64                   `json:"seed"`
	Scenario  Scenario                 `json:"scenario"`
	Upstreams map[string]UpstreamState `json:"upstreams"`
	Ollama    OllamaState              `json:"ollama"`
	GPU       cardState                `json:"gpu"`
}

// UpstreamState is what one upstream has seen since the start or the last
// reset. Requests counts model calls (Ollama's loads, unloads, /api/ps
// and the like apart) and Discord's webhook requests.
type UpstreamState struct {
	Requests int64 `json:"requests"`
	// OK counts answers that were a success (2xx) and well-formed:
	// malformed and prose-wrapped answers count as errors.
	OK int64 `json:"ok"`
	// InFlight counts calls in a slot now; MaxInFlight the most at once,
	// which never exceeds slots.
	InFlight    int `json:"in_flight"`
	MaxInFlight int `json:"max_in_flight"`
	// Queued counts calls waiting for a slot; MaxQueued the most at once.
	Queued    int `json:"queued"`
	MaxQueued int `json:"max_queued"`
	// Canceled counts calls whose client gave up before the answer (hangs
	// included).
	Canceled int64 `json:"canceled"`
	// Errors counts failures by kind, every kind present: "500", "503",
	// "429", "hang", "reset", "malformed", "prose" (drawn by the error
	// rates), "storm", "queue_full", "crash" (the full queue's 500),
	// "oom", "auth", "bucket".
	Errors map[string]int64 `json:"errors"`
	// Status counts answers by HTTP status ("200", "429", ...).
	Status map[string]int64 `json:"status"`
	// StormLeft is the time left in a 429 storm; 0s when none.
	StormLeft Duration `json:"storm_left"`
	// Posts and Edits (Discord) count executes and edits received.
	Posts int64 `json:"posts,omitzero"`
	Edits int64 `json:"edits,omitzero"`
}

// OllamaState is the simulated model server's memory.
type OllamaState struct {
	Loaded []LoadedState `json:"loaded"`
	// Loads and Unloads count model loads and unloads (a reload for
	// another num_ctx is one of each; a runner killed out of memory is an
	// unload).
	Loads   int `json:"loads"`
	Unloads int `json:"unloads"`
}

// LoadedState is one model loaded.
type LoadedState struct {
	Name          string    `json:"name"`
	ContextLength int       `json:"context_length"`
	ExpiresAt     time.Time `json:"expires_at"`
	SizeBytes     uint64    `json:"size_bytes"`
}

// State returns the state now.
func (s *Sim) State() State {
	s.models.Expire()
	s.mu.Lock()
	st := State{Seed: s.sc.Seed, Scenario: s.sc, Upstreams: make(map[string]UpstreamState, len(s.ups))}
	now := time.Now()
	for name, u := range s.ups {
		us := UpstreamState{
			Requests: u.requests, OK: u.ok, InFlight: u.inFlight, MaxInFlight: u.maxInFlight,
			Queued: u.queued, MaxQueued: u.maxQueued, Canceled: u.canceled,
			Errors: make(map[string]int64, len(Kinds)), Status: make(map[string]int64, len(u.status)),
			StormLeft: Duration(max(0, u.stormUntil.Sub(now))), Posts: u.posts, Edits: u.edits,
		}
		for _, k := range Kinds {
			us.Errors[k] = u.errors[k]
		}
		for code, n := range u.status {
			us.Status[strconv.Itoa(code)] = n
		}
		st.Upstreams[name] = us
	}
	s.mu.Unlock()
	size, _ := s.models.Size()
	st.Ollama.Loaded = []LoadedState{}
	for _, lm := range s.models.Loaded() {
		st.Ollama.Loaded = append(st.Ollama.Loaded, LoadedState{Name: lm.Name, ContextLength: lm.ContextLength, ExpiresAt: lm.ExpiresAt, SizeBytes: size})
	}
	st.Ollama.Loads, st.Ollama.Unloads = s.models.Counts()
	st.GPU = s.card.state(s.opts.SysfsRoot)
	return st
}

// Reset sets the counters back to zero (the most in flight and queued to
// what is in flight and queued now) and forgets Discord's posts and edits;
// the knobs, storms, loaded models, messages and the card stay as they
// are.
func (s *Sim) Reset() {
	s.mu.Lock()
	for _, u := range s.ups {
		c := newCounters()
		c.inFlight, c.maxInFlight = u.inFlight, u.inFlight
		c.queued, c.maxQueued = u.queued, u.queued
		u.counters = c
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.models.ResetCounts()
	s.discord.resetRecords()
}

// RestartOllama stands for a restart of the model server: every model is
// unloaded and the card gets back all the model server held, leak
// included. It is what SENTIMENT_GPU_RESTART_CMD would do on the owner's
// machine (systemctl restart ollama).
func (s *Sim) RestartOllama() {
	s.models.UnloadAll()
	s.card.restart()
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}
