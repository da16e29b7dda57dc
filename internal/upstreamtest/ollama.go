package upstreamtest

import "github.com/catalystbot/sentiment/internal/llmapi"

// The Ollama fake keeps the models it has "loaded", as the real server's
// scheduler does (llmapi.OllamaModels), so that the GPU manager's preload,
// unload and /api/ps can be tested against it:
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

// DefaultModelSize is the size the fake reports when a test sets none: the
// Mistral 7B Q4_0 sample of Ollama's API docs, fully on the GPU.
const DefaultModelSize = llmapi.DefaultModelSize

// LoadedModel is a model the fake holds now, as /api/ps reports it.
type LoadedModel = llmapi.LoadedModel

// OnLoad registers fn to run after a model is loaded (by a preload, or by
// a model call that found it unloaded or loaded with another num_ctx). It
// runs on the request's goroutine, outside the fake's lock, before the
// answer is written.
func (f *Fake) OnLoad(fn func(model string)) { f.models.OnLoad(fn) }

// OnUnload registers fn to run after a model is unloaded (keep_alive 0, a
// reload with another num_ctx, or an expired keep-alive). Like OnLoad it
// runs outside the fake's lock.
func (f *Fake) OnUnload(fn func(model string)) { f.models.OnUnload(fn) }

// SetModelSize sets the size and size_vram /api/ps reports for every
// loaded model; sizeVRAM < size is a model partly on the CPU.
func (f *Fake) SetModelSize(size, sizeVRAM uint64) { f.models.SetSize(size, sizeVRAM) }

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
	f.models.Expire()
	return f.models.Loaded()
}

// OllamaModelControl is the real server's answer to a load or unload
// request: the model is loaded (or unloaded with keep_alive 0), OnLoad or
// OnUnload runs, and the answer is a 200 with done_reason "load" or
// "unload". It is the load default; wrap it to delay a load or fail it.
func OllamaModelControl() Behavior {
	return Func(func(c *Call) { c.f.models.Control(c.Request, c.Model).Write(c.W) })
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
		if llmapi.KeepAlive(r.Field("keep_alive")) == 0 {
			out = append(out, "unload")
		} else {
			out = append(out, "load")
		}
	}
	return out
}

// EmbedDims is the length of the fake's embeddings.
const EmbedDims = llmapi.EmbedDims
