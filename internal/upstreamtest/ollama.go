package upstreamtest

import (
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The Ollama fake keeps the models it has "loaded", as the real server's
// scheduler does, so that the GPU manager's preload, unload and /api/ps
// can be tested against it (Ollama API: keep_alive preload and unload, /api/ps):
//
//   - POST /api/generate with no prompt, or /api/chat with "messages":[]
//     (an explicit empty list), is a load request: it loads the model with
//     the request's options.num_ctx and keep_alive and answers
//     done_reason "load"; with keep_alive 0 it unloads and answers
//     done_reason "unload". These control requests are recorded in
//     Requests but are not model calls: Calls, InFlight and the Push
//     script do not see them. PushLoad and SetLoadDefault script them.
//   - A model call loads its model first when it is not loaded, or
//     reloads it when its num_ctx differs from the loaded one's, as
//     Ollama's needsReload does; its keep_alive renews the expiry.
//   - A model whose keep_alive has passed is unloaded the next time any
//     request arrives (the fake runs no timers of its own).
//   - GET /api/ps lists the loaded models with size, size_vram,
//     expires_at and context_length.
//
// OnLoad and OnUnload let a test follow those transitions, e.g. to move a
// fake sysfs VRAM counter the way the real runner moves the real one.

// Model sizes the fake reports when a test sets none: the Mistral 7B Q4_0
// sample of Ollama's API docs, fully on the GPU.
const (
	DefaultModelSize = 5137025024
	// defaultNumCtx is the context Ollama loads with when a request names
	// none (OLLAMA_CONTEXT_LENGTH unset, a card under 23 GiB).
	defaultNumCtx = 4096
	// defaultKeepAlive is Ollama's keep-alive when a request sends none.
	defaultKeepAlive = 5 * time.Minute
)

// loadedModel is one model the fake holds.
type loadedModel struct {
	name    string // canonical, with a tag
	numCtx  int
	expires time.Time
}

// LoadedModel is a model the fake holds now, as /api/ps reports it.
type LoadedModel struct {
	Name          string
	ContextLength int
	ExpiresAt     time.Time
}

// canonicalModel adds the ":latest" tag a name without one stands for.
func canonicalModel(name string) string {
	if name == "" || strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		return name
	}
	return name + ":latest"
}

// OnLoad registers fn to run after a model is loaded (by a preload, or by
// a model call that found it unloaded or loaded with another num_ctx). It
// runs on the request's goroutine, outside the fake's lock, before the
// answer is written.
func (f *Fake) OnLoad(fn func(model string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onLoad = fn
}

// OnUnload registers fn to run after a model is unloaded (keep_alive 0, a
// reload with another num_ctx, or an expired keep-alive). Like OnLoad it
// runs outside the fake's lock.
func (f *Fake) OnUnload(fn func(model string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onUnload = fn
}

// SetModelSize sets the size and size_vram /api/ps reports for every
// loaded model; sizeVRAM < size is a model partly on the CPU.
func (f *Fake) SetModelSize(size, sizeVRAM uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.modelSize, f.modelVRAM = size, sizeVRAM
}

// PushLoad queues behaviours for the next load and unload requests, in
// order (Error(500, ...) for a load that fails, Delay(d, OllamaModelControl())
// for a slow one); when the queue is empty the load default answers.
func (f *Fake) PushLoad(b ...Behavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loadQueue = append(f.loadQueue, b...)
}

// SetLoadDefault sets the behaviour of load and unload requests with
// nothing queued; it starts as OllamaModelControl().
func (f *Fake) SetLoadDefault(b Behavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loadDef = b
}

// Loaded returns the models the fake holds now, sorted by name.
func (f *Fake) Loaded() []LoadedModel {
	f.expireModels()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]LoadedModel, 0, len(f.models))
	for _, m := range f.models {
		out = append(out, LoadedModel{Name: m.name, ContextLength: m.numCtx, ExpiresAt: m.expires})
	}
	slices.SortFunc(out, func(a, b LoadedModel) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// OllamaModelControl is the real server's answer to a load or unload
// request: the model is loaded (or unloaded with keep_alive 0), OnLoad or
// OnUnload runs, and the answer is a 200 with done_reason "load" or
// "unload". It is the load default; wrap it to delay a load or fail it.
func OllamaModelControl() Behavior {
	return Func(func(c *Call) {
		body := c.Request.Body
		ka := keepAlive(body["keep_alive"])
		reason := "load"
		if ka == 0 {
			reason = "unload"
			c.f.unload(c.Model)
		} else {
			c.f.load(c.Model, numCtx(body), ka)
		}
		m := map[string]any{
			"model":       c.Model,
			"created_at":  time.Now().UTC().Format(time.RFC3339Nano),
			"done":        true,
			"done_reason": reason,
		}
		if c.Request.Path == "/api/chat" {
			m["message"] = map[string]any{"role": "assistant", "content": ""}
		} else {
			m["response"] = ""
		}
		writeJSON(c.W, http.StatusOK, m)
	})
}

// isLoadRequest says whether an Ollama model-endpoint request only loads or
// unloads: /api/generate without a prompt, /api/chat with an explicitly
// empty message list. A chat with no "messages" key at all stays a model
// call, as the fake has always answered it.
func isLoadRequest(path string, body map[string]any) bool {
	switch path {
	case "/api/generate":
		p, _ := body["prompt"].(string)
		return p == ""
	case "/api/chat":
		msgs, ok := body["messages"].([]any)
		return ok && len(msgs) == 0
	}
	return false
}

// keepAlive reads a keep_alive as Ollama does: a number is seconds, a
// string a Go duration; missing or unparsable is the 5m default; negative
// is forever (returned as the longest duration).
func keepAlive(v any) time.Duration {
	var d time.Duration
	switch x := v.(type) {
	case float64:
		d = time.Duration(x * float64(time.Second))
	case string:
		p, err := time.ParseDuration(x)
		if err != nil {
			if n, err := strconv.ParseFloat(x, 64); err == nil && n == 0 {
				return 0
			}
			return defaultKeepAlive
		}
		d = p
	default:
		return defaultKeepAlive
	}
	if d < 0 {
		return time.Duration(math.MaxInt64)
	}
	return d
}

// numCtx is a request's options.num_ctx, or the server's default.
func numCtx(body map[string]any) int {
	opts, _ := body["options"].(map[string]any)
	if n, ok := opts["num_ctx"].(float64); ok && n > 0 {
		return int(n)
	}
	return defaultNumCtx
}

// load makes model loaded with ctx and a keep-alive of ka from now,
// unloading it first when it is loaded with another context, and runs the
// hooks for what changed.
func (f *Fake) load(model string, ctx int, ka time.Duration) {
	name := canonicalModel(model)
	f.mu.Lock()
	expires := time.Now().Add(ka)
	if ka == time.Duration(math.MaxInt64) {
		expires = time.Now().AddDate(292, 0, 0)
	}
	m, ok := f.models[name]
	reloaded := ok && m.numCtx != ctx
	if ok && !reloaded {
		m.expires = expires
		f.mu.Unlock()
		return
	}
	f.models[name] = &loadedModel{name: name, numCtx: ctx, expires: expires}
	onLoad, onUnload := f.onLoad, f.onUnload
	f.mu.Unlock()
	if reloaded && onUnload != nil {
		onUnload(name)
	}
	if onLoad != nil {
		onLoad(name)
	}
}

// unload drops model, running OnUnload when it was loaded.
func (f *Fake) unload(model string) {
	name := canonicalModel(model)
	f.mu.Lock()
	_, ok := f.models[name]
	delete(f.models, name)
	onUnload := f.onUnload
	f.mu.Unlock()
	if ok && onUnload != nil {
		onUnload(name)
	}
}

// expireModels unloads the models whose keep-alive has passed.
func (f *Fake) expireModels() {
	now := time.Now()
	f.mu.Lock()
	var gone []string
	for name, m := range f.models {
		if !now.Before(m.expires) {
			gone = append(gone, name)
			delete(f.models, name)
		}
	}
	onUnload := f.onUnload
	f.mu.Unlock()
	slices.Sort(gone)
	if onUnload != nil {
		for _, name := range gone {
			onUnload(name)
		}
	}
}

// servePS answers GET /api/ps.
func (f *Fake) servePS(w http.ResponseWriter) {
	f.mu.Lock()
	names := make([]string, 0, len(f.models))
	for name := range f.models {
		names = append(names, name)
	}
	slices.Sort(names)
	models := make([]any, 0, len(names))
	for _, name := range names {
		m := f.models[name]
		models = append(models, map[string]any{
			"name":   m.name,
			"model":  m.name,
			"size":   f.modelSize,
			"digest": "2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8",
			"details": map[string]any{
				"parent_model": "", "format": "gguf", "family": "llama", "families": []string{"llama"},
				"parameter_size": "7.2B", "quantization_level": "Q4_0",
			},
			"expires_at":     m.expires.Format(time.RFC3339Nano),
			"size_vram":      f.modelVRAM,
			"context_length": m.numCtx,
		})
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"models": models})
}

// ControlRequests lists the model-control requests received, in order:
// "load" for a preload (/api/generate without a prompt), "unload" for one
// with keep_alive 0.
func (f *Fake) ControlRequests() []string {
	var out []string
	for _, r := range f.Requests() {
		if r.Path != "/api/generate" || r.Field("prompt") != nil {
			continue
		}
		if ka, ok := r.Field("keep_alive").(float64); ok && ka == 0 {
			out = append(out, "unload")
		} else {
			out = append(out, "load")
		}
	}
	return out
}

// EmbedDims is the length of the fake's embeddings.
const EmbedDims = 64

// serveEmbed answers POST /api/embed as Ollama does, {"model", "input":
// a string or a list} to {"model", "embeddings": [[...]]}, with vectors
// that are a pure function of the text: each word, lower-cased and
// stripped of punctuation, adds one to a dimension picked by its hash,
// and the vector is normalised. Texts that share their words point the
// same way, as a real embedding model's do, and two runs agree.
func serveEmbed(w http.ResponseWriter, body map[string]any) {
	var inputs []string
	switch in := body["input"].(type) {
	case string:
		inputs = []string{in}
	case []any:
		for _, x := range in {
			s, _ := x.(string)
			inputs = append(inputs, s)
		}
	}
	out := make([][]float64, len(inputs))
	for i, text := range inputs {
		v := make([]float64, EmbedDims)
		for _, word := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			h := fnv.New32a()
			h.Write([]byte(word))
			v[h.Sum32()%EmbedDims]++
		}
		var norm float64
		for _, x := range v {
			norm += x * x
		}
		if norm > 0 {
			for j := range v {
				v[j] /= math.Sqrt(norm)
			}
		}
		out[i] = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"model": body["model"], "embeddings": out})
}
