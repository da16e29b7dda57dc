package router

import (
	"fmt"
	"log/slog"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/config"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/upstream"
)

// cloudConnsPerHost bounds the connections kept to one cloud API; their
// quotas, not our sockets, are what limits throughput there.
const cloudConnsPerHost = 16

// FromConfig builds the router the configuration describes: the local
// tier (Ollama's native API, or an OpenAI-compatible server) when
// LLM_LOCAL_ENABLED, Gemini and Anthropic when their keys are set. Each
// upstream gets its own HTTP client, shared by all its requests.
func FromConfig(c config.Config, log *slog.Logger, opts ...Option) (*Router, error) {
	b := &Router{}
	for _, o := range opts {
		o(b) // the build options (WithGPUQueue, WithLocalGate, WithQuota) land here
	}
	quota := b.quota
	if quota == nil {
		q, err := limiter.FromConfig(c, log)
		if err != nil {
			return nil, fmt.Errorf("building the quota limiter: %w", err)
		}
		quota = q
		b.closers = append(b.closers, q.Close)
	}
	var err error
	gpu := b.gpu
	if gpu == nil {
		if gpu, err = NewGPUQueue(c); err != nil {
			_ = closeAll(b.closers)
			return nil, err
		}
	}

	local := TierConfig{Tier: TierLocal, Model: c.Local.Model, Timeout: c.Local.Timeout, MaxChars: c.Local.MaxLength,
		Price: price(c, c.Local.Model), Quota: quota, Queue: gpu, Gate: b.localGate}
	switch {
	case !c.Local.Enabled:
		local.DisabledReason = "disabled: LLM_LOCAL_ENABLED=0"
	case c.Local.API == "openai":
		local.Provider = NewOpenAI(OpenAIConfig{BaseURL: c.Local.Endpoint, Model: c.Local.Model, Seed: c.Seed},
			upstream.NewHTTPClient(c.Local.MaxConcurrent))
	default:
		oc := b.ollama
		if oc == nil {
			oc = LocalOllama(c)
		}
		local.Provider = NewOllama(oc)
	}

	gemini := TierConfig{Tier: TierGemini, Model: c.Gemini.Model, Timeout: c.CloudTimeout, Price: price(c, c.Gemini.Model), Quota: quota}
	if c.Gemini.APIKey == "" {
		gemini.DisabledReason = "disabled: GEMINI_API_KEY is not set"
	} else {
		gemini.Provider = NewGemini(GeminiConfig{BaseURL: c.Gemini.BaseURL, Model: c.Gemini.Model, APIKey: c.Gemini.APIKey, Seed: c.Seed},
			upstream.NewHTTPClient(cloudConnsPerHost))
	}

	anthropic := TierConfig{Tier: TierAnthropic, Model: c.Anthropic.Model, Timeout: c.CloudTimeout, Price: price(c, c.Anthropic.Model), Quota: quota}
	if c.Anthropic.APIKey == "" {
		anthropic.DisabledReason = "disabled: ANTHROPIC_API_KEY is not set"
	} else {
		anthropic.Provider = NewAnthropic(AnthropicConfig{BaseURL: c.Anthropic.BaseURL, Model: c.Anthropic.Model,
			APIKey: c.Anthropic.APIKey}, upstream.NewHTTPClient(cloudConnsPerHost))
	}

	r, err := New(Config{
		Tiers:       []TierConfig{local, gemini, anthropic},
		MaxRetries:  c.Local.MaxRetries,
		RetryDelay:  c.Local.RetryDelay,
		MaxBackoff:  c.MaxBackoff,
		MinTierTime: c.MinTierTime,
		TierReserve: c.TierReserve,
		Breaker: BreakerConfig{
			Failures:          uint32(c.Breaker.Failures),
			Cooldown:          c.Breaker.Cooldown,
			HalfOpenSuccesses: uint32(c.Breaker.HalfOpenSuccesses),
		},
	}, log, opts...)
	if err != nil {
		_ = closeAll(b.closers)
		return nil, err
	}
	r.gpu = gpu
	r.closers = b.closers
	return r, nil
}

func price(c config.Config, model string) Price {
	p := c.Prices[model]
	return Price{InputPerM: p.InputPerM, OutputPerM: p.OutputPerM}
}

// NewGPUQueue builds the GPU queue the configuration describes; main builds
// it first when the GPU manager must hold it too, and hands it over with
// WithGPUQueue.
func NewGPUQueue(c config.Config) (*batcher.Queue, error) {
	pacing, err := batcher.ParsePacing(c.GPUPacing)
	if err != nil {
		return nil, err
	}
	q, err := batcher.New(batcher.Config{
		MaxConcurrent: c.Local.MaxConcurrent,
		QueueSize:     c.GPUQueue,
		Pacing:        pacing,
		WaveSize:      c.BatchSize,
		WaveDelay:     c.BatchDelay,
	})
	if err != nil {
		return nil, fmt.Errorf("building the GPU queue: %w", err)
	}
	return q, nil
}

// WithGPUQueue makes FromConfig use q for the local tier instead of a
// queue of its own.
func WithGPUQueue(q *batcher.Queue) Option { return func(r *Router) { r.gpu = q } }

// LocalOllama is the client of the configured local Ollama server, nil
// when the local tier is off or not Ollama; the GPU manager acts through
// the same client (WithOllama).
func LocalOllama(c config.Config) *ollama.Client {
	if !c.Local.Enabled || c.Local.API != "ollama" {
		return nil
	}
	return ollama.New(ollama.Config{BaseURL: c.Local.Endpoint, Model: c.Local.Model,
		KeepAlive: c.Local.KeepAlive, NumCtx: c.Local.NumCtx, Seed: c.Seed}, upstream.NewHTTPClient(c.Local.MaxConcurrent))
}

// WithOllama makes FromConfig's local tier use c.
func WithOllama(c *ollama.Client) Option { return func(r *Router) { r.ollama = c } }

// WithQuota makes FromConfig use q for the quotas instead of a limiter of
// its own; q stays the caller's to close.
func WithQuota(q *limiter.Limiter) Option { return func(r *Router) { r.quota = q } }

// WithLocalGate puts g (the GPU manager) in front of the local tier.
func WithLocalGate(g Gate) Option { return func(r *Router) { r.localGate = g } }
