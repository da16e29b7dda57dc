// Package config is the service's one Config: every setting with its
// default, its environment name, its flag and its allowed values.
//
// main builds a Config once with Load and passes it down; nothing else reads
// the environment. Precedence is flag, then environment, then default. A bad
// value stops start-up with one line that names the setting, the value and
// what is allowed. The environment names the bot's owner already uses (LLM_*,
// GEMINI_API_KEY, ...) keep working; new settings carry a SENTIMENT_ prefix.
package config

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/catalystbot/sentiment/secret"
)

// redacted is how a secret's value appears.
const redacted = secret.Redacted

// redactedShown is how a secret's value appears in a setting error.
const redactedShown = `"` + redacted + `"`

// Config holds every setting of the service.
type Config struct {
	// GRPCAddr is where the gRPC API listens. Port 0 picks a free port; the
	// address taken is printed as "LISTENING host:port" on stdout.
	GRPCAddr    string
	MetricsAddr string
	// AuthTokens, when not empty, are the bearer tokens a caller must
	// present; health checks stay open.
	AuthTokens []secret.Secret
	TLSCert    string
	TLSKey     string
	// ShutdownGrace bounds how long in-flight calls and streams are given
	// to finish after SIGINT/SIGTERM.
	ShutdownGrace time.Duration
	// BatchConcurrency is how many items of one ClassifyBatch stream are
	// judged at once; the stream reads no further item until one finishes,
	// so a fast sender is held by gRPC flow control.
	BatchConcurrency int
	LogLevel         string
	LogFormat        string

	Local     LocalConfig
	Gemini    CloudConfig
	Anthropic CloudConfig

	// DefaultDeadline bounds a call that arrives without a deadline.
	DefaultDeadline time.Duration
	// CloudTimeout caps one attempt at a cloud tier.
	CloudTimeout time.Duration
	// MinTierTime is the least time left before the deadline for a tier,
	// or one more attempt, to be tried.
	MinTierTime time.Duration
	// TierReserve is kept back for each later model tier when an attempt's
	// deadline is cut, so a hung local server leaves the cloud a chance.
	// A short deadline shrinks it in proportion (see router.Config).
	TierReserve time.Duration
	// AnswerMargin is the part of every deadline the request path keeps
	// for its own answer: upstream attempts end this much before the
	// caller's deadline, so that even a degraded answer arrives in time.
	// A short deadline keeps at most a fifth of itself.
	AnswerMargin time.Duration
	// MaxRetries is the attempts a tier gets for a high-priority item
	// (others get at most two); RetryDelay is the base of the backoff and
	// MaxBackoff caps one wait.
	MaxRetries int
	RetryDelay time.Duration
	MaxBackoff time.Duration
	Breaker    BreakerConfig
	// Seed is sent to providers that take one, so answers repeat.
	Seed int
	// Prices are list prices per model in USD per million tokens.
	Prices map[string]Price

	// MinInterval is the least time between two requests to one cloud
	// provider.
	MinInterval time.Duration
	// LocalQuota is the local tier's request quota (0: no limit on a
	// window); its concurrency is Local.MaxConcurrent.
	LocalQuota Quota
	// GPUQueue bounds the items waiting for a GPU slot; more spill to the
	// next tier at once.
	GPUQueue int
	// GPUPacing is "adaptive" (AIMD concurrency, the default) or "waves"
	// (the old bot's pacing: BatchSize items, then BatchDelay).
	GPUPacing string
	// Prefilter is "adaptive" (an item under LLM_MIN_PRESCALE_SCORE still
	// goes to the local model while the GPU has room; the default) or
	// "fixed" (the lexicon answers it, always).
	Prefilter string
	// RedisLocalShare is the fraction of each quota a replica allows
	// itself while Redis is unreachable.
	RedisLocalShare float64
	// RedisPrefix prefixes the quota keys in Redis.
	RedisPrefix string
	BatchSize   int
	BatchDelay  time.Duration
	// MinPrescore is the prefilter threshold: items whose |prescore| is
	// below it are answered by the lexicon alone.
	MinPrescore float64

	GPUCleanupInterval time.Duration
	GPUSysfsRoot       string
	GPUReader          string
	// GPU is the VRAM policy of the GPU manager.
	GPU GPUPolicy

	RedisURL secret.Secret
	// Cache turns the answer cache on; CacheSimilarity is the least
	// similarity of a near-duplicate hit, CacheTTL how long an answer
	// lives (0 turns the cache off too), CachePerTicker, CacheMaxEntries
	// and CacheMaxMB bound it.
	Cache           bool
	CacheSimilarity float64
	CacheTTL        time.Duration
	CachePerTicker  int
	CacheMaxEntries int
	CacheMaxMB      int
	// CacheRedisPrefix prefixes the cache's keys in Redis.
	CacheRedisPrefix string
	// CacheEmbedModel, when set, is an embedding model on the local Ollama
	// server that near-duplicates are measured by instead of word
	// shingles.
	CacheEmbedModel  string
	CostAlertDaily   float64
	CostAlertMonthly float64
	// CostZone is the time zone the cost's day and month are counted in.
	CostZone *time.Location
	// BudgetStop stops calls to paid tiers for the rest of a day or month
	// whose cost threshold was crossed.
	BudgetStop   bool
	UsageLogPath string
	// DiscordWebhooks maps a channel name (what callers put in
	// alert.channel) to its webhook URL.
	DiscordWebhooks map[string]secret.Secret
	// AlertChannel is the channel of an alert that names none; empty
	// requires one.
	AlertChannel string
	// AlertTimeout is how long a posted alert waits for the model before
	// it is edited to say the analysis timed out.
	AlertTimeout time.Duration
	// AlertDedupeTTL is how long an item alerts at most once per channel.
	AlertDedupeTTL time.Duration
}

// LocalConfig is the local model server on the owner's GPU.
type LocalConfig struct {
	Enabled bool
	// API is the wire format: "ollama" (native /api/chat) or "openai"
	// (/v1/chat/completions: vLLM, llama.cpp server, LM Studio).
	API           string
	Endpoint      string
	Model         string
	Timeout       time.Duration
	MaxConcurrent int
	// MaxLength is the longest text, in characters, sent to the local
	// model; longer items go to the cloud tiers.
	MaxLength int
	// KeepAlive is Ollama's keep_alive on every request: how long the model
	// stays loaded after it ("30m"; "-1m" forever; "0" unloads).
	KeepAlive string
	// NumCtx is the context window asked of Ollama; requests and warm-up
	// must agree or Ollama reloads the model.
	NumCtx int
}

// BreakerConfig sets each tier's circuit breaker.
type BreakerConfig struct {
	Failures          int
	Cooldown          time.Duration
	HalfOpenSuccesses int
}

// Price is a model's list price in USD per million tokens.
type Price struct {
	InputPerM  float64
	OutputPerM float64
}

// GPUPolicy is how the GPU manager watches VRAM and acts through the
// model server.
type GPUPolicy struct {
	// PollInterval is how often VRAM is read.
	PollInterval time.Duration
	// HighWater and Critical are VRAM use in percent of total: above high
	// water the GPU queue's concurrency is cut; at critical the gate
	// closes and the model is unloaded and warmed again.
	HighWater, Critical float64
	// MaxFailures is the number of local failures in a row that close the
	// gate and trigger a cleanup.
	MaxFailures int
	// RestartCmd, when set, is run (by /bin/sh -c) when an unload does not
	// free VRAM: the owner's way to restart the model server.
	RestartCmd string
	// DrainTimeout bounds the wait for calls in flight on the GPU before a
	// cleanup goes ahead.
	DrainTimeout time.Duration
	// Warmup preloads the model at start.
	Warmup bool
	// PCIBusID, when set, is the card whose VRAM counts (the one Ollama
	// runs on); empty: the fullest discrete card.
	PCIBusID string
}

// Quota is a provider's request limits per minute, hour and day; 0 means
// no limit on that window.
type Quota struct {
	RPM, RPH, RPD int
}

// CloudConfig is one cloud provider. The tier is enabled when APIKey is set.
type CloudConfig struct {
	APIKey  secret.Secret
	Model   string
	BaseURL string
	Quota
}

// Default returns the embedded defaults: in-memory state, the lexicon tier
// and a local Ollama tier on localhost.
func Default() Config {
	return Config{
		GRPCAddr:         ":50051",
		MetricsAddr:      ":9090",
		ShutdownGrace:    10 * time.Second,
		BatchConcurrency: 16,
		LogLevel:         "info",
		LogFormat:        "text",
		Local: LocalConfig{
			Enabled:       true,
			API:           "ollama",
			Endpoint:      "http://localhost:11434",
			Model:         "mistral",
			Timeout:       15 * time.Second,
			MaxConcurrent: 5,
			MaxLength:     1000,
			KeepAlive:     "30m",
			NumCtx:        2048,
		},
		Gemini: CloudConfig{
			Model:   "gemini-2.5-flash",
			BaseURL: "https://generativelanguage.googleapis.com",
			Quota:   Quota{RPM: 10, RPH: 600, RPD: 1500},
		},
		Anthropic: CloudConfig{
			// Haiku 4.5 accepts a forced tool choice and temperature 0;
			// the 5.5 generation rejects both.
			Model:   "claude-haiku-4-5",
			BaseURL: "https://api.anthropic.com",
			Quota:   Quota{RPM: 50},
		},
		DefaultDeadline:    30 * time.Second,
		CloudTimeout:       20 * time.Second,
		MinTierTime:        250 * time.Millisecond,
		TierReserve:        2 * time.Second,
		AnswerMargin:       100 * time.Millisecond,
		MaxRetries:         3,
		RetryDelay:         2 * time.Second,
		MaxBackoff:         30 * time.Second,
		Breaker:            BreakerConfig{Failures: 5, Cooldown: 30 * time.Second, HalfOpenSuccesses: 2},
		Seed:               42,
		Prices:             defaultPrices(),
		MinInterval:        3 * time.Second,
		GPUQueue:           64,
		GPUPacing:          "adaptive",
		Prefilter:          "adaptive",
		RedisLocalShare:    0.5,
		RedisPrefix:        "catalyst-sentiment:quota",
		BatchSize:          5,
		BatchDelay:         2 * time.Second,
		MinPrescore:        0.20,
		GPUCleanupInterval: 300 * time.Second,
		GPUSysfsRoot:       "/sys",
		GPUReader:          "auto",
		GPU: GPUPolicy{
			PollInterval: 5 * time.Second,
			HighWater:    85,
			Critical:     95,
			MaxFailures:  3,
			DrainTimeout: 30 * time.Second,
			Warmup:       true,
		},
		Cache:            true,
		CacheSimilarity:  0.95,
		CacheTTL:         86400 * time.Second,
		CachePerTicker:   100,
		CacheMaxEntries:  100_000,
		CacheMaxMB:       64,
		CacheRedisPrefix: "catalyst-sentiment:cache",
		CostAlertDaily:   5.00,
		CostAlertMonthly: 50.00,
		CostZone:         time.UTC,
		AlertTimeout:     10 * time.Second,
		AlertDedupeTTL:   24 * time.Hour,
	}
}

// defaultPrices are list prices (USD per million tokens) of the models the
// defaults name and of their neighbours, as published in late 2026. Local
// models cost nothing. SENTIMENT_PRICES adds to or overrides them.
func defaultPrices() map[string]Price {
	return map[string]Price{
		"gemini-2.5-flash":      {0.30, 2.50},
		"gemini-2.5-flash-lite": {0.10, 0.40},
		"claude-haiku-4-5":      {1.00, 5.00},
		"claude-haiku-5-5":      {0.10, 0.50},
		"claude-sonnet-5":       {2.00, 10.00},
		"claude-sonnet-5-5":     {2.00, 10.00},
	}
}

// setting ties one Config field to its environment name and flag.
type setting struct {
	env   string
	flag  string
	usage string
	value flag.Value
}

const day = 24 * time.Hour

// settings lists every setting of c. The flag.Value of each writes into c.
func (c *Config) settings() []setting {
	return []setting{
		{"SENTIMENT_GRPC_ADDR", "grpc-addr", "gRPC listen address (host:port; port 0 picks one)", stringValue{p: &c.GRPCAddr}},
		{"SENTIMENT_METRICS_ADDR", "metrics-addr", "metrics listen address (host:port)", stringValue{p: &c.MetricsAddr}},
		{"SENTIMENT_AUTH_TOKENS", "auth-tokens", "comma-separated bearer tokens of at least 16 characters; empty: no auth", tokensValue{&c.AuthTokens}},
		{"SENTIMENT_TLS_CERT", "tls-cert", "TLS certificate file (PEM); needs -tls-key", stringValue{p: &c.TLSCert}},
		{"SENTIMENT_TLS_KEY", "tls-key", "TLS private key file (PEM); needs -tls-cert", stringValue{p: &c.TLSKey}},
		{"SENTIMENT_SHUTDOWN_GRACE", "shutdown-grace", "seconds given to in-flight calls at shutdown", secondsValue{&c.ShutdownGrace, 0, 10 * time.Minute}},
		{"SENTIMENT_BATCH_CONCURRENCY", "batch-concurrency", "items of one ClassifyBatch stream judged at once", intValue{&c.BatchConcurrency, 1, 1024}},
		{"SENTIMENT_LOG_LEVEL", "log-level", "log level", stringValue{&c.LogLevel, []string{"debug", "info", "warn", "error"}}},
		{"SENTIMENT_LOG_FORMAT", "log-format", "log format", stringValue{&c.LogFormat, []string{"text", "json"}}},

		{"LLM_LOCAL_ENABLED", "local-enabled", "use the local model tier (1/0)", boolValue{&c.Local.Enabled}},
		{"SENTIMENT_LOCAL_API", "local-api", "local model server wire format", stringValue{&c.Local.API, []string{"ollama", "openai"}}},
		{"LLM_ENDPOINT_URL", "local-endpoint", "local model server base URL (a trailing /api/generate is accepted)", endpointValue{&c.Local.Endpoint}},
		{"LLM_MODEL_NAME", "local-model", "local model name", stringValue{p: &c.Local.Model}},
		{"LLM_TIMEOUT_SECS", "local-timeout", "seconds allowed for one local model call", secondsValue{&c.Local.Timeout, 100 * time.Millisecond, 10 * time.Minute}},
		{"LLM_MAX_CONCURRENT", "local-max-concurrent", "local model calls in flight at most (match the server's parallel slots)", intValue{&c.Local.MaxConcurrent, 1, 64}},
		{"LLM_MAX_RETRIES", "max-retries", "attempts per tier for high-priority items", intValue{&c.MaxRetries, 0, 10}},
		{"LLM_RETRY_DELAY", "retry-delay", "base seconds of the retry backoff", secondsValue{&c.RetryDelay, 0, time.Minute}},
		{"LLM_LOCAL_MAX_LENGTH", "local-max-length", "longest text (characters) sent to the local model", intValue{&c.Local.MaxLength, 1, 100_000}},
		{"SENTIMENT_LOCAL_KEEP_ALIVE", "local-keep-alive", "Ollama keep_alive on each request (Go duration; negative: forever)", durationStringValue{&c.Local.KeepAlive}},
		{"SENTIMENT_LOCAL_NUM_CTX", "local-num-ctx", "context window (tokens) asked of Ollama", intValue{&c.Local.NumCtx, 256, 1 << 20}},
		{"SENTIMENT_DEFAULT_DEADLINE", "default-deadline", "seconds allowed to a call that brings no deadline", secondsValue{&c.DefaultDeadline, time.Second, 10 * time.Minute}},
		{"SENTIMENT_CLOUD_TIMEOUT", "cloud-timeout", "seconds allowed for one cloud model call", secondsValue{&c.CloudTimeout, 100 * time.Millisecond, 10 * time.Minute}},
		{"SENTIMENT_MIN_TIER_TIME", "min-tier-time", "least seconds left before the deadline to try a tier or a retry", secondsValue{&c.MinTierTime, 0, time.Minute}},
		{"SENTIMENT_TIER_RESERVE", "tier-reserve", "seconds of the deadline kept for each later model tier (shrunk in proportion for short deadlines)", secondsValue{&c.TierReserve, 0, time.Minute}},
		{"SENTIMENT_ANSWER_MARGIN", "answer-margin", "seconds before the caller's deadline by which upstream calls end, so the answer arrives in time (at most a fifth of a short deadline)", secondsValue{&c.AnswerMargin, 0, 5 * time.Second}},
		{"SENTIMENT_MAX_BACKOFF", "max-backoff", "longest wait in seconds between two attempts", secondsValue{&c.MaxBackoff, 0, 10 * time.Minute}},
		{"SENTIMENT_BREAKER_FAILURES", "breaker-failures", "failures in a row that open a tier's breaker", intValue{&c.Breaker.Failures, 1, 1000}},
		{"SENTIMENT_BREAKER_COOLDOWN", "breaker-cooldown", "seconds an open breaker waits before probing the tier", secondsValue{&c.Breaker.Cooldown, 100 * time.Millisecond, time.Hour}},
		{"SENTIMENT_BREAKER_HALF_OPEN", "breaker-half-open", "probes allowed half-open, and successes that close the breaker", intValue{&c.Breaker.HalfOpenSuccesses, 1, 100}},
		{"SENTIMENT_SEED", "seed", "sampling seed sent to models that take one", intValue{&c.Seed, 0, math.MaxInt32}},
		{"SENTIMENT_PRICES", "prices", "model=input/output USD per million tokens, comma-separated; merged over the built-in table", pricesValue{&c.Prices}},

		{"GEMINI_API_KEY", "gemini-api-key", "Gemini API key; empty: tier off", secretValue{&c.Gemini.APIKey}},
		{"SENTIMENT_GEMINI_MODEL", "gemini-model", "Gemini model", stringValue{p: &c.Gemini.Model}},
		{"SENTIMENT_GEMINI_BASE_URL", "gemini-base-url", "Gemini API base URL", endpointValue{&c.Gemini.BaseURL}},
		{"LLM_GEMINI_RPM", "gemini-rpm", "Gemini requests per minute (0: no limit)", intValue{&c.Gemini.RPM, 0, 1_000_000}},
		{"LLM_GEMINI_RPH", "gemini-rph", "Gemini requests per hour (0: no limit)", intValue{&c.Gemini.RPH, 0, 1_000_000}},
		{"LLM_GEMINI_RPD", "gemini-rpd", "Gemini requests per day (0: no limit)", intValue{&c.Gemini.RPD, 0, 10_000_000}},
		{"ANTHROPIC_API_KEY", "anthropic-api-key", "Anthropic API key; empty: tier off", secretValue{&c.Anthropic.APIKey}},
		{"SENTIMENT_ANTHROPIC_MODEL", "anthropic-model", "Anthropic model", stringValue{p: &c.Anthropic.Model}},
		{"SENTIMENT_ANTHROPIC_RPM", "anthropic-rpm", "Anthropic requests per minute (0: no limit)", intValue{&c.Anthropic.RPM, 0, 1_000_000}},
		{"SENTIMENT_ANTHROPIC_RPH", "anthropic-rph", "Anthropic requests per hour (0: no limit)", intValue{&c.Anthropic.RPH, 0, 1_000_000}},
		{"SENTIMENT_ANTHROPIC_RPD", "anthropic-rpd", "Anthropic requests per day (0: no limit)", intValue{&c.Anthropic.RPD, 0, 10_000_000}},
		{"SENTIMENT_LOCAL_RPM", "local-rpm", "local model requests per minute (0: no limit)", intValue{&c.LocalQuota.RPM, 0, 1_000_000}},
		{"SENTIMENT_LOCAL_RPH", "local-rph", "local model requests per hour (0: no limit)", intValue{&c.LocalQuota.RPH, 0, 1_000_000}},
		{"SENTIMENT_LOCAL_RPD", "local-rpd", "local model requests per day (0: no limit)", intValue{&c.LocalQuota.RPD, 0, 10_000_000}},
		{"SENTIMENT_GPU_QUEUE", "gpu-queue", "items that may wait for a GPU slot before spilling to the next tier", intValue{&c.GPUQueue, 0, 100_000}},
		{"SENTIMENT_GPU_PACING", "gpu-pacing", "GPU queue pacing", stringValue{&c.GPUPacing, []string{"adaptive", "waves"}}},
		{"SENTIMENT_REDIS_LOCAL_SHARE", "redis-local-share", "share of each quota a replica allows itself while Redis is unreachable", floatValue{&c.RedisLocalShare, 0, 1}},
		{"SENTIMENT_REDIS_PREFIX", "redis-prefix", "prefix of the quota keys in Redis", stringValue{p: &c.RedisPrefix}},
		{"SENTIMENT_ANTHROPIC_BASE_URL", "anthropic-base-url", "Anthropic API base URL", endpointValue{&c.Anthropic.BaseURL}},

		{"LLM_MIN_INTERVAL_SEC", "min-interval", "least seconds between two requests to one cloud provider", secondsValue{&c.MinInterval, 0, time.Hour}},
		{"LLM_BATCH_SIZE", "batch-size", "items released to the GPU per wave (old pacing)", intValue{&c.BatchSize, 1, 1000}},
		{"LLM_BATCH_DELAY_SEC", "batch-delay", "seconds between waves (old pacing)", secondsValue{&c.BatchDelay, 0, 10 * time.Minute}},
		{"LLM_MIN_PRESCALE_SCORE", "min-prescore", "prefilter: |prescore| below this never reaches a paid tier (adaptive) or any model (fixed)", floatValue{&c.MinPrescore, 0, 1}},
		{"SENTIMENT_PREFILTER", "prefilter", "adaptive: an item under the threshold still goes to the local model while the GPU has room, shed to the lexicon when it has not; fixed: the lexicon answers it", stringValue{&c.Prefilter, []string{"adaptive", "fixed"}}},

		{"GPU_CLEANUP_INTERVAL_SEC", "gpu-cleanup-interval", "seconds between periodic model unload-reloads (0: off)", secondsValue{&c.GPUCleanupInterval, 0, 7 * day}},
		{"SENTIMENT_GPU_SYSFS_ROOT", "gpu-sysfs-root", "root of the sysfs tree read for AMD GPUs", stringValue{p: &c.GPUSysfsRoot}},
		{"SENTIMENT_GPU_READER", "gpu-reader", "VRAM reader", stringValue{&c.GPUReader, []string{"auto", "sysfs", "rocm-smi", "amd-smi", "nvidia-smi", "none"}}},
		{"SENTIMENT_GPU_POLL_INTERVAL", "gpu-poll-interval", "seconds between VRAM readings", secondsValue{&c.GPU.PollInterval, 100 * time.Millisecond, 10 * time.Minute}},
		{"SENTIMENT_GPU_HIGH_WATER", "gpu-high-water", "VRAM use (% of total) above which GPU concurrency is cut", floatValue{&c.GPU.HighWater, 1, 100}},
		{"SENTIMENT_GPU_CRITICAL", "gpu-critical", "VRAM use (% of total) at which the gate closes and the model is reloaded", floatValue{&c.GPU.Critical, 1, 100}},
		{"SENTIMENT_GPU_MAX_FAILURES", "gpu-max-failures", "local failures in a row that close the gate and trigger a cleanup", intValue{&c.GPU.MaxFailures, 1, 1000}},
		{"SENTIMENT_GPU_RESTART_CMD", "gpu-restart-cmd", "command run when an unload does not free VRAM (e.g. a service-manager restart of the model server)", stringValue{p: &c.GPU.RestartCmd}},
		{"SENTIMENT_GPU_DRAIN_TIMEOUT", "gpu-drain-timeout", "seconds a cleanup waits for calls in flight on the GPU", secondsValue{&c.GPU.DrainTimeout, 0, 10 * time.Minute}},
		{"SENTIMENT_GPU_WARMUP", "gpu-warmup", "preload the local model at start (1/0)", boolValue{&c.GPU.Warmup}},
		{"SENTIMENT_GPU_PCI_BUS_ID", "gpu-pci-bus-id", "PCI address of the card whose VRAM counts (e.g. 0000:03:00.0); empty: the fullest discrete card", stringValue{p: &c.GPU.PCIBusID}},

		{"REDIS_URL", "redis-url", "Redis URL for shared quotas and cache; empty: in memory", redisURLValue{&c.RedisURL}},
		{"SENTIMENT_CACHE", "cache", "keep the models' answers so a repeated item is judged once (1/0)", boolValue{&c.Cache}},
		{"LLM_CACHE_SIMILARITY", "cache-similarity", "least similarity (word shingles) of a near-duplicate cache hit within a ticker", floatValue{&c.CacheSimilarity, 0.5, 1}},
		{"LLM_CACHE_TTL", "cache-ttl", "seconds a cached answer is kept from when it was made (0: no cache)", secondsValue{&c.CacheTTL, 0, 30 * day}},
		{"SENTIMENT_CACHE_PER_TICKER", "cache-per-ticker", "cached answers kept per ticker (least recently used out first)", intValue{&c.CachePerTicker, 1, 10_000}},
		{"SENTIMENT_CACHE_MAX_ENTRIES", "cache-max-entries", "cached answers kept in memory in all", intValue{&c.CacheMaxEntries, 1, 10_000_000}},
		{"SENTIMENT_CACHE_MAX_MB", "cache-max-mb", "memory the cached answers may take, in MiB", intValue{&c.CacheMaxMB, 1, 1 << 16}},
		{"SENTIMENT_CACHE_REDIS_PREFIX", "cache-redis-prefix", "prefix of the cache's keys in Redis", stringValue{p: &c.CacheRedisPrefix}},
		{"SENTIMENT_CACHE_EMBED_MODEL", "cache-embed-model", "embedding model on the local Ollama server for near-duplicate similarity (e.g. nomic-embed-text); empty: word shingles", stringValue{p: &c.CacheEmbedModel}},
		{"LLM_COST_ALERT_DAILY", "cost-alert-daily", "USD spent in a day that raises an alert", floatValue{&c.CostAlertDaily, 0, 1e6}},
		{"LLM_COST_ALERT_MONTHLY", "cost-alert-monthly", "USD spent in a month that raises an alert", floatValue{&c.CostAlertMonthly, 0, 1e7}},
		{"SENTIMENT_COST_TZ", "cost-tz", "time zone the cost's day and month are counted in (IANA name, e.g. America/New_York)", zoneValue{&c.CostZone}},
		{"SENTIMENT_BUDGET_STOP", "budget-stop", "stop calling paid tiers for the rest of a day or month whose cost threshold was crossed (1/0); answers degrade, never fail", boolValue{&c.BudgetStop}},
		{"LLM_USAGE_LOG_PATH", "usage-log-path", "file that receives one JSON line per model call; empty: none", stringValue{p: &c.UsageLogPath}},
		{"SENTIMENT_DISCORD_WEBHOOKS", "discord-webhooks", "channel=webhook-URL pairs, comma-separated, or @file with one pair per line", webhooksValue{&c.DiscordWebhooks}},
		{"SENTIMENT_ALERT_CHANNEL", "alert-channel", "channel of an alert that names none; empty: alerts must name one", stringValue{p: &c.AlertChannel}},
		{"SENTIMENT_ALERT_TIMEOUT", "alert-timeout", "seconds a posted alert waits for the model's answer before it says the analysis timed out", secondsValue{&c.AlertTimeout, time.Second, 10 * time.Minute}},
		{"SENTIMENT_ALERT_DEDUPE_TTL", "alert-dedupe-ttl", "seconds an item alerts at most once per channel", secondsValue{&c.AlertDedupeTTL, time.Minute, 30 * day}},
	}
}

// SettingError is a setting whose value cannot be used. Its message is the
// one line start-up prints: the setting, its value as shown (secrets
// redacted) and what is allowed. main exits 2 on it.
type SettingError struct {
	// Settings is the setting or settings at fault with their values, as
	// shown: SENTIMENT_GRPC_ADDR="50051".
	Settings string
	// Allowed says what would be accepted, and may end with the cause in
	// parentheses.
	Allowed string
}

func (e *SettingError) Error() string { return "setting " + e.Settings + ": " + e.Allowed }

// Bad returns the SettingError of setting name holding value, shown
// quoted. Callers outside this package use it for a setting found unusable
// only when it is put to work (an address that cannot be listened on).
func Bad(name, value, allowed string) *SettingError {
	return &SettingError{Settings: fmt.Sprintf("%s=%q", name, value), Allowed: allowed}
}

// Load builds the Config from the defaults, then the environment (through
// getenv), then the command-line arguments (without the program name).
// A bad value is a *SettingError, one line naming the setting, the value
// and what is allowed; flag.ErrHelp is returned as is after usage is
// written to out.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("sentimentd", flag.ContinueOnError)
	// flag writes its own message on a bad flag; ours is the one-line
	// error below, so its output is discarded until -help asks for usage.
	fs.SetOutput(io.Discard)
	settings := c.settings()
	for _, s := range settings {
		fs.Var(s.value, s.flag, s.usage+" (env "+s.env+")")
	}
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if err := s.value.Set(v); err != nil {
			return Config{}, &SettingError{Settings: s.env + "=" + shown(s.value, v), Allowed: err.Error()}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(out)
			fmt.Fprintln(out, "Usage of sentimentd (each flag also reads the environment name shown):")
			fs.PrintDefaults()
			return Config{}, err
		}
		return Config{}, flagError(settings, args, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: settings are flags (-name=value) or environment variables", fs.Arg(0))
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// flagError rewrites flag's message into the same one-line form as an
// environment error. flag stops at the first bad flag, so finding it again
// means the first setting whose value does not Set.
func flagError(settings []setting, args []string, err error) error {
	for _, a := range args {
		name, val, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok {
			continue
		}
		for _, s := range settings {
			if s.flag != name {
				continue
			}
			if serr := s.value.Set(val); serr != nil {
				return &SettingError{Settings: "-" + s.flag + "=" + shown(s.value, val), Allowed: serr.Error()}
			}
		}
	}
	return fmt.Errorf("%v (run with -help for the settings)", err)
}

// shower is a value that knows how to quote itself in an error without
// giving a secret away.
type shower interface {
	show(raw string) string
}

// shown is how a bad value is quoted in an error.
func shown(v flag.Value, raw string) string {
	if s, ok := v.(shower); ok {
		return s.show(raw)
	}
	return fmt.Sprintf("%q", raw)
}

// Validate checks what no single setting can check alone, and that the
// TLS files can be used.
func (c *Config) Validate() error {
	if err := checkAddr("SENTIMENT_GRPC_ADDR", c.GRPCAddr); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		if err := checkAddr("SENTIMENT_METRICS_ADDR", c.MetricsAddr); err != nil {
			return err
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return &SettingError{Settings: fmt.Sprintf("SENTIMENT_TLS_CERT=%q, SENTIMENT_TLS_KEY=%q", c.TLSCert, c.TLSKey), Allowed: "both or neither must be set"}
	}
	if c.TLSCert != "" {
		if err := checkTLS(c.TLSCert, c.TLSKey); err != nil {
			return err
		}
	}
	if c.Local.Enabled && strings.TrimSpace(c.Local.Model) == "" {
		return Bad("LLM_MODEL_NAME", c.Local.Model, "must name a model while LLM_LOCAL_ENABLED=1")
	}
	if c.Gemini.APIKey != "" && strings.TrimSpace(c.Gemini.Model) == "" {
		return Bad("SENTIMENT_GEMINI_MODEL", c.Gemini.Model, "must name a model while GEMINI_API_KEY is set")
	}
	if c.Anthropic.APIKey != "" && strings.TrimSpace(c.Anthropic.Model) == "" {
		return Bad("SENTIMENT_ANTHROPIC_MODEL", c.Anthropic.Model, "must name a model while ANTHROPIC_API_KEY is set")
	}
	if c.GPU.HighWater >= c.GPU.Critical {
		return &SettingError{
			Settings: fmt.Sprintf("SENTIMENT_GPU_HIGH_WATER=%q, SENTIMENT_GPU_CRITICAL=%q", strconv.FormatFloat(c.GPU.HighWater, 'g', -1, 64), strconv.FormatFloat(c.GPU.Critical, 'g', -1, 64)),
			Allowed:  "high water must be below critical",
		}
	}
	if c.CacheEmbedModel != "" && (!c.Local.Enabled || c.Local.API != "ollama") {
		return Bad("SENTIMENT_CACHE_EMBED_MODEL", c.CacheEmbedModel, "needs the local Ollama tier (LLM_LOCAL_ENABLED=1, SENTIMENT_LOCAL_API=ollama) to embed with")
	}
	if c.AlertChannel != "" && c.DiscordWebhooks[c.AlertChannel] == "" {
		names := slices.Sorted(maps.Keys(c.DiscordWebhooks))
		return Bad("SENTIMENT_ALERT_CHANNEL", c.AlertChannel, fmt.Sprintf("must be a channel of SENTIMENT_DISCORD_WEBHOOKS (%s)", strings.Join(names, ", ")))
	}
	if c.GPUSysfsRoot == "" {
		return Bad("SENTIMENT_GPU_SYSFS_ROOT", c.GPUSysfsRoot, "must be a directory path")
	}
	return nil
}

func checkAddr(name, addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return Bad(name, addr, "must be host:port, e.g. :50051 or 127.0.0.1:0")
	}
	return nil
}

// checkTLS reads the certificate and key as the server will, so that a
// missing or mismatched file stops start-up naming the setting at fault.
func checkTLS(certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return Bad("SENTIMENT_TLS_CERT", certFile, fmt.Sprintf("must be a readable PEM certificate file (%v)", pathErr(err)))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return Bad("SENTIMENT_TLS_KEY", keyFile, fmt.Sprintf("must be a readable PEM private key file (%v)", pathErr(err)))
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return &SettingError{
			Settings: fmt.Sprintf("SENTIMENT_TLS_CERT=%q, SENTIMENT_TLS_KEY=%q", certFile, keyFile),
			Allowed:  fmt.Sprintf("must be a PEM certificate and the private key that matches it (%v)", err),
		}
	}
	return nil
}

// pathErr drops the file name from an *fs.PathError: the message already
// shows the value.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
