package sim

import (
	"net/http"
	"time"

	"github.com/catalystbot/sentiment/internal/llmapi"
)

// modelAnswerer answers a model API's failures in its own format.
type modelAnswerer struct {
	w http.ResponseWriter
	f llmapi.Format
}

func (a modelAnswerer) rateLimited(d time.Duration, _ bool) int {
	return send(a.w, llmapi.RateLimited(a.f, d))
}
func (a modelAnswerer) overloaded() int  { return send(a.w, llmapi.Overloaded(a.f)) }
func (a modelAnswerer) serverError() int { return send(a.w, llmapi.ServerError(a.f)) }

func send(w http.ResponseWriter, r llmapi.Response) int {
	r.Write(w)
	return r.Status
}

// ollamaOOM is the runner's death when the card has no room for it.
func ollamaOOM() llmapi.Response { return llmapi.OllamaCrash("error: out of memory") }

// serveModel answers a model call of format f: through the upstream's
// knobs (gate), then, for Ollama, the model's load and the card's leak,
// then the answer, the judgement of the news in the prompt unless a
// failure was drawn.
func (s *Sim) serveModel(w http.ResponseWriter, r *http.Request, rec llmapi.Request, f llmapi.Format, model string) {
	u := s.ups[f.String()]
	a := modelAnswerer{w: w, f: f}
	admit := func(k Upstream) bool {
		if sent := llmapi.APIKey(f, rec); k.APIKey != "" && sent != k.APIKey {
			s.failed(u, KindAuth, send(w, llmapi.BadKey(f, sent)))
			return false
		}
		return true
	}
	release, k, fault, ok := s.gate(w, r, u, a, admit)
	if !ok {
		return
	}
	oom := false
	if f == llmapi.Ollama {
		if oom, ok = s.runOllama(w, r, u, rec, model, k); !ok {
			release()
			return
		}
	}
	release()
	switch {
	case oom:
		s.failed(u, KindOOM, send(w, ollamaOOM()))
	case fault == Kind500:
		s.failed(u, Kind500, a.serverError())
	case fault == KindReset:
		s.count(u, KindReset)
		llmapi.ResetConn(w)
	case fault == KindMalformed:
		s.failed(u, KindMalformed, send(w, s.success(f, rec, model, false).Truncated()))
	case fault == KindProse:
		s.failed(u, KindProse, send(w, s.success(f, rec, model, true)))
	default:
		s.answered(u, send(w, s.success(f, rec, model, false)))
	}
}

// success is the format's 200 carrying the judgement of the prompt's
// news, wrapped in prose when asked.
func (s *Sim) success(f llmapi.Format, rec llmapi.Request, model string, prose bool) llmapi.Response {
	text, in, out := s.judge.answer(llmapi.Prompt(f, rec))
	if prose {
		text = llmapi.Prose(text)
	}
	return llmapi.Success(f, model, rec, llmapi.Answer{Text: text, TokensIn: in, TokensOut: out})
}

// runOllama is what an Ollama call does to the model server while it
// holds its slot: it loads the model when it is not loaded, or loaded with
// another num_ctx (taking LoadLatency, and dying out of memory when the
// card has no room for it); a loaded model's runner dies out of memory
// when the card is full, and takes its model down with it; a call that
// runs leaves the card's leak behind. ok is false when the client gave up
// or the simulator was closed during the load (then the call is over).
func (s *Sim) runOllama(w http.ResponseWriter, r *http.Request, u *upstreamSim, rec llmapi.Request, model string, k Upstream) (oom, ok bool) {
	numCtx, ka := llmapi.NumCtx(rec.Body), llmapi.KeepAlive(rec.Body["keep_alive"])
	lm, loaded := s.models.Find(model)
	switch {
	case !loaded:
		if size, _ := s.models.Size(); !s.card.fits(size) {
			return true, true
		}
		fallthrough
	case lm.ContextLength != numCtx:
		if err := s.wait(r.Context(), s.sample(k.LoadLatency)); err != nil {
			s.gone(u, w, err)
			return false, false
		}
	case s.card.full():
		s.models.Unload(model)
		return true, true
	}
	s.models.Load(model, numCtx, ka)
	s.card.leakCall()
	return false, true
}

// serveOllamaControl answers a preload or an unload. A preload takes
// LoadLatency when the model is not loaded yet, and fails as the runner
// does when the card has no room for it. These are not model calls: the
// knobs' failures, slots and counters leave them alone (the state counts
// loads and unloads).
func (s *Sim) serveOllamaControl(w http.ResponseWriter, r *http.Request, rec llmapi.Request, model string) {
	if llmapi.KeepAlive(rec.Body["keep_alive"]) != 0 {
		if _, loaded := s.models.Find(model); !loaded {
			if size, _ := s.models.Size(); !s.card.fits(size) {
				ollamaOOM().Write(w)
				return
			}
			s.mu.Lock()
			load := s.ups[NameOllama].cfg.LoadLatency
			s.mu.Unlock()
			if err := s.wait(r.Context(), s.sample(load)); err != nil {
				if err == errStopped {
					llmapi.ResetConn(w)
				}
				return
			}
		}
	}
	s.models.Control(rec, model).Write(w)
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}
