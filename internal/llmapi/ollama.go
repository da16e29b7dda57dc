package llmapi

import (
	"hash/fnv"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Ollama keeps the models it has loaded, as the real server's scheduler
// does, so that a GPU manager's preload, unload and /api/ps can be tried
// against it:
//
//   - POST /api/generate with no prompt, or /api/chat with "messages":[]
//     (an explicit empty list), is a load request (IsLoadRequest): it loads
//     the model with the request's options.num_ctx and keep_alive and
//     answers done_reason "load"; with keep_alive 0 it unloads and answers
//     done_reason "unload" (OllamaModels.Control).
//   - A model call loads its model first when it is not loaded, or reloads
//     it when its num_ctx differs from the loaded one's, as Ollama's
//     needsReload does; its keep_alive renews the expiry (Load).
//   - A model whose keep-alive has passed is unloaded when Expire is
//     called: the state runs no timers of its own.
//   - GET /api/ps lists the loaded models with size, size_vram,
//     expires_at and context_length (PS).

// Model figures when none are set: the Mistral 7B Q4_0 sample of Ollama's
// API docs, fully on the GPU, and the server's defaults.
const (
	DefaultModelSize = 5137025024
	// DefaultNumCtx is the context Ollama loads with when a request names
	// none (OLLAMA_CONTEXT_LENGTH unset, a card under 23 GiB).
	DefaultNumCtx = 4096
	// DefaultKeepAlive is Ollama's keep-alive when a request sends none.
	DefaultKeepAlive = 5 * time.Minute
	// OllamaServerVersion is what GET /api/version reports.
	OllamaServerVersion = "0.12.0"
)

// forever is the keep-alive of a negative keep_alive: loaded for good.
const forever = time.Duration(math.MaxInt64)

// LoadedModel is a model the server holds now, as /api/ps reports it.
type LoadedModel struct {
	Name          string
	ContextLength int
	ExpiresAt     time.Time
}

// OllamaModels is an Ollama server's set of loaded models. It is safe for
// concurrent use.
type OllamaModels struct {
	mu                   sync.Mutex
	models               map[string]*LoadedModel
	size, sizeVRAM       uint64
	onLoad, onUnload     func(model string)
	everLoaded           map[string]bool
	loadCount, unloadCnt int
}

// NewOllamaModels returns a server with nothing loaded, whose models
// measure DefaultModelSize, all on the GPU.
func NewOllamaModels() *OllamaModels {
	return &OllamaModels{models: make(map[string]*LoadedModel), everLoaded: make(map[string]bool),
		size: DefaultModelSize, sizeVRAM: DefaultModelSize}
}

// SetSize sets the size and size_vram /api/ps reports for every loaded
// model; sizeVRAM < size is a model partly on the CPU.
func (m *OllamaModels) SetSize(size, sizeVRAM uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.size, m.sizeVRAM = size, sizeVRAM
}

// OnLoad registers fn to run after a model is loaded (by a preload, or by
// a model call that found it unloaded or loaded with another num_ctx).
// It runs on the caller's goroutine, outside the state's lock.
func (m *OllamaModels) OnLoad(fn func(model string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onLoad = fn
}

// OnUnload registers fn to run after a model is unloaded (keep_alive 0, a
// reload with another num_ctx, an expired keep-alive, UnloadAll). Like
// OnLoad it runs outside the lock.
func (m *OllamaModels) OnUnload(fn func(model string)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onUnload = fn
}

// Find returns model as loaded now, if it is.
func (m *OllamaModels) Find(model string) (LoadedModel, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	lm, ok := m.models[CanonicalModel(model)]
	if !ok {
		return LoadedModel{}, false
	}
	return *lm, true
}

// Load makes model loaded with numCtx and a keep-alive of ka from now,
// unloading it first when it is loaded with another context, and runs the
// hooks for what changed. It reports whether the model was (re)loaded,
// rather than found loaded.
func (m *OllamaModels) Load(model string, numCtx int, ka time.Duration) bool {
	name := CanonicalModel(model)
	m.mu.Lock()
	expires := time.Now().Add(ka)
	if ka == forever {
		expires = time.Now().AddDate(292, 0, 0)
	}
	lm, ok := m.models[name]
	reloaded := ok && lm.ContextLength != numCtx
	if ok && !reloaded {
		lm.ExpiresAt = expires
		m.mu.Unlock()
		return false
	}
	m.models[name] = &LoadedModel{Name: name, ContextLength: numCtx, ExpiresAt: expires}
	m.everLoaded[name] = true
	m.loadCount++
	if reloaded {
		m.unloadCnt++
	}
	onLoad, onUnload := m.onLoad, m.onUnload
	m.mu.Unlock()
	if reloaded && onUnload != nil {
		onUnload(name)
	}
	if onLoad != nil {
		onLoad(name)
	}
	return true
}

// Unload drops model, running OnUnload when it was loaded, and reports
// whether it was.
func (m *OllamaModels) Unload(model string) bool {
	name := CanonicalModel(model)
	m.mu.Lock()
	_, ok := m.models[name]
	delete(m.models, name)
	if ok {
		m.unloadCnt++
	}
	onUnload := m.onUnload
	m.mu.Unlock()
	if ok && onUnload != nil {
		onUnload(name)
	}
	return ok
}

// UnloadAll drops every model, as a server restart does, and returns
// their names.
func (m *OllamaModels) UnloadAll() []string {
	return m.drop(func(*LoadedModel) bool { return true })
}

// Expire unloads the models whose keep-alive has passed.
func (m *OllamaModels) Expire() {
	now := time.Now()
	m.drop(func(lm *LoadedModel) bool { return !now.Before(lm.ExpiresAt) })
}

// drop unloads the models gone says are gone, in name order, and runs
// OnUnload for each.
func (m *OllamaModels) drop(gone func(*LoadedModel) bool) []string {
	m.mu.Lock()
	var names []string
	for name, lm := range m.models {
		if gone(lm) {
			names = append(names, name)
			delete(m.models, name)
		}
	}
	m.unloadCnt += len(names)
	onUnload := m.onUnload
	m.mu.Unlock()
	slices.Sort(names)
	if onUnload != nil {
		for _, name := range names {
			onUnload(name)
		}
	}
	return names
}

// Loaded returns the models held now, sorted by name.
func (m *OllamaModels) Loaded() []LoadedModel {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]LoadedModel, 0, len(m.models))
	for _, lm := range m.models {
		out = append(out, *lm)
	}
	slices.SortFunc(out, func(a, b LoadedModel) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Known returns every model loaded at some time since the start, sorted:
// what the server has pulled, as far as anyone can tell.
func (m *OllamaModels) Known() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.everLoaded))
	for name := range m.everLoaded {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Counts returns how many loads and unloads have happened (a reload is
// one of each).
func (m *OllamaModels) Counts() (loads, unloads int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadCount, m.unloadCnt
}

// ResetCounts sets the load and unload counts back to zero.
func (m *OllamaModels) ResetCounts() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loadCount, m.unloadCnt = 0, 0
}

// Size returns the size and size_vram reported for a loaded model.
func (m *OllamaModels) Size() (size, sizeVRAM uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.size, m.sizeVRAM
}

// Control answers a load or unload request (see IsLoadRequest) for model
// as Ollama does: the model is loaded with the request's num_ctx and
// keep_alive, or unloaded with keep_alive 0, and the answer is a 200 with
// done_reason "load" or "unload" (and an empty assistant message on
// /api/chat).
func (m *OllamaModels) Control(req Request, model string) Response {
	ka := KeepAlive(req.Body["keep_alive"])
	reason := "load"
	if ka == 0 {
		reason = "unload"
		m.Unload(model)
	} else {
		m.Load(model, NumCtx(req.Body), ka)
	}
	body := map[string]any{
		"model":       model,
		"created_at":  time.Now().UTC().Format(time.RFC3339Nano),
		"done":        true,
		"done_reason": reason,
	}
	if req.Path == "/api/chat" {
		body["message"] = map[string]any{"role": "assistant", "content": ""}
	} else {
		body["response"] = ""
	}
	return JSON(http.StatusOK, body)
}

// PS is the answer to GET /api/ps.
func (m *OllamaModels) PS() Response {
	size, vram := m.Size()
	loaded := m.Loaded()
	models := make([]any, 0, len(loaded))
	for _, lm := range loaded {
		models = append(models, map[string]any{
			"name":           lm.Name,
			"model":          lm.Name,
			"size":           size,
			"digest":         modelDigest,
			"details":        modelDetails(),
			"expires_at":     lm.ExpiresAt.Format(time.RFC3339Nano),
			"size_vram":      vram,
			"context_length": lm.ContextLength,
		})
	}
	return JSON(http.StatusOK, map[string]any{"models": models})
}

// modelDigest is the digest every model reports: Mistral 7B's in the docs.
const modelDigest = "2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8"

func modelDetails() map[string]any {
	return map[string]any{
		"parent_model": "", "format": "gguf", "family": "llama", "families": []string{"llama"},
		"parameter_size": "7.2B", "quantization_level": "Q4_0",
	}
}

// Tags is the answer to GET /api/tags listing names as the local models,
// each of size bytes.
func Tags(names []string, size uint64) Response {
	models := make([]any, 0, len(names))
	for _, name := range names {
		models = append(models, map[string]any{
			"name": name, "model": name, "modified_at": "2024-06-04T14:38:31.83753-07:00",
			"size": size, "digest": modelDigest, "details": modelDetails(),
		})
	}
	return JSON(http.StatusOK, map[string]any{"models": models})
}

// Version is the answer to GET /api/version.
func Version() Response {
	return JSON(http.StatusOK, map[string]any{"version": OllamaServerVersion})
}

// ModelList is an OpenAI-compatible server's answer to GET /v1/models.
func ModelList(names []string) Response {
	data := make([]any, 0, len(names))
	for _, name := range names {
		data = append(data, map[string]any{"id": name, "object": "model", "created": 1717545511, "owned_by": "library"})
	}
	return JSON(http.StatusOK, map[string]any{"object": "list", "data": data})
}

// CanonicalModel adds the ":latest" tag a name without one stands for.
func CanonicalModel(name string) string {
	if name == "" || strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") {
		return name
	}
	return name + ":latest"
}

// IsLoadRequest says whether a request to /api/generate or /api/chat only
// loads or unloads its model: /api/generate without a prompt, /api/chat
// with an explicitly empty message list. A chat with no "messages" key at
// all is a model call.
func IsLoadRequest(path string, body map[string]any) bool {
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

// KeepAlive reads a keep_alive as Ollama does: a number is seconds, a
// string a Go duration; missing or unparsable is the 5m default; a
// negative value is forever (returned as the longest duration).
func KeepAlive(v any) time.Duration {
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
			return DefaultKeepAlive
		}
		d = p
	default:
		return DefaultKeepAlive
	}
	if d < 0 {
		return forever
	}
	return d
}

// NumCtx is a request's options.num_ctx, or the server's default.
func NumCtx(body map[string]any) int {
	opts, _ := body["options"].(map[string]any)
	if n, ok := opts["num_ctx"].(float64); ok && n > 0 {
		return int(n)
	}
	return DefaultNumCtx
}

// EmbedDims is the length of the embeddings Embeddings returns.
const EmbedDims = 64

// Embeddings answers POST /api/embed as Ollama does, {"model", "input": a
// string or a list} to {"model", "embeddings": [[...]]}, with vectors that
// are a pure function of the text: each word, lower-cased and stripped of
// punctuation, adds one to a dimension picked by its hash, and the vector
// is normalised. Texts that share their words point the same way, as a
// real embedding model's do, and two runs agree.
func Embeddings(body map[string]any) Response {
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
	return JSON(http.StatusOK, map[string]any{"model": body["model"], "embeddings": out})
}
