// Package sim is a simulated world for demos and load tests of the
// service: on one HTTP handler it serves everything the service talks to,
// in each upstream's own wire format (internal/llmapi, internal/discordapi):
//
//   - Ollama's native API: /api/chat, /api/generate (preload and unload
//     by keep_alive included), /api/embed, /api/ps, /api/tags,
//     /api/version;
//   - an OpenAI-compatible server: /v1/chat/completions, /v1/models;
//   - Gemini: /v1beta/models/{model}:generateContent;
//   - Anthropic: /v1/messages;
//   - Discord's webhooks: execute, edit and read, versioned paths too;
//   - a control API under /_sim/ (ControlHelp).
//
// Each upstream has its knobs (Scenario, ScenarioHelp): latency, fixed or
// drawn from a seeded distribution; parallel slots with a bounded queue,
// beyond which calls get the server's 503 or, as the owner's GPU did,
// the crashed runner's 500; shares of calls that fail in each way (500,
// 503, 429 with Retry-After, a hang until the client gives up, a reset
// connection, malformed JSON, prose around the JSON); and 429 storms. The
// models' answers are the lexicon's judgement of the headline in the
// prompt, so the same text always gets the same answer.
//
// The Ollama upstream drives a simulated AMD card (an RX 6800) written as
// the amdgpu driver's sysfs files under a root of the caller's choosing,
// which the service's GPU manager reads like the real ones
// (SENTIMENT_GPU_READER=sysfs, SENTIMENT_GPU_SYSFS_ROOT): a loaded model
// adds its size to the used VRAM, each call can leak some, and an unload
// frees the model and, unless the scenario keeps it as ROCm does, the
// leak.
//
// The counters (GET /_sim/state) are what load and chaos runs check from
// outside: the most calls ever in flight per upstream, the failures by
// kind, the answers by status, Discord's posts and edits.
package sim
