package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/catalystbot/sentiment/internal/llmapi"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// seed seeds the simulators of the tests; every test that draws prints it.
var seed = flag.Uint64("seed", 20260101, "seed of the simulators' random draws")

// world is a simulator behind a loopback server, with the service's own
// clients pointed at it.
type world struct {
	t   *testing.T
	sim *Sim
	url string
	hc  *http.Client
}

// newWorld starts a simulator with the default scenario changed by edit.
// The simulator is closed before the server, so that calls it holds end
// and the server can shut down.
func newWorld(t *testing.T, opts Options, edit func(*Scenario)) *world {
	t.Helper()
	sc := Default()
	sc.Seed = *seed
	if edit != nil {
		edit(&sc)
	}
	s, err := New(sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	hc := upstream.NewHTTPClient(64)
	t.Cleanup(hc.CloseIdleConnections)
	return &world{t: t, sim: s, url: srv.URL, hc: hc}
}

// provider is the router's client of format f, pointed at the world.
func (w *world) provider(f llmapi.Format) router.Provider {
	switch f {
	case llmapi.Ollama:
		return router.NewOllama(w.ollama())
	case llmapi.OpenAI:
		return router.NewOpenAI(router.OpenAIConfig{BaseURL: w.url, Model: "qwen3:8b", Seed: 42}, w.hc)
	case llmapi.Gemini:
		return router.NewGemini(router.GeminiConfig{BaseURL: w.url, Model: "gemini-2.5-flash", APIKey: "sim", Seed: 42}, w.hc)
	case llmapi.Anthropic:
		return router.NewAnthropic(router.AnthropicConfig{BaseURL: w.url, Model: "claude-haiku-4-5", APIKey: "sim"}, w.hc)
	}
	w.t.Fatalf("no client for %v", f)
	return nil
}

// ollama is the service's Ollama client, as the GPU manager and the local
// tier share it.
func (w *world) ollama() *ollama.Client {
	return ollama.New(ollama.Config{BaseURL: w.url, Model: "mistral", KeepAlive: "30m", NumCtx: 2048, Seed: 42}, w.hc)
}

// prompt renders the router's real prompt for a headline.
func prompt(t *testing.T, headline string) router.Prompt {
	t.Helper()
	p, err := router.NewPrompter()
	if err != nil {
		t.Fatal(err)
	}
	pr, err := p.Render(router.Item{Ticker: "ACME", Title: headline})
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// control sends a request to the control API and decodes the answer into
// out (when not nil); it returns the status.
func (w *world) control(method, path, body string, out any) int {
	w.t.Helper()
	req, err := http.NewRequestWithContext(w.t.Context(), method, w.url+path, strings.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// state reads GET /_sim/state, as a script would.
func (w *world) state() State {
	w.t.Helper()
	var st State
	if code := w.control(http.MethodGet, "/_sim/state", "", &st); code != http.StatusOK {
		w.t.Fatalf("GET /_sim/state: %d", code)
	}
	return st
}

// patch changes knobs through the control API.
func (w *world) patch(body string) {
	w.t.Helper()
	var out map[string]any
	if code := w.control(http.MethodPatch, "/_sim/scenario", body, &out); code != http.StatusOK {
		w.t.Fatalf("PATCH %s: %d %v", body, code, out)
	}
}

// await waits, within a bound, until cond holds for the simulator's state.
func (w *world) await(what string, cond func(State) bool) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	if err := w.sim.awaitState(ctx, cond); err != nil {
		w.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// wantHTTPError checks that err is the upstream error of an HTTP status.
func wantHTTPError(t *testing.T, err error, status int) *upstream.Error {
	t.Helper()
	var e *upstream.Error
	if !errors.As(err, &e) || e.Kind != upstream.KindHTTP || e.Status != status {
		t.Fatalf("error %v, want HTTP %d", err, status)
	}
	return e
}

var headlines = []struct {
	text  string
	label lexicon.Label
}{
	{"Acme raises full-year guidance after record quarter", lexicon.LabelBullish},
	{"Acme warns of going concern doubt and misses estimates", lexicon.LabelBearish},
	{"Acme to present at investor conference", lexicon.LabelNeutral},
}

// TestRealClientsGetJudgements points the service's own four clients at
// the simulator: each gets the lexicon's judgement of the headline back,
// with token usage, and the same text gets the same answer from every
// format.
func TestRealClientsGetJudgements(t *testing.T) {
	w := newWorld(t, Options{}, nil)
	for _, h := range headlines {
		var first *router.Answer
		for _, f := range llmapi.Formats {
			t.Run(f.String()+"/"+h.label.String(), func(t *testing.T) {
				a, u, err := w.provider(f).Judge(t.Context(), prompt(t, h.text))
				if err != nil {
					t.Fatalf("Judge: %v", err)
				}
				if a.Label != h.label || a.Rationale == "" || u.TokensIn <= 0 || u.TokensOut <= 0 {
					t.Errorf("answer %+v usage %+v, want label %s with a rationale and usage", a, u, h.label)
				}
				if first == nil {
					first = &a
				} else if a != *first {
					t.Errorf("answer %+v differs from %+v for the same text", a, *first)
				}
			})
		}
	}
	st := w.state()
	for _, name := range ModelNames {
		if u := st.Upstreams[name]; u.Requests != 3 || u.OK != 3 || u.Status["200"] != 3 {
			t.Errorf("%s: %+v, want 3 requests answered 200", name, u)
		}
	}
}

// TestSameTextSameAnswer: answers depend on the text only, not on the
// seed, the format's envelope or how often it is asked.
func TestSameTextSameAnswer(t *testing.T) {
	other := *seed + 1
	t.Logf("seeds %d and %d", *seed, other)
	a := newWorld(t, Options{}, nil)
	b := newWorld(t, Options{}, func(sc *Scenario) { sc.Seed = other })
	p := prompt(t, "Acme files for Chapter 11 bankruptcy")
	var answers []router.Answer
	for _, w := range []*world{a, b, a} {
		ans, _, err := w.provider(llmapi.Gemini).Judge(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		answers = append(answers, ans)
	}
	if answers[0] != answers[1] || answers[1] != answers[2] || answers[0].Label != lexicon.LabelBearish {
		t.Errorf("answers %+v, want one bearish answer three times", answers)
	}
}

// TestSlotsAndQueue fills the slots and the queue with held calls, then
// checks the next call's answer: Ollama's 503 "server busy", or with
// crash_when_full the crashed runner's 500, which the service's client
// reads as a crash. The held calls end when their client gives up.
func TestSlotsAndQueue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		crash  bool
		status int
		kind   string
	}{
		{"busy", false, http.StatusServiceUnavailable, KindQueueFull},
		{"crash", true, http.StatusInternalServerError, KindCrash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, Options{}, func(sc *Scenario) {
				sc.Ollama.Slots, sc.Ollama.Queue, sc.Ollama.CrashWhenFull = 2, 1, tc.crash
				sc.Ollama.Latency = Fixed(time.Hour) // held until canceled
			})
			p := w.provider(llmapi.Ollama)
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			errs := make(chan error, 3)
			for range 3 {
				wg.Go(func() {
					_, _, err := p.Judge(ctx, prompt(t, "Acme raises guidance"))
					errs <- err
				})
			}
			w.await("2 in slots, 1 queued", func(st State) bool {
				u := st.Upstreams[NameOllama]
				return u.InFlight == 2 && u.Queued == 1
			})
			// Bounded: a call wrongly queued would otherwise wait an hour.
			full, stop := context.WithTimeout(t.Context(), 10*time.Second)
			defer stop()
			_, _, err := p.Judge(full, prompt(t, "Acme raises guidance"))
			e := wantHTTPError(t, err, tc.status)
			if e.Crash != tc.crash || !e.Retryable {
				t.Errorf("full queue: %v crash=%v retryable=%v, want crash=%v and retryable", e, e.Crash, e.Retryable, tc.crash)
			}
			cancel()
			wg.Wait()
			close(errs)
			for err := range errs {
				if upstream.AsError(err).Kind != upstream.KindCanceled {
					t.Errorf("held call ended with %v, want canceled", err)
				}
			}
			w.await("the held calls gone", func(st State) bool {
				u := st.Upstreams[NameOllama]
				return u.InFlight == 0 && u.Queued == 0 && u.Canceled == 3
			})
			u := w.state().Upstreams[NameOllama]
			if u.MaxInFlight != 2 || u.MaxQueued != 1 || u.Errors[tc.kind] != 1 || u.Status[strconv.Itoa(tc.status)] != 1 || u.Requests != 4 {
				t.Errorf("state %+v", u)
			}
		})
	}
}

// TestSlotsUnderLoad sends many calls at once at a server of few slots and
// a deep queue, with drawn latencies: every call is answered, and no more
// than the slots were ever served at once.
func TestSlotsUnderLoad(t *testing.T) {
	t.Logf("seed %d", *seed)
	const calls, slots = 24, 3
	w := newWorld(t, Options{}, func(sc *Scenario) {
		sc.Ollama.Slots, sc.Ollama.Queue = slots, calls
		sc.Ollama.Latency = mustLatency(t, "1ms-5ms")
	})
	p := w.provider(llmapi.Ollama)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Go(func() {
			_, _, err := p.Judge(t.Context(), prompt(t, "Acme raises guidance"))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call: %v", err)
		}
	}
	u := w.state().Upstreams[NameOllama]
	if u.OK != calls || u.MaxInFlight > slots || u.MaxInFlight < 1 || u.InFlight != 0 {
		t.Errorf("state %+v: want %d answered, at most %d in flight", u, calls, slots)
	}
	t.Logf("most in flight %d, most queued %d", u.MaxInFlight, u.MaxQueued)
}

// mustLatency parses a latency a test writes.
func mustLatency(t *testing.T, s string) Latency {
	t.Helper()
	l, err := ParseLatency(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRateLimits: a storm answers every call 429 asking to come back when
// it ends, and a drawn 429 asks for retry_after, each in the format's own
// terms (Retry-After, retry-after-ms, Gemini's RetryInfo), as the
// service's clients read them. Replacing the scenario ends the storm.
func TestRateLimits(t *testing.T) {
	t.Logf("seed %d", *seed)
	for _, f := range llmapi.Formats {
		t.Run(f.String(), func(t *testing.T) {
			w := newWorld(t, Options{}, nil)
			p, pr := w.provider(f), prompt(t, "Acme raises guidance")
			w.patch(`{"` + f.String() + `":{"storm":"30s"}}`)
			_, _, err := p.Judge(t.Context(), pr)
			e := wantHTTPError(t, err, http.StatusTooManyRequests)
			if !e.Retryable || e.RetryAfter < 29*time.Second || e.RetryAfter > 30*time.Second {
				t.Errorf("storm: %v retryable=%v after %v, want retryable after about 30s", e, e.Retryable, e.RetryAfter)
			}
			st := w.state()
			if u := st.Upstreams[f.String()]; u.Errors[KindStorm] != 1 || u.StormLeft <= 0 {
				t.Errorf("storm state %+v", u)
			}
			if st.Scenario.Ollama.Storm != 0 {
				t.Errorf("the scenario read back starts a storm again: %+v", st.Scenario)
			}

			// Replace: the storm ends, every call now gets a drawn 429.
			if code := w.control(http.MethodPut, "/_sim/scenario", `{"`+f.String()+`":{"errors":{"429":1},"retry_after":"7s"}}`, nil); code != http.StatusOK {
				t.Fatalf("PUT: %d", code)
			}
			_, _, err = p.Judge(t.Context(), pr)
			if e := wantHTTPError(t, err, http.StatusTooManyRequests); e.RetryAfter != 7*time.Second {
				t.Errorf("drawn 429 asks for %v, want 7s", e.RetryAfter)
			}
			w.patch(`{"` + f.String() + `":{"errors":{"429":0}}}`)
			if _, _, err := p.Judge(t.Context(), pr); err != nil {
				t.Errorf("after the 429s: %v", err)
			}
			if u := w.state().Upstreams[f.String()]; u.Errors[Kind429] != 1 || u.Status["429"] != 2 || u.OK != 1 {
				t.Errorf("state %+v", u)
			}
		})
	}
}

// TestFailureKinds makes every call of a format fail in one way and checks
// what the service's client makes of it.
func TestFailureKinds(t *testing.T) {
	t.Logf("seed %d", *seed)
	for _, tc := range []struct {
		format llmapi.Format
		kind   string
		check  func(t *testing.T, a router.Answer, err error)
	}{
		{llmapi.Ollama, Kind500, func(t *testing.T, _ router.Answer, err error) {
			if e := wantHTTPError(t, err, 500); !e.Crash || !strings.Contains(e.Message, llmapi.OllamaRunnerTerminated) {
				t.Errorf("Ollama 500: %v, want the runner's crash", e)
			}
		}},
		{llmapi.Anthropic, Kind503, func(t *testing.T, _ router.Answer, err error) {
			if e := wantHTTPError(t, err, 529); !e.Retryable || !strings.Contains(e.Message, "overloaded_error") {
				t.Errorf("Anthropic overloaded: %v", e)
			}
		}},
		{llmapi.Gemini, Kind503, func(t *testing.T, _ router.Answer, err error) {
			if e := wantHTTPError(t, err, 503); !strings.Contains(e.Message, "UNAVAILABLE") {
				t.Errorf("Gemini overloaded: %v", e)
			}
		}},
		{llmapi.OpenAI, Kind500, func(t *testing.T, _ router.Answer, err error) { wantHTTPError(t, err, 500) }},
		{llmapi.OpenAI, KindReset, func(t *testing.T, _ router.Answer, err error) {
			if e := upstream.AsError(err); e.Kind != upstream.KindConnection || !e.Retryable {
				t.Errorf("reset: %v, want a retryable connection error", err)
			}
		}},
		{llmapi.Ollama, KindMalformed, func(t *testing.T, _ router.Answer, err error) {
			if e := upstream.AsError(err); e.Kind != upstream.KindBadResponse {
				t.Errorf("malformed: %v, want a bad response", err)
			}
		}},
		{llmapi.Anthropic, KindMalformed, func(t *testing.T, _ router.Answer, err error) {
			if e := upstream.AsError(err); e.Kind != upstream.KindBadResponse {
				t.Errorf("malformed: %v, want a bad response", err)
			}
		}},
		{llmapi.OpenAI, KindProse, func(t *testing.T, a router.Answer, err error) {
			if err != nil || a.Label != lexicon.LabelBullish {
				t.Errorf("prose: %+v %v, want the answer dug out of the prose", a, err)
			}
		}},
		{llmapi.Anthropic, KindProse, func(t *testing.T, a router.Answer, err error) {
			if err != nil || a.Label != lexicon.LabelBullish {
				t.Errorf("prose: %+v %v, want the answer dug out of the prose", a, err)
			}
		}},
	} {
		t.Run(tc.format.String()+"/"+tc.kind, func(t *testing.T) {
			w := newWorld(t, Options{}, nil)
			w.patch(`{"` + tc.format.String() + `":{"errors":{"` + tc.kind + `":1}}}`)
			a, _, err := w.provider(tc.format).Judge(t.Context(), prompt(t, "Acme raises full-year guidance"))
			tc.check(t, a, err)
			if n := w.state().Upstreams[tc.format.String()].Errors[tc.kind]; n != 1 {
				t.Errorf("errors[%s] = %d, want 1", tc.kind, n)
			}
		})
	}
}

// TestProseBody checks the wire: a prose answer is a 200 whose text is
// the judgement inside chatty sentences.
func TestProseBody(t *testing.T) {
	w := newWorld(t, Options{}, func(sc *Scenario) { sc.Ollama.Errors.Prose = 1 })
	body := `{"model":"mistral","stream":false,"messages":[{"role":"user","content":"Headline: Acme raises guidance"}]}`
	resp, err := w.hc.Post(w.url+"/api/chat", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Message struct{ Content string } `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 ||
		!strings.HasPrefix(out.Message.Content, "Sure! Here is") || !strings.Contains(out.Message.Content, `"label":"bullish"`) {
		t.Errorf("prose answer %d %q %v", resp.StatusCode, out.Message.Content, err)
	}
}

// TestHangHonoursCancel: a hung call holds its slot until the client gives
// up, and then lets it go.
func TestHangHonoursCancel(t *testing.T) {
	w := newWorld(t, Options{}, func(sc *Scenario) { sc.Gemini.Errors.Hang, sc.Gemini.Slots = 1, 1 })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := w.provider(llmapi.Gemini).Judge(ctx, prompt(t, "Acme raises guidance"))
		done <- err
	}()
	w.await("the hang", func(st State) bool {
		u := st.Upstreams[NameGemini]
		return u.Errors[KindHang] == 1 && u.InFlight == 1
	})
	cancel()
	if err := <-done; upstream.AsError(err).Kind != upstream.KindCanceled {
		t.Errorf("hung call ended with %v, want canceled", err)
	}
	w.await("the slot back", func(st State) bool {
		u := st.Upstreams[NameGemini]
		return u.InFlight == 0 && u.Canceled == 1
	})
}

// TestCloseEndsHeldCalls: closing the simulator drops the calls it holds,
// so a server in front of it can stop.
func TestCloseEndsHeldCalls(t *testing.T) {
	w := newWorld(t, Options{}, func(sc *Scenario) { sc.Anthropic.Errors.Hang = 1 })
	done := make(chan error, 1)
	go func() {
		_, _, err := w.provider(llmapi.Anthropic).Judge(t.Context(), prompt(t, "Acme raises guidance"))
		done <- err
	}()
	w.await("the hang", func(st State) bool { return st.Upstreams[NameAnthropic].InFlight == 1 })
	w.sim.Close()
	if err := <-done; upstream.AsError(err).Kind != upstream.KindConnection {
		t.Errorf("held call after Close: %v, want a dropped connection", err)
	}
}

// TestControlAPI: the scenario reads back as it was put, bad knobs are
// refused naming the knob, a patch switches one upstream's behaviour, and
// reset zeroes the counters.
func TestControlAPI(t *testing.T) {
	w := newWorld(t, Options{}, func(sc *Scenario) {
		sc.OpenAI.Latency = mustLatency(t, "10ms~2ms")
		sc.GPU.LeakMiBPerCall = 64
	})
	var sc Scenario
	w.control(http.MethodGet, "/_sim/scenario", "", &sc)
	raw, _ := json.Marshal(sc)
	var back Scenario
	if code := w.control(http.MethodPut, "/_sim/scenario", string(raw), &back); code != http.StatusOK || back != sc {
		t.Errorf("PUT of the scenario read: %d\n got %+v\nwant %+v", code, back, sc)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"ollama":{"errors":{"500":1.5}}}`, "ollama.errors.500"},
		{`{"gemini":{"errors":{"500":0.6,"503":0.6}}}`, "gemini.errors add up"},
		{`{"ollama":{"erors":{}}}`, "unknown field"},
		{`{"anthropic":{"latency":"5ms-1ms"}}`, "min 5ms is above max 1ms"},
		{`{"gemini":{"bucket_limit":3}}`, "Discord's only"},
		{`{"gpu":{"total_mib":0}}`, "gpu.total_mib"},
	} {
		var out struct{ Error string }
		if code := w.control(http.MethodPatch, "/_sim/scenario", tc.body, &out); code != http.StatusBadRequest || !strings.Contains(out.Error, tc.want) {
			t.Errorf("PATCH %s: %d %q, want 400 naming %q", tc.body, code, out.Error, tc.want)
		}
	}
	if w.sim.Scenario() != sc {
		t.Errorf("a refused patch changed the scenario")
	}

	p := w.provider(llmapi.OpenAI)
	w.patch(`{"openai":{"errors":{"500":1}}}`)
	_, _, err := p.Judge(t.Context(), prompt(t, "Acme raises guidance"))
	wantHTTPError(t, err, 500)
	if got := w.sim.Scenario(); got.GPU.LeakMiBPerCall != 64 || got.OpenAI.Latency != sc.OpenAI.Latency {
		t.Errorf("a patch of one knob changed others: %+v", got)
	}
	w.control(http.MethodPut, "/_sim/scenario", `{}`, nil)
	if _, _, err := p.Judge(t.Context(), prompt(t, "Acme raises guidance")); err != nil {
		t.Errorf("after PUT {}: %v", err)
	}
	if got := w.sim.Scenario(); got.GPU.LeakMiBPerCall != 0 || got.Seed != sc.Seed {
		t.Errorf("PUT {} kept knobs or lost the seed: %+v", got)
	}

	if code := w.control(http.MethodPost, "/_sim/reset", "", nil); code != http.StatusNoContent {
		t.Errorf("reset: %d", code)
	}
	if u := w.state().Upstreams[NameOpenAI]; u.Requests != 0 || u.Errors[Kind500] != 0 || len(u.Status) != 0 || u.MaxInFlight != 0 {
		t.Errorf("after reset: %+v", u)
	}
	var out struct{ Error string }
	if code := w.control(http.MethodGet, "/_sim/nothing", "", &out); code != http.StatusNotFound || out.Error == "" {
		t.Errorf("unknown control: %d %q", code, out.Error)
	}
}

// TestOllamaHousekeeping: the endpoints the service's Ollama client calls
// besides chat answer as Ollama does.
func TestOllamaHousekeeping(t *testing.T) {
	w := newWorld(t, Options{}, nil)
	c := w.ollama()
	if _, err := c.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	lm, ok, err := c.Loaded(t.Context())
	if err != nil || !ok || lm.ContextLength != 2048 || lm.SizeVRAM != 4899*MiB || time.Until(lm.ExpiresAt) < 29*time.Minute {
		t.Errorf("after Warm: %+v %v %v", lm, ok, err)
	}
	v, err := c.Embed(t.Context(), "nomic-embed-text", []string{"Acme raises guidance", "Acme raises guidance"})
	if err != nil || len(v) != 2 || len(v[0]) != llmapi.EmbedDims || v[0][0] != v[1][0] {
		t.Errorf("embed: %d vectors, %v", len(v), err)
	}
	for path, want := range map[string]string{"/api/version": llmapi.OllamaServerVersion, "/api/tags": "mistral:latest", "/v1/models": "mistral:latest"} {
		resp, err := w.hc.Get(w.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte(want)) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
	if err := c.Unload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := w.state(); len(st.Ollama.Loaded) != 0 || st.Ollama.Loads != 1 || st.Ollama.Unloads != 1 {
		t.Errorf("after Unload: %+v", st.Ollama)
	}
}
