// Package batcher is the GPU-aware queue in front of the local model tier:
// every call to the local model server (Ollama on the owner's RX 6800) first
// takes a slot from a Queue, and gives it back with the call's Outcome.
//
// Why it exists. The old bot sent 136 headlines to the GPU at once. Ollama
// serves OLLAMA_NUM_PARALLEL requests per loaded model at a time (one KV
// cache each) and holds the rest in its own queue of up to OLLAMA_MAX_QUEUE,
// with no idea of anyone's deadline; under that load the runner crashed
// (most likely out of VRAM), the server answered HTTP 500 "llama runner
// process has terminated" and the PC froze. Here the gateway, not Ollama,
// holds the queue:
//
//   - at most Config.MaxConcurrent calls are in flight (set it to Ollama's
//     parallel slots), so the server never holds a backlog of ours;
//   - at most Config.QueueSize items wait; one more is refused at once
//     (ErrQueueFull), and an item that would not start within the time it
//     can spare is refused at once too (ErrNoTimeToStart), estimated from
//     its place in line and a moving average of recent service times, so
//     the router can send it to a cloud tier or the lexicon while it still
//     has time;
//   - the limit adapts (AIMD, as TCP does with its window): an Overload
//     outcome (500, 503, timeout, crashed runner) halves it, once per round
//     so that one burst of 500s counts as one signal; a run of successes
//     grows it by one, never above MaxConcurrent nor the ceiling;
//   - the GPU manager can lower a ceiling from outside when VRAM runs high,
//     or close the queue to new starts with a ceiling of 0 while it unloads
//     and reloads the model.
//
// Overload is impossible by construction only as far as MaxConcurrent
// matches the server's real capacity: above it, AIMD finds the capacity by
// failing (one halving per burst of 500s) and, like any AIMD, probes above
// it again after each run of successes. Config.SuccessesToGrow sets how
// often it probes.
//
// The GPU manager drains the queue before it unloads the model: a ceiling
// of 0, then a wait on Queue.Idle, a channel closed when no call holds a
// slot. Queue.Close, at shutdown, turns every item away and stops the
// Waves pacing's rest timer.
//
// Waves pacing keeps the old bot's behaviour (LLM_BATCH_SIZE items, then
// LLM_BATCH_DELAY_SEC of rest) for owners who want it, still under the
// limit.
package batcher
