// Package upstreamtest is the one fake language-model upstream of the
// service's tests: an HTTP server that speaks one of the four wire formats
// the router calls (Ollama's native API, OpenAI-compatible chat
// completions, Gemini generateContent, Anthropic Messages) with their real
// success envelopes, error bodies and headers, as each provider documents them.
//
// A test scripts what the next calls do, one Behavior per call (Push) or
// the same for every call (SetDefault), points a client at URL, and then
// reads what the fake received (Requests, Calls, MaxInFlight):
//
//	f := upstreamtest.New(t, upstreamtest.Gemini)
//	f.Push(upstreamtest.GeminiRateLimited("10s", upstreamtest.GeminiPerMinuteQuota))
//	f.Push(upstreamtest.Answer(upstreamtest.BullishJSON))
//
// The server goes down with Close (connections are refused on its URL) and
// comes back on the same URL with Restart. For tests inside a
// testing/synctest bubble, NewMemory makes a fake without a listener, to be
// reached through Transport only: every behaviour waits on the request's
// context or the fake clock, so the bubble's time advances while it waits.
//
// The Ollama fake also keeps the models it has loaded (ollama.go): preload
// and unload requests, GET /api/ps, reloads on another num_ctx and
// keep-alive expiry, with OnLoad and OnUnload hooks for tests that tie a
// fake VRAM counter to them.
//
// The wire formats themselves (request parsing, envelopes, error bodies,
// Ollama's model state) are internal/llmapi's, which the simulator
// cmd/llmsim speaks too; this package adds the script, the records and the
// transports a test needs.
package upstreamtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/catalystbot/sentiment/internal/llmapi"
)

// Format is a wire format.
type Format = llmapi.Format

// The wire formats.
const (
	Ollama    = llmapi.Ollama    // POST /api/chat (and /api/generate)
	OpenAI    = llmapi.OpenAI    // POST /v1/chat/completions
	Gemini    = llmapi.Gemini    // POST /v1beta/models/{model}:generateContent
	Anthropic = llmapi.Anthropic // POST /v1/messages
)

// Request is one request the fake received; Field walks its body.
type Request = llmapi.Request

// Fake is a fake upstream speaking one Format. Its methods are safe for
// concurrent use.
type Fake struct {
	// Format is what the fake speaks.
	Format Format
	// URL is the base URL to give a client (no path): a loopback address
	// for New, a name that resolves nowhere for NewMemory.
	URL string

	t  testing.TB
	mu sync.Mutex
	// queue holds the scripted behaviours, one per call; def answers when
	// it is empty.
	queue    []Behavior
	def      Behavior
	key      string
	requests []Request
	calls    int
	inFlight int
	maxIn    int
	// changed is closed, and replaced, whenever inFlight changes.
	changed chan struct{}
	// down is true between Close and Restart; stop is closed by Close so
	// that waiting behaviours end and the server can shut down.
	down bool
	stop chan struct{}
	srv  *httptest.Server
	addr string

	// Ollama's model state (ollama.go) and the script of load and unload
	// requests.
	models    *llmapi.OllamaModels
	loadQueue []Behavior
	loadDef   Behavior
}

// New starts a fake of format f on a loopback port; it is closed when the
// test ends. Until scripted otherwise, every call gets BullishJSON.
func New(t testing.TB, f Format) *Fake {
	t.Helper()
	fk := newFake(t, f)
	fk.srv = httptest.NewServer(fk)
	fk.addr = fk.srv.Listener.Addr().String()
	fk.URL = fk.srv.URL
	t.Cleanup(fk.Close)
	return fk
}

// NewMemory returns a fake with no listener, served in memory through
// Transport or Client: for tests in a testing/synctest bubble, where a
// real socket would keep the bubble from ever being idle. URL names a host
// that does not resolve, so a client not given Transport fails at once.
func NewMemory(t testing.TB, f Format) *Fake {
	t.Helper()
	fk := newFake(t, f)
	fk.URL = "http://" + f.String() + ".upstreamtest.invalid"
	t.Cleanup(fk.Close)
	return fk
}

func newFake(t testing.TB, f Format) *Fake {
	return &Fake{Format: f, t: t, def: Answer(BullishJSON), stop: make(chan struct{}),
		models: llmapi.NewOllamaModels(), loadDef: OllamaModelControl()}
}

// Push queues behaviours for the next calls, in order; each answers one
// call. When the queue is empty, the default answers.
func (f *Fake) Push(b ...Behavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, b...)
}

// SetDefault sets the behaviour of calls with nothing queued.
func (f *Fake) SetDefault(b Behavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.def = b
}

// RequireKey makes every model call without this API key (in the format's
// header) fail as the real service fails a bad key: OpenAI 401
// invalid_api_key, Gemini 400 API_KEY_INVALID, Anthropic 401
// authentication_error. The error message echoes the key that was sent,
// as a careless proxy might, so that tests can check it is scrubbed.
// Ollama checks no key.
func (f *Fake) RequireKey(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.key = key
}

// Requests returns every request received, model calls or not, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// LastRequest returns the latest request; it fails the test if none came.
func (f *Fake) LastRequest() Request {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		f.t.Fatalf("upstreamtest %s: no request received", f.Format)
		return Request{}
	}
	return f.requests[len(f.requests)-1]
}

// Calls is the number of model calls received (requests to the format's
// model endpoint, including those refused for a bad key).
func (f *Fake) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// InFlight is the number of model calls being answered now.
func (f *Fake) InFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight
}

// AwaitInFlight waits until at least n model calls are being answered at
// once, or ctx ends (its error is returned): tests order themselves on it
// instead of polling.
func (f *Fake) AwaitInFlight(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if f.inFlight >= n {
			f.mu.Unlock()
			return nil
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("upstreamtest %s: %d of %d calls in flight: %w", f.Format, f.InFlight(), n, ctx.Err())
		}
	}
}

// notifyLocked wakes AwaitInFlight; f.mu is held.
func (f *Fake) notifyLocked() {
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// MaxInFlight is the most model calls that were being answered at once.
func (f *Fake) MaxInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxIn
}

// Close takes the fake down: calls in progress end (hanging ones return,
// their connections are closed) and new connections are refused, on the
// listener and through Transport alike. It is idempotent.
func (f *Fake) Close() {
	f.mu.Lock()
	if f.down {
		f.mu.Unlock()
		return
	}
	f.down = true
	close(f.stop)
	srv := f.srv
	f.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Restart brings a closed fake back on the same URL, keeping its script and
// records. Call it from the test's goroutine: it fails the test if the port
// was taken in between.
func (f *Fake) Restart() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down {
		return
	}
	if f.addr != "" {
		l, err := net.Listen("tcp", f.addr)
		if err != nil {
			f.t.Fatalf("upstreamtest %s: restarting on %s: %v", f.Format, f.addr, err)
			return
		}
		srv := httptest.NewUnstartedServer(f)
		srv.Listener.Close()
		srv.Listener = l
		srv.Start()
		f.srv = srv
	}
	f.down = false
	f.stop = make(chan struct{})
}

// Client returns an http.Client that reaches the fake through Transport.
func (f *Fake) Client() *http.Client {
	return &http.Client{Transport: f.Transport()}
}

// Transport serves requests with the fake's handler in memory, with no TCP:
// any URL reaches it. Use it with NewMemory inside a testing/synctest
// bubble. A reset connection is an ECONNRESET error, a closed fake an
// ECONNREFUSED one, as over TCP.
func (f *Fake) Transport() http.RoundTripper {
	return &memTransport{f: f}
}

// ServeHTTP records the request and answers it with the next behaviour.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := llmapi.ReadRequest(r)
	ep, model := llmapi.Identify(rec)
	if ep.Format() != f.Format {
		ep = llmapi.NoEndpoint
	}
	if f.Format == Ollama {
		f.models.Expire()
	}

	f.mu.Lock()
	f.requests = append(f.requests, rec)
	if !ep.ModelCall() {
		f.mu.Unlock()
		switch ep {
		case llmapi.OllamaVersion:
			llmapi.Version().Write(w)
		case llmapi.OllamaPS:
			f.models.PS().Write(w)
		case llmapi.OllamaEmbed:
			llmapi.Embeddings(rec.Body).Write(w)
		default:
			llmapi.Error(f.Format, http.StatusNotFound, fmt.Sprintf("%s %s not found", r.Method, r.URL.Path)).Write(w)
		}
		return
	}
	if f.Format == Ollama && llmapi.IsLoadRequest(rec.Path, rec.Body) {
		// A load or unload is not a model call: it has its own script.
		b := f.loadDef
		if len(f.loadQueue) > 0 {
			b, f.loadQueue = f.loadQueue[0], f.loadQueue[1:]
		}
		stop := f.stop
		f.mu.Unlock()
		b(&Call{Format: f.Format, Model: model, Request: rec, W: w, R: r, stop: stop, f: f})
		return
	}
	f.calls++
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.notifyLocked()
	var b Behavior
	if sent := llmapi.APIKey(f.Format, rec); f.key != "" && sent != f.key {
		b = badKey(sent)
	} else if len(f.queue) > 0 {
		b, f.queue = f.queue[0], f.queue[1:]
	} else {
		b = f.def
	}
	stop := f.stop
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.notifyLocked()
		f.mu.Unlock()
	}()

	if f.Format == Ollama && model != "" {
		// Ollama loads the model a call names, or reloads it for another
		// num_ctx, before it answers.
		f.models.Load(model, llmapi.NumCtx(rec.Body), llmapi.KeepAlive(rec.Body["keep_alive"]))
	}
	b(&Call{Format: f.Format, Model: model, Request: rec, W: w, R: r, stop: stop, f: f})
}

// Call is one model call being answered: what a Behavior works with.
type Call struct {
	Format Format
	// Model is the model the call names (from the path for Gemini).
	Model   string
	Request Request
	W       http.ResponseWriter
	R       *http.Request
	stop    <-chan struct{}
	f       *Fake
}

// Stopped is closed when the fake is closed; a behaviour that waits must
// also watch it (and R.Context().Done()) so that Close does not hang.
func (c *Call) Stopped() <-chan struct{} { return c.stop }
