package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxScenario bounds a scenario body: a full one is a few kilobytes.
const maxScenario = 1 << 20

// serveControl is the control API under /_sim/ (see ControlHelp).
func (s *Sim) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /_sim/state":
		writeJSON(w, http.StatusOK, s.State())
	case "GET /_sim/scenario":
		writeJSON(w, http.StatusOK, s.Scenario())
	case "PUT /_sim/scenario", "POST /_sim/scenario", "PATCH /_sim/scenario":
		data, err := io.ReadAll(io.LimitReader(r.Body, maxScenario+1))
		if err != nil || len(data) > maxScenario {
			writeError(w, http.StatusBadRequest, fmt.Errorf("reading the scenario: over %d bytes, or cut off", maxScenario))
			return
		}
		var sc Scenario
		if r.Method == http.MethodPatch {
			sc, err = s.Patch(data)
		} else if sc, err = ParseScenario(data, Default()); err == nil {
			sc, err = s.Replace(sc)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, sc)
	case "POST /_sim/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case "GET /_sim/discord":
		writeJSON(w, http.StatusOK, s.discord.state())
	case "POST /_sim/ollama/restart":
		s.RestartOllama()
		writeJSON(w, http.StatusOK, s.State().GPU)
	default:
		writeError(w, http.StatusNotFound, fmt.Errorf("%s: no such control; see llmsim -help", route))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, err error) {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// ControlHelp documents the control API, for llmsim -help.
const ControlHelp = `Control API (on the same listener, JSON):

  GET   /_sim/state           knobs in force, counters per upstream, loaded models, the card
  GET   /_sim/scenario        the knobs in force (same schema as the scenario file)
  PUT   /_sim/scenario        replace every knob (left out: the defaults); POST does the same.
                              Running storms stop unless the body starts one.
  PATCH /_sim/scenario        change only the knobs given; storms running go on
  POST  /_sim/reset           counters to zero, Discord's records forgotten (knobs, models,
                              messages and VRAM stay)
  GET   /_sim/discord         {"posts":[...],"edits":[...],"messages":[...]}: each record has
                              seq, at, webhook_id, message_id, status, fault, content, embeds
  POST  /_sim/ollama/restart  unload every model and free all the model server's VRAM, leak
                              included (a restart of the server)

State, per upstream (.upstreams.ollama, .openai, .gemini, .anthropic, .discord):
  requests, ok, in_flight, max_in_flight (never above slots), queued, max_queued,
  canceled, errors{500,503,429,hang,reset,malformed,prose,storm,queue_full,crash,oom,
  auth,bucket}, status{"200":n,...}, storm_left; discord also posts, edits.
  .ollama: loaded[{name,context_length,expires_at,size_bytes}], loads, unloads.
  .gpu: sysfs, total_bytes, used_bytes, leaked_bytes, used_mib, used_percent, busy_percent.

Examples:
  curl -s localhost:11500/_sim/state | jq '.upstreams.ollama | {max_in_flight, crash: .errors.crash}'
  curl -s -X PATCH localhost:11500/_sim/scenario -d '{"gemini":{"storm":"30s"}}'
  curl -s -X PATCH localhost:11500/_sim/scenario -d '{"ollama":{"errors":{"500":0.2}}}'
  curl -s localhost:11500/_sim/discord | jq '.edits | length'
`

// ScenarioHelp documents the scenario schema, for llmsim -help.
const ScenarioHelp = `Scenario (--scenario FILE, PUT/PATCH /_sim/scenario), JSON; every field optional:

  {
    "seed": 42,                       random draws; 0 picks one (reported in the state)
    "ollama": {                       also "openai", "gemini", "anthropic", "discord"
      "latency": "200ms",             "200ms" fixed, "100ms-300ms" uniform, "200ms~50ms" normal
                                      (mean~stddev); or {"min","max"} / {"mean","stddev"}
      "load_latency": "2s",           ollama only: a model load (preload or cold call)
      "slots": 1,                     calls served at once (0: no limit); ollama default 1
      "queue": 512,                   calls that may wait for a slot; beyond: 503 (Ollama's
                                      "server busy"; Anthropic 529)...
      "crash_when_full": false,       ...or 500 ("llama runner process has terminated")
      "errors": {"500": 0, "503": 0, "429": 0, "hang": 0, "reset": 0,
                 "malformed": 0, "prose": 0},   shares of calls, at most 1 in all;
                                      discord takes no malformed or prose
      "retry_after": "1s",            the wait a drawn 429 asks for
      "storm": "30s",                 every call 429 for this long, from now
      "api_key": "",                  openai/gemini/anthropic: calls without it fail
      "bucket_limit": 5,              discord only: requests per webhook per bucket_reset
      "bucket_reset": "2s"
    },
    "gpu": {
      "total_mib": 16368,             the card (an RX 6800)
      "base_mib": 1024,               used by everything else
      "model_mib": 4899,              a loaded model
      "leak_mib_per_call": 0,         left behind by each Ollama call
      "free_on_unload": true          false: an unload keeps the leak (as on ROCm)
    }
  }

Answers are the judgement of the prompt's Headline (and Summary) by the
service's lexicon, the same for the same text, with token counts. A call that
does not fit in VRAM, or runs on a full card, gets Ollama's 500 "llama runner
process has terminated: error: out of memory".
`
