package gpu

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
)

// The model server's VRAM belongs to its runner process: this service can
// free it only by asking Ollama to unload the model, and get it back only by
// asking Ollama to load it again. OllamaController is that conversation
// (Ollama API: keep_alive preload and unload, /api/ps).

// Limits of the controller's calls.
const (
	// warmAttempts is how many preloads Warm sends before it gives up. A
	// cold load can fail once while the runner starts (Ollama answers 500
	// when a runner dies during load); a third failure is not transient,
	// and the manager's own backoff takes over from there.
	warmAttempts = 3
	// warmRetryDelay is the wait before the second preload; it doubles
	// before the third.
	warmRetryDelay = time.Second
	// maxControlBody bounds what is read of an answer: /api/ps lists a
	// few models in a few KiB.
	maxControlBody = 1 << 20
)

// OllamaController loads, unloads and lists the local model on an Ollama
// server. Its methods are safe for concurrent use; the manager never
// overlaps them.
type OllamaController struct {
	base      string
	model     string
	keepAlive string
	numCtx    int
	hc        *http.Client
	// retryDelay is the first wait between preloads; tests shorten it.
	retryDelay time.Duration
}

// NewOllamaController returns a controller of model on the Ollama server at
// baseURL (a trailing /api/generate or /api/chat is dropped, as the owner's
// LLM_ENDPOINT_URL may carry one).
//
// keepAlive and numCtx must be the values the router's local tier sends on
// every request (config Local.KeepAlive and Local.NumCtx): num_ctx is a
// runner option, and a preload with another value makes the next real
// request reload the model, which defeats the warm-up. An empty keepAlive
// leaves the server's default; numCtx 0 leaves the server's choice. hc nil
// is http.DefaultClient; every call's deadline comes from its ctx.
func NewOllamaController(baseURL, model, keepAlive string, numCtx int, hc *http.Client) *OllamaController {
	if hc == nil {
		hc = http.DefaultClient
	}
	base := strings.TrimRight(baseURL, "/")
	for _, route := range []string{"/api/generate", "/api/chat"} {
		base = strings.TrimSuffix(base, route)
	}
	return &OllamaController{base: base, model: model, keepAlive: keepAlive, numCtx: numCtx, hc: hc,
		retryDelay: warmRetryDelay}
}

// Model is the model the controller loads and unloads.
func (c *OllamaController) Model() string { return c.model }

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

// OllamaError is a non-2xx answer from the model server, or a 200 whose
// body reports an error.
type OllamaError struct {
	// Op is what was being done ("preloading mistral").
	Op string
	// Status is the HTTP status; 200 for an error reported in the body.
	Status int
	// Message is Ollama's "error" text, or the start of the body.
	Message string
}

func (e *OllamaError) Error() string {
	return fmt.Sprintf("ollama %s: http %d: %s", e.Op, e.Status, e.Message)
}

// retryable says whether another preload may succeed: server errors and a
// full queue may pass; 4xx (no such model, a bad option) will not.
func (e *OllamaError) retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusOK
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
func (c *OllamaController) Warm(ctx context.Context) (time.Duration, error) {
	req := controlRequest{Model: c.model, Stream: false}
	if c.keepAlive != "" {
		req.KeepAlive = c.keepAlive
	}
	if c.numCtx > 0 {
		req.Options = &controlOptions{NumCtx: c.numCtx}
	}
	op := "preloading " + c.model
	delay := c.retryDelay
	var last error
	for attempt := 1; attempt <= warmAttempts; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, fmt.Errorf("ollama %s: %w (after: %w)", op, ctx.Err(), last)
			case <-t.C:
			}
			delay *= 2
		}
		start := time.Now()
		_, err := c.control(ctx, op, req)
		if err == nil {
			return time.Since(start), nil
		}
		last = err
		var oe *OllamaError
		if ctx.Err() != nil || (errors.As(err, &oe) && !oe.retryable()) {
			break
		}
	}
	return 0, fmt.Errorf("%w (%d attempts)", last, warmAttempts)
}

// Unload asks Ollama to unload the model now: the same empty request with
// keep_alive 0, which answers at once with done_reason "unload". Ollama
// then stops the runner; the VRAM it held comes back over the next second
// or so (the driver's counters lag), and on ROCm sometimes not at all
// (ollama#7606, #10597) — the manager checks.
func (c *OllamaController) Unload(ctx context.Context) error {
	_, err := c.control(ctx, "unloading "+c.model, controlRequest{Model: c.model, KeepAlive: 0})
	return err
}

// control sends one load or unload request and checks its answer.
func (c *OllamaController) control(ctx context.Context, op string, body controlRequest) (controlResponse, error) {
	var out controlResponse
	payload, err := json.Marshal(body)
	if err != nil {
		return out, fmt.Errorf("ollama %s: encoding the request: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/generate", bytes.NewReader(payload))
	if err != nil {
		return out, fmt.Errorf("ollama %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	b, err := c.do(req, op)
	if err != nil {
		return out, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("ollama %s: decoding the answer %q: %w", op, snippet(b), err)
	}
	if out.Error != "" {
		return out, &OllamaError{Op: op, Status: http.StatusOK, Message: out.Error}
	}
	if !out.Done {
		return out, &OllamaError{Op: op, Status: http.StatusOK, Message: "answer not done: " + snippet(b)}
	}
	return out, nil
}

// PS lists the models Ollama holds now (GET /api/ps).
func (c *OllamaController) PS(ctx context.Context) ([]LoadedModel, error) {
	const op = "listing loaded models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/ps", nil)
	if err != nil {
		return nil, fmt.Errorf("ollama %s: %w", op, err)
	}
	b, err := c.do(req, op)
	if err != nil {
		return nil, err
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
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("ollama %s: decoding %q: %w", op, snippet(b), err)
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

// Find returns the controller's model among models, matching names as
// Ollama does ("mistral" is "mistral:latest").
func (c *OllamaController) Find(models []LoadedModel) (LoadedModel, bool) {
	want := withTag(c.model)
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

// do sends req and returns the 2xx body; anything else is an error naming
// op.
func (c *OllamaController) do(req *http.Request, op string) ([]byte, error) {
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ollama %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxControlBody))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := snippet(b)
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &OllamaError{Op: op, Status: resp.StatusCode, Message: msg}
	}
	if err != nil {
		return nil, fmt.Errorf("ollama %s: reading the answer: %w", op, err)
	}
	return b, nil
}

// snippet is the start of a body, for error messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
