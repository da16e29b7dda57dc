// Package llmapi is the server side of the four model APIs the router
// calls: Ollama's native API, OpenAI-compatible chat completions, Gemini
// generateContent and Anthropic Messages. It reads their requests (which
// endpoint, which model, the prompt's text) and builds their answers: the
// success envelopes with usage, the error bodies and headers each provider
// sends for each status (Retry-After, Gemini's RetryInfo, Anthropic's 529,
// OpenAI's rate_limit_exceeded, Ollama's crashed runner), and Ollama's
// model state (preload, unload, keep-alive, /api/ps).
//
// It exists so that the tests' fake upstream (internal/upstreamtest) and
// the simulator (cmd/llmsim) speak one implementation of the formats, as
// the providers document them: a fix to an envelope reaches both. Answers are values (Response) rather than writes, so that
// a caller can record, delay, truncate or drop them before they leave.
package llmapi
