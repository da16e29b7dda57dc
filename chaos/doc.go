// Package chaos holds the service's chaos test (chaos_test.go and its
// helpers; the package has no code of its own).
//
// It runs the real binaries on loopback only: llmsim playing Ollama,
// Gemini and Anthropic, a real redis-server, and two sentimentd replicas
// sharing quotas through it. gRPC clients send unary Classify calls with
// deadlines and ClassifyBatch streams while llmsim flips between healthy,
// 500 storms, hangs, 429 storms and malformed output, Redis is killed and
// restarted, and one replica gets SIGTERM in the middle of a stream. After
// each round it checks that every request was answered within its deadline
// (a model's answer or a degraded lexicon answer, never an unexplained
// error), that no accepted batch item was lost or answered twice, that the
// GPU never saw more calls than its slots, that no quota was exceeded, that
// breakers opened and closed again, and that the surviving replica's
// goroutines and memory do not grow from round to round; then it prints a
// table.
//
// `make chaos-short` (a dependency of `make test`) runs the short round:
// two rounds of 600 requests each. `make chaos` runs the full one: 10,000
// requests over five rounds. The flags are -chaos.requests,
// -chaos.rounds, -chaos.phase, -chaos.seed (printed at the start; the
// make targets take CHAOS_SEED) and -chaos.concurrency. SENTIMENTD_BIN
// and LLMSIM_BIN name binaries already built (the make targets pass
// bin/'s); without them the test builds both into a temporary directory.
// CHAOS_KEEP=dir keeps the children's logs.
//
// Quotas are checked exactly in minutes clear of Redis outages and
// against a looser bound in minutes that meet one (see checkQuotas): the
// local shares a replica falls back to cannot know what the other
// replica claimed since it last asked Redis.
package chaos
