// Package ollama speaks to a local Ollama server: the chat call that
// judges an item for the router's local tier, and the control calls the
// GPU manager acts through (preload, unload, /api/ps). One Client serves
// both, over one HTTP client, with the same keep_alive and num_ctx on
// every request: a preload with other runner options would make the next
// chat reload the model.
//
// The model server's VRAM belongs to its runner process: this service can
// free it only by asking Ollama to unload the model, and get it back only
// by asking Ollama to load it again.
//
// Every failure is an *upstream.Error. An error that says the model's
// runner died ("llama runner process has terminated") is marked Crash
// here, the one place that reads Ollama's error text for it.
package ollama

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/catalystbot/sentiment/upstream"
)

// Config is one model on one Ollama server.
type Config struct {
	// BaseURL is the server root, e.g. http://localhost:11434; a trailing
	// /api/generate or /api/chat (the owner's old LLM_ENDPOINT_URL) is
	// dropped.
	BaseURL string
	Model   string
	// KeepAlive is how long Ollama keeps the model loaded after a call
	// ("30m"; a negative duration pins it). Empty leaves the server's
	// default.
	KeepAlive string
	// NumCtx is the context window; 0 leaves the server's default. A
	// runner option: a value different from the loaded instance's makes
	// Ollama reload the model, so it is the same on every request.
	NumCtx int
	// Seed is sent with temperature 0, so that answers repeat.
	Seed int
}

// Limits of the control calls.
const (
	// warmAttempts is how many preloads Warm sends before it gives up. A
	// cold load can fail once while the runner starts (Ollama answers 500
	// when a runner dies during load); a third failure is not transient,
	// and the manager's own backoff takes over from there.
	warmAttempts = 3
	// warmRetryDelay is the wait before the second preload; it doubles
	// before the third.
	warmRetryDelay = time.Second
)

// Client calls one model on one Ollama server. It is safe for concurrent
// use.
type Client struct {
	cfg  Config
	base string
	hc   *http.Client
	// retryDelay is the first wait between preloads; tests shorten it.
	retryDelay time.Duration
}

// New returns the client; hc should come from upstream.NewHTTPClient, and
// every call's deadline comes from its ctx.
func New(cfg Config, hc *http.Client) *Client {
	base := strings.TrimRight(cfg.BaseURL, "/")
	for _, route := range []string{"/api/generate", "/api/chat"} {
		base = strings.TrimSuffix(base, route)
	}
	return &Client{cfg: cfg, base: base, hc: hc, retryDelay: warmRetryDelay}
}

// Model is the model the client asks for, loads and unloads.
func (c *Client) Model() string { return c.cfg.Model }

// Usage is what one chat call cost in tokens.
type Usage struct {
	TokensIn, TokensOut int64
}

// ChatRequest is one judgement asked of the model.
type ChatRequest struct {
	System, User string
	// Format is the JSON Schema the answer must follow (Ollama's
	// structured outputs); nil leaves the answer free.
	Format any
	// NumPredict caps the answer's tokens; 0 leaves the server's limit.
	NumPredict int
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type options struct {
	Temperature float64 `json:"temperature"`
	Seed        int     `json:"seed"`
	NumCtx      int     `json:"num_ctx,omitempty"`
	NumPredict  int     `json:"num_predict,omitempty"`
}

type chatRequest struct {
	Model     string    `json:"model"`
	Messages  []message `json:"messages"`
	Stream    bool      `json:"stream"`
	Format    any       `json:"format"`
	KeepAlive string    `json:"keep_alive,omitempty"`
	Options   options   `json:"options"`
}

// chatResponse is one object of a reply: the whole reply with stream:false,
// or one NDJSON line of a streamed one.
type chatResponse struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int64  `json:"prompt_eval_count"`
	EvalCount       int64  `json:"eval_count"`
	Error           string `json:"error"`
}

const chatOp = "ollama chat"

// Chat asks the model (POST /api/chat, temperature 0 with the seed, the
// configured keep_alive and num_ctx) and returns the text of its answer.
func (c *Client) Chat(ctx context.Context, r ChatRequest) (string, Usage, error) {
	body, err := upstream.Do(ctx, c.hc, upstream.Call{
		URL: c.base + "/api/chat",
		Body: chatRequest{
			Model: c.cfg.Model,
			Messages: []message{
				{Role: "system", Content: r.System},
				{Role: "user", Content: r.User},
			},
			Stream:    false,
			Format:    r.Format,
			KeepAlive: c.cfg.KeepAlive,
			Options: options{
				Temperature: 0,
				Seed:        c.cfg.Seed,
				NumCtx:      c.cfg.NumCtx,
				NumPredict:  r.NumPredict,
			},
		},
		ErrorBody: errorBody,
	})
	if err != nil {
		return "", Usage{}, upstream.WrapOp(chatOp, err)
	}
	text, usage, err := readChat(body)
	return text, usage, upstream.WrapOp(chatOp, err)
}

// readChat reads a reply that is one object (stream:false) or, from a
// server or proxy that streamed anyway, NDJSON whose contents are joined.
// An {"error": ...} object with status 200 is how Ollama reports a failure
// after it has started answering; it is a KindBadResponse carrying
// Ollama's message, retryable like the 500 it stands for.
func readChat(body []byte) (string, Usage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var text strings.Builder
	var usage Usage
	n := 0
	for {
		var r chatResponse
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", usage, &upstream.Error{Kind: upstream.KindBadResponse, Retryable: true,
				Message: "decoding response " + upstream.Snippet(string(body)), Err: err}
		}
		n++
		if r.Error != "" {
			e := upstream.BadResponse("%s", upstream.Clip(r.Error))
			e.Crash = runnerDied(r.Error)
			return "", usage, e
		}
		text.WriteString(r.Message.Content)
		usage.TokensIn += r.PromptEvalCount
		usage.TokensOut += r.EvalCount
	}
	if n == 0 {
		return "", usage, upstream.BadResponse("empty response body")
	}
	return text.String(), usage, nil
}

// errorBody reads {"error": "..."}. Status decides retrying: 500 (runner
// crashed, often a GPU fault) and 503 (queue full) are retryable by the
// shared rule, 400 and 404 are not.
func errorBody(e *upstream.Error, body []byte) {
	var b struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || b.Error == nil {
		return
	}
	// Ollama sends a string; its /v1 layer and proxies in front of it may
	// send an OpenAI-style object.
	var s string
	if json.Unmarshal(b.Error, &s) == nil {
		e.Message = s
	} else {
		var o struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(b.Error, &o) == nil {
			e.Message = o.Message
		}
	}
	e.Crash = runnerDied(e.Message)
}

// runnerDied reports whether Ollama's message says the model's runner
// process died: "llama runner process has terminated: exit status 2"
// (ROCm and CUDA faults, out of memory) or "model runner has unexpectedly
// stopped, this may be due to resource limitations". It is the service's
// one reading of that text; everything downstream sees Error.Crash.
func runnerDied(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "runner process has terminated") || strings.Contains(m, "runner has unexpectedly stopped")
}

// LoadedModel is one model Ollama holds, as GET /api/ps reports it.
type LoadedModel struct {
	// Name is the model with its tag ("mistral:latest").
	Name string
	// Size is the model's whole footprint in bytes; SizeVRAM the part on
	// the GPU. SizeVRAM < Size means layers spilled to the CPU, which is
	// slow, and is what an over-full card looks like from Ollama's side.
	Size, SizeVRAM uint64
	// ExpiresAt is when Ollama will unload it unless a request renews its
	// keep-alive; zero when not reported.
	ExpiresAt time.Time
	// ContextLength is the num_ctx it was loaded with; 0 from Ollama
	// versions that do not report it.
	ContextLength int
}

// controlRequest is a load or unload: /api/generate with no prompt.
type controlRequest struct {
	Model     string          `json:"model"`
	KeepAlive any             `json:"keep_alive,omitempty"`
	Stream    bool            `json:"stream"`
	Options   *controlOptions `json:"options,omitempty"`
}

type controlOptions struct {
	NumCtx int `json:"num_ctx,omitempty"`
}

// controlResponse is the answer to a load or unload.
type controlResponse struct {
	Done       bool   `json:"done"`
	DoneReason string `json:"done_reason"`
	Error      string `json:"error"`
}

// Warm preloads the model: POST /api/generate with no prompt, the
// configured keep_alive and num_ctx. Ollama answers once the model is in
// memory, so the returned duration is the load time of the attempt that
// succeeded (near zero when the model was already loaded with the same
// options). It tries up to three times, waiting 1 s then 2 s between
// attempts, while the failure may pass (a 5xx, a refused or reset
// connection); a 4xx, such as a model that was never pulled, fails at once.
func (c *Client) Warm(ctx context.Context) (time.Duration, error) {
	req := controlRequest{Model: c.cfg.Model, Stream: false}
	if c.cfg.KeepAlive != "" {
		req.KeepAlive = c.cfg.KeepAlive
	}
	if c.cfg.NumCtx > 0 {
		req.Options = &controlOptions{NumCtx: c.cfg.NumCtx}
	}
	op := "ollama preloading " + c.cfg.Model
	delay := c.retryDelay
	var last error
	for attempt := 1; attempt <= warmAttempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, fmt.Errorf("%s: %w (after: %w)", op, ctx.Err(), last)
			case <-t.C:
			}
			delay *= 2
		}
		start := time.Now()
		err := c.control(ctx, op, req)
		if err == nil {
			return time.Since(start), nil
		}
		last = err
		if ctx.Err() != nil || !upstream.AsError(err).Retryable {
			break
		}
	}
	return 0, fmt.Errorf("%w (%d attempts)", last, warmAttempts)
}

// Unload asks Ollama to unload the model now: the same empty request with
// keep_alive 0, which answers at once with done_reason "unload". Ollama
// then stops the runner; the VRAM it held comes back over the next second
// or so (the driver's counters lag), and on ROCm sometimes not at all
// (ollama#7606, #10597): the GPU manager checks.
func (c *Client) Unload(ctx context.Context) error {
	return c.control(ctx, "ollama unloading "+c.cfg.Model, controlRequest{Model: c.cfg.Model, KeepAlive: 0})
}

// control sends one load or unload request and checks its answer.
func (c *Client) control(ctx context.Context, op string, req controlRequest) error {
	body, err := upstream.Do(ctx, c.hc, upstream.Call{URL: c.base + "/api/generate", Body: req, ErrorBody: errorBody})
	if err != nil {
		return upstream.WrapOp(op, err)
	}
	var out controlResponse
	if err := upstream.Decode(body, &out); err != nil {
		return upstream.WrapOp(op, err)
	}
	if out.Error != "" {
		e := upstream.BadResponse("%s", upstream.Clip(out.Error))
		e.Crash = runnerDied(out.Error)
		return upstream.WrapOp(op, e)
	}
	if !out.Done {
		return upstream.WrapOp(op, upstream.BadResponse("answer not done: %s", upstream.Snippet(string(body))))
	}
	return nil
}

// PS lists the models Ollama holds now (GET /api/ps).
func (c *Client) PS(ctx context.Context) ([]LoadedModel, error) {
	const op = "ollama listing loaded models"
	body, err := upstream.Do(ctx, c.hc, upstream.Call{Method: http.MethodGet, URL: c.base + "/api/ps", ErrorBody: errorBody})
	if err != nil {
		return nil, upstream.WrapOp(op, err)
	}
	var ps struct {
		Models []struct {
			Name          string `json:"name"`
			Model         string `json:"model"`
			Size          uint64 `json:"size"`
			SizeVRAM      uint64 `json:"size_vram"`
			ExpiresAt     string `json:"expires_at"`
			ContextLength int    `json:"context_length"`
		} `json:"models"`
	}
	if err := upstream.Decode(body, &ps); err != nil {
		return nil, upstream.WrapOp(op, err)
	}
	out := make([]LoadedModel, 0, len(ps.Models))
	for _, m := range ps.Models {
		lm := LoadedModel{Name: m.Name, Size: m.Size, SizeVRAM: m.SizeVRAM, ContextLength: m.ContextLength}
		if lm.Name == "" {
			lm.Name = m.Model
		}
		if t, err := time.Parse(time.RFC3339Nano, m.ExpiresAt); err == nil {
			lm.ExpiresAt = t
		}
		out = append(out, lm)
	}
	return out, nil
}

// Loaded reports the client's model as Ollama holds it now, if it does.
func (c *Client) Loaded(ctx context.Context) (LoadedModel, bool, error) {
	models, err := c.PS(ctx)
	if err != nil {
		return LoadedModel{}, false, err
	}
	lm, ok := c.Find(models)
	return lm, ok, nil
}

// Find returns the client's model among models, matching names as Ollama
// does ("mistral" is "mistral:latest").
func (c *Client) Find(models []LoadedModel) (LoadedModel, bool) {
	want := withTag(c.cfg.Model)
	for _, m := range models {
		if withTag(m.Name) == want {
			return m, true
		}
	}
	return LoadedModel{}, false
}

// withTag adds the ":latest" a model name without a tag stands for.
func withTag(name string) string {
	if name == "" || strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		return name
	}
	return name + ":latest"
}

// Embed returns model's embeddings of texts (POST /api/embed), in order.
// The cache compares near-duplicates by them when an embedding model is
// configured.
func (c *Client) Embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	const op = "ollama embed"
	req := map[string]any{"model": model, "input": texts}
	if c.cfg.KeepAlive != "" {
		req["keep_alive"] = c.cfg.KeepAlive
	}
	body, err := upstream.Do(ctx, c.hc, upstream.Call{URL: c.base + "/api/embed", Body: req, ErrorBody: errorBody})
	if err != nil {
		return nil, upstream.WrapOp(op, err)
	}
	var r struct {
		Embeddings [][]float32 `json:"embeddings"`
	}
	if err := upstream.Decode(body, &r); err != nil {
		return nil, upstream.WrapOp(op, err)
	}
	if len(r.Embeddings) != len(texts) {
		return nil, upstream.WrapOp(op, upstream.BadResponse("%d embeddings for %d texts", len(r.Embeddings), len(texts)))
	}
	return r.Embeddings, nil
}

// Embedder embeds one text at a time with one model: what the cache asks
// of an embedding model.
type Embedder struct {
	Client *Client
	Model  string
}

// Embed returns the text's embedding.
func (e Embedder) Embed(ctx context.Context, text string) ([]float32, error) {
	v, err := e.Client.Embed(ctx, e.Model, []string{text})
	if err != nil {
		return nil, err
	}
	return v[0], nil
}
