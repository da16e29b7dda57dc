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
package upstreamtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Format is a wire format.
type Format int

// The wire formats.
const (
	Ollama    Format = iota + 1 // POST /api/chat (and /api/generate)
	OpenAI                      // POST /v1/chat/completions
	Gemini                      // POST /v1beta/models/{model}:generateContent
	Anthropic                   // POST /v1/messages
)

func (f Format) String() string {
	switch f {
	case Ollama:
		return "ollama"
	case OpenAI:
		return "openai"
	case Gemini:
		return "gemini"
	case Anthropic:
		return "anthropic"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Request is one request the fake received.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	// Raw is the body as sent; Body is it decoded, nil when not a JSON
	// object.
	Raw  []byte
	Body map[string]any
}

// Field walks Body along a dot path, with numbers indexing arrays:
// "generationConfig.temperature", "messages.0.role". It returns nil where
// the path leads nowhere.
func (r Request) Field(path string) any {
	var v any = r.Body
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

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

	// Ollama's model state (ollama.go): the loaded models by canonical
	// name, the script of load and unload requests, the hooks.
	models               map[string]*loadedModel
	loadQueue            []Behavior
	loadDef              Behavior
	onLoad, onUnload     func(model string)
	modelSize, modelVRAM uint64
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
		models: make(map[string]*loadedModel), loadDef: OllamaModelControl(),
		modelSize: DefaultModelSize, modelVRAM: DefaultModelSize}
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

var geminiPath = regexp.MustCompile(`^/v1beta/models/([^/:]+):generateContent$`)

// modelCall says whether r is a call to the format's model endpoint, and
// returns the model it names in its path (Gemini) or body.
func (f *Fake) modelCall(r *http.Request, body map[string]any) (model string, ok bool) {
	model, _ = body["model"].(string)
	if r.Method != http.MethodPost {
		return "", false
	}
	switch f.Format {
	case Ollama:
		return model, r.URL.Path == "/api/chat" || r.URL.Path == "/api/generate"
	case OpenAI:
		return model, r.URL.Path == "/v1/chat/completions"
	case Gemini:
		if m := geminiPath.FindStringSubmatch(r.URL.Path); m != nil {
			return m[1], true
		}
	case Anthropic:
		return model, r.URL.Path == "/v1/messages"
	}
	return "", false
}

// sentKey is the API key r carries in the format's header.
func (f *Fake) sentKey(r *http.Request) string {
	switch f.Format {
	case OpenAI:
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	case Gemini:
		if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
			return k
		}
		return r.URL.Query().Get("key")
	case Anthropic:
		return r.Header.Get("X-Api-Key")
	}
	return ""
}

// ServeHTTP records the request and answers it with the next behaviour.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	rec := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Raw:      raw,
	}
	_ = json.Unmarshal(raw, &rec.Body)
	model, ok := f.modelCall(r, rec.Body)
	if f.Format == Ollama {
		f.expireModels()
	}

	f.mu.Lock()
	f.requests = append(f.requests, rec)
	if !ok {
		f.mu.Unlock()
		if f.Format == Ollama && r.Method == http.MethodGet && r.URL.Path == "/api/version" {
			writeJSON(w, http.StatusOK, map[string]any{"version": "0.12.0"})
			return
		}
		if f.Format == Ollama && r.Method == http.MethodGet && r.URL.Path == "/api/ps" {
			f.servePS(w)
			return
		}
		if f.Format == Ollama && r.Method == http.MethodPost && r.URL.Path == "/api/embed" {
			serveEmbed(w, rec.Body)
			return
		}
		writeJSON(w, http.StatusNotFound, errorBody(f.Format, http.StatusNotFound,
			fmt.Sprintf("%s %s not found", r.Method, r.URL.Path)))
		return
	}
	if f.Format == Ollama && isLoadRequest(r.URL.Path, rec.Body) {
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
	if f.key != "" && f.sentKey(r) != f.key {
		b = badKey(f.sentKey(r))
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
		f.load(model, numCtx(rec.Body), keepAlive(rec.Body["keep_alive"]))
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("upstreamtest: encoding a body: %v", err))
	}
	writeRaw(w, status, "application/json", b)
}

func writeRaw(w http.ResponseWriter, status int, contentType string, b []byte) {
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = io.Copy(w, bytes.NewReader(b))
}
