// Package app is the composition root: it builds every part of the
// service once from config.Config, in dependency order, hands each its
// neighbours, and starts and stops them in order. It is the only package
// that reads config.Config besides main; the parts take their own small
// settings.
//
//	Redis client (one per process, REDIS_URL)
//	  -> quota limiter (memory or Redis)
//	GPU queue -> local tier's client (Ollama or OpenAI-compatible)
//	  -> GPU manager (Ollama only: the same client, the same queue)
//	cloud tiers -> router -> pipeline -> gRPC server
//	Discord notifier (SENTIMENT_DISCORD_WEBHOOKS): the pipeline's listener
//	  for Classify's alerts, the server's for the Alert RPC
//
// Stopping runs the other way: the server drains (and, past the grace,
// answers what is left from the lexicon) and the pending alerts wait for
// their answers (past the grace, they say the analysis timed out) while
// the GPU manager still guards the GPU; then the manager stops; then the
// Redis client closes.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/config"
	"github.com/catalystbot/sentiment/cost"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/internal/logrepeat"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/metrics"
	"github.com/catalystbot/sentiment/notifier"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/server"
	"github.com/catalystbot/sentiment/upstream"
	"github.com/catalystbot/sentiment/usage"
)

// The GPU manager is the local tier's gate.
var _ router.Gate = (*gpu.Manager)(nil)

// cloudConnsPerHost bounds the connections kept to one cloud API; their
// quotas, not our sockets, are what limits throughput there.
const cloudConnsPerHost = 16

// redisCheckTimeout bounds the one Redis check at start.
const redisCheckTimeout = time.Second

// Upstream names, as WithHTTPClient's function is asked for them.
const (
	UpstreamLocal     = "local"
	UpstreamGemini    = "gemini"
	UpstreamAnthropic = "anthropic"
	UpstreamDiscord   = "discord"
)

// discordConnsPerHost bounds the connections kept to Discord: every
// webhook is paced to a few requests a second.
const discordConnsPerHost = 8

// App is the running service's parts.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	redis    redis.UniversalClient
	cache    *cache.Cache
	quota    *limiter.Limiter
	queue    *batcher.Queue
	gpu      *gpu.Manager
	router   *router.Router
	pipeline *pipeline.Pipeline
	alerts   *notifier.Notifier
	metrics  *metrics.Metrics
	usage    *usage.Log
	cost     *cost.Totals
	server   *server.Server

	// metricsLis is the metrics address's listener, opened by Listen.
	metricsLis net.Listener
}

// Option changes how New builds the parts; tests use them.
type Option func(*options)

type options struct {
	noGPU        bool
	httpClient   func(upstream string) *http.Client
	gpuReader    gpu.Reader
	gpuReaderSet bool
	runCommand   func(ctx context.Context, cmd string) error
	now          func() time.Time
	alertClock   notifier.Clock
}

// WithHTTPClient gives each upstream ("local", "gemini", "anthropic") the
// client f returns instead of a tuned client of its own: tests pass a
// fake's in-memory transport. A nil result keeps the default.
func WithHTTPClient(f func(upstream string) *http.Client) Option {
	return func(o *options) { o.httpClient = f }
}

// WithoutGPUManager builds no GPU manager in front of a local Ollama
// tier: for tests of the request path that script the model server's
// failures themselves and would otherwise meet the manager's cleanups.
func WithoutGPUManager() Option { return func(o *options) { o.noGPU = true } }

// WithGPUReader makes the GPU manager read VRAM with r (nil: none) instead
// of the reader SENTIMENT_GPU_READER names.
func WithGPUReader(r gpu.Reader) Option {
	return func(o *options) { o.gpuReader, o.gpuReaderSet = r, true }
}

// WithCommandRunner runs SENTIMENT_GPU_RESTART_CMD through run.
func WithCommandRunner(run func(ctx context.Context, cmd string) error) Option {
	return func(o *options) { o.runCommand = run }
}

// WithClock replaces the clock answers' latencies and the server's uptime
// are read from.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithAlertClock replaces the clock the alerts are stamped and timed out
// by.
func WithAlertClock(c notifier.Clock) Option { return func(o *options) { o.alertClock = c } }

// New builds every part from cfg. A setting found unusable only now (a
// model the provider cannot drive) is a *config.SettingError. Redis, when
// configured, is asked once: one that cannot be reached is said in one
// warning line at once, and the quotas fall back to the local share.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*App, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	a := &App{cfg: cfg, log: log}
	if err := a.build(ctx, &o); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context, o *options) (err error) {
	cfg := a.cfg
	log := a.log
	if err := a.buildQuota(ctx); err != nil {
		return err
	}
	if err := a.buildCost(o); err != nil {
		return err
	}
	if a.queue, err = a.newQueue(); err != nil {
		return err
	}
	local, oc, err := a.localTier(o)
	if err != nil {
		return err
	}
	if oc != nil && !o.noGPU {
		if a.gpu, err = a.buildGPU(oc, o); err != nil {
			return err
		}
		local.Gate = a.gpu
	}
	gemini, err := a.geminiTier(o)
	if err != nil {
		return err
	}
	anthropic, err := a.anthropicTier(o)
	if err != nil {
		return err
	}
	if cfg.BudgetStop {
		// The local model costs nothing; the cloud tiers stop for the rest
		// of a period whose threshold was crossed.
		gemini.Gate, anthropic.Gate = budgetGate{a.cost}, budgetGate{a.cost}
	}
	a.router, err = router.New(router.Config{
		Observe:     a.observe,
		Tiers:       []router.TierConfig{local, gemini, anthropic},
		MaxRetries:  cfg.MaxRetries,
		RetryDelay:  cfg.RetryDelay,
		MaxBackoff:  cfg.MaxBackoff,
		MinTierTime: cfg.MinTierTime,
		TierReserve: cfg.TierReserve,
		Breaker: router.BreakerConfig{
			Failures:          uint32(cfg.Breaker.Failures),
			Cooldown:          cfg.Breaker.Cooldown,
			HalfOpenSuccesses: uint32(cfg.Breaker.HalfOpenSuccesses),
		},
	}, log)
	if err != nil {
		return fmt.Errorf("building the router: %w", err)
	}
	scorer, err := lexicon.New()
	if err != nil {
		return fmt.Errorf("loading the lexicon: %w", err)
	}
	var popts []pipeline.Option
	if o.now != nil {
		popts = append(popts, pipeline.WithClock(o.now))
	}
	if cfg.Cache && cfg.CacheTTL > 0 {
		if a.cache, err = a.buildCache(scorer, []router.TierConfig{local, gemini, anthropic}, oc, o); err != nil {
			return err
		}
		popts = append(popts, pipeline.WithCache(a.cache))
	}
	if len(cfg.DiscordWebhooks) > 0 {
		if a.alerts, err = a.buildAlerts(o); err != nil {
			return err
		}
		popts = append(popts, pipeline.WithListener(a.alerts.Listen))
	}
	prefilter, err := pipeline.ParsePrefilterMode(cfg.Prefilter)
	if err != nil {
		return config.Bad("SENTIMENT_PREFILTER", cfg.Prefilter, "must be adaptive or fixed")
	}
	a.pipeline, err = pipeline.New(pipeline.Config{
		Prefilter:       prefilter,
		LocalTier:       local.Provider != nil,
		MinPrescore:     cfg.MinPrescore,
		DefaultDeadline: cfg.DefaultDeadline,
		AnswerMargin:    cfg.AnswerMargin,
	}, scorer, a.router, popts...)
	if err != nil {
		return fmt.Errorf("building the request path: %w", err)
	}
	var sopts []server.Option
	if cfg.MetricsAddr != "" {
		a.metrics = metrics.New(a.metricSources())
		sopts = append(sopts, server.WithGRPCMetrics(a.metrics.GRPC()))
	}
	if o.now != nil {
		sopts = append(sopts, server.WithClock(o.now))
	}
	if a.cache != nil {
		sopts = append(sopts, server.WithCache(a.cache))
	}
	if a.gpu != nil {
		sopts = append(sopts, server.WithGPU(a.gpu, a.queue))
	}
	if a.alerts != nil {
		sopts = append(sopts, server.WithAlerts(a.alerts))
	}
	sopts = append(sopts, server.WithCost(a.cost))
	if a.usage != nil {
		sopts = append(sopts, server.WithUsageLog(a.usage))
	}
	a.server, err = server.New(server.Config{
		Addr:             cfg.GRPCAddr,
		AuthTokens:       cfg.AuthTokens,
		TLSCert:          cfg.TLSCert,
		TLSKey:           cfg.TLSKey,
		BatchConcurrency: cfg.BatchConcurrency,
		CostAlertDaily:   cfg.CostAlertDaily,
		CostAlertMonthly: cfg.CostAlertMonthly,
	}, a.pipeline, a.router, log, sopts...)
	if err != nil {
		return fmt.Errorf("building the server: %w", err)
	}
	return nil
}

// costRedisPrefix prefixes the cost totals' keys in Redis.
const costRedisPrefix = "catalyst-sentiment:cost"

// buildCost opens the usage log and the cost totals: shared through Redis
// when configured, otherwise rebuilt from the usage log, so that a restart
// does not forget what the day has cost.
func (a *App) buildCost(o *options) error {
	cfg := a.cfg
	copts := []cost.Option{cost.WithLogger(a.log), cost.WithAlert(a.costCrossed)}
	if o.now != nil {
		copts = append(copts, cost.WithClock(o.now))
	}
	if a.redis != nil {
		copts = append(copts, cost.WithRedis(a.redis, costRedisPrefix))
	}
	var err error
	a.cost, err = cost.New(cost.Config{
		Zone:         cfg.CostZone,
		DailyAlert:   cfg.CostAlertDaily,
		MonthlyAlert: cfg.CostAlertMonthly,
		BudgetStop:   cfg.BudgetStop,
	}, copts...)
	if err != nil {
		return fmt.Errorf("building the cost totals: %w", err)
	}
	if cfg.UsageLogPath == "" {
		return nil
	}
	if a.redis == nil {
		read, err := a.cost.RebuildFrom(cfg.UsageLogPath)
		if err != nil {
			return config.Bad("LLM_USAGE_LOG_PATH", cfg.UsageLogPath, fmt.Sprintf("must be a usage log this process can read (%v)", err))
		}
		if read.Records > 0 {
			a.log.Info("cost totals rebuilt from the usage log", "records", read.Records, "malformed", read.Malformed)
		}
	}
	if a.usage, err = usage.Open(cfg.UsageLogPath, usage.WithLogger(a.log)); err != nil {
		return config.Bad("LLM_USAGE_LOG_PATH", cfg.UsageLogPath, fmt.Sprintf("must be a file this process can append to (%v)", err))
	}
	return nil
}

// costCrossed hears a cost threshold crossed, once per period among the
// replicas: the totals have logged it; the alert channel hears it too.
func (a *App) costCrossed(ctx context.Context, c cost.Crossing) {
	if a.alerts == nil || a.cfg.AlertChannel == "" {
		return
	}
	text := fmt.Sprintf("$%.2f spent this %s (since %s); the threshold is $%.2f.", c.Total, c.Period, c.Start.Format(time.RFC3339), c.Threshold)
	if c.BudgetStop {
		text += fmt.Sprintf(" Paid tiers are stopped until %s: answers come from the local model or the lexicon.", c.End.Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.AlertTimeout)
	defer cancel()
	if err := a.alerts.Notice(ctx, "💸 Model cost threshold crossed", text); err != nil {
		a.log.Warn("posting the cost notice", "err", err)
	}
}

// budgetGate closes a paid tier while the budget stop is in force.
type budgetGate struct{ t *cost.Totals }

func (g budgetGate) Admit() (bool, string) {
	if _, reason, stopped := g.t.Stopped(); stopped {
		return false, reason
	}
	return true, ""
}

func (budgetGate) Report(upstream.Signal, string) {}

// metricSources are the parts the metrics read at every scrape: those
// this service runs.
func (a *App) metricSources() metrics.Sources {
	src := metrics.Sources{Tiers: a.router.Stats, Pipeline: a.pipeline.Stats}
	if a.cache != nil {
		src.Cache = a.cache.Stats
	}
	if a.gpu != nil {
		src.Queue, src.GPU = a.queue.Stats, a.gpu.Status
	}
	if a.alerts != nil {
		src.Alerts = a.alerts.Stats
	}
	src.Cost = a.cost.Snapshot
	if a.usage != nil {
		src.UsageLog = a.usage.Stats
	}
	return src
}

// observe hears every model call, as the router's observer.
func (a *App) observe(ctx context.Context, c router.Call) {
	if a.metrics != nil {
		a.metrics.ObserveCall(ctx, c)
	}
	if a.usage != nil {
		a.usage.Write(usage.Record{
			RequestID: server.RequestID(ctx),
			Tier:      c.Tier.String(),
			Model:     c.Model,
			Outcome:   usageOutcome(c.Outcome),
			ErrorType: c.ErrorType,
			Retry:     c.Retry,
			TokensIn:  c.Usage.TokensIn,
			TokensOut: c.Usage.TokensOut,
			CostUSD:   c.CostUSD,
			Latency:   c.Latency,
		})
	}
	if c.CostUSD > 0 {
		if a.redis != nil {
			// A Redis round trip stays off the caller's path.
			go a.cost.Add(context.WithoutCancel(ctx), c.Tier.String(), c.CostUSD)
		} else {
			a.cost.Add(ctx, c.Tier.String(), c.CostUSD)
		}
	}
	if c.Outcome != router.OutcomeOK {
		a.log.ErrorContext(ctx, "model call failed", "tier", c.Tier.String(), "model", c.Model,
			"error_type", c.ErrorType, "retry", c.Retry, "latency", c.Latency, "request_id", server.RequestID(ctx))
	}
}

func usageOutcome(o router.Outcome) string {
	switch o {
	case router.OutcomeOK:
		return usage.OutcomeOK
	case router.OutcomeInvalidAnswer:
		return usage.OutcomeInvalidAnswer
	}
	return usage.OutcomeError
}

// ReopenLogs reopens the usage log at its path: after logrotate has moved
// it (SIGHUP).
func (a *App) ReopenLogs() error {
	if a.usage == nil {
		return nil
	}
	return a.usage.Reopen()
}

// buildAlerts builds the Discord notifier over the configured channels;
// with Redis, an item alerts once per channel across the replicas.
func (a *App) buildAlerts(o *options) (*notifier.Notifier, error) {
	cfg := a.cfg
	client := notifier.NewClient(o.client(UpstreamDiscord, discordConnsPerHost), notifier.WithLogger(a.log))
	var nopts []notifier.Option
	if a.redis != nil {
		nopts = append(nopts, notifier.WithRedis(a.redis))
	}
	if o.alertClock != nil {
		nopts = append(nopts, notifier.WithAlertClock(o.alertClock))
	}
	n, err := notifier.New(notifier.Config{
		Webhooks:       cfg.DiscordWebhooks,
		DefaultChannel: cfg.AlertChannel,
		Timeout:        cfg.AlertTimeout,
		DedupeTTL:      cfg.AlertDedupeTTL,
		RedisPrefix:    alertRedisPrefix,
	}, client, a.log, nopts...)
	if err != nil {
		return nil, config.Bad("SENTIMENT_DISCORD_WEBHOOKS", "(redacted)", err.Error())
	}
	return n, nil
}

// alertRedisPrefix prefixes the alerts' dedupe keys in Redis.
const alertRedisPrefix = "catalyst-sentiment:"

// buildQuota opens the one Redis client when REDIS_URL is set and builds
// the quotas on it, or in memory; then it hands each tier its provider's
// quota.
func (a *App) buildQuota(ctx context.Context) error {
	cfg := a.cfg
	limits := map[limiter.Provider]limiter.Limits{
		limiter.ProviderLocal:     {PerMinute: cfg.LocalQuota.RPM, PerHour: cfg.LocalQuota.RPH, PerDay: cfg.LocalQuota.RPD},
		limiter.ProviderGemini:    {PerMinute: cfg.Gemini.RPM, PerHour: cfg.Gemini.RPH, PerDay: cfg.Gemini.RPD, MinInterval: cfg.MinInterval},
		limiter.ProviderAnthropic: {PerMinute: cfg.Anthropic.RPM, PerHour: cfg.Anthropic.RPH, PerDay: cfg.Anthropic.RPD, MinInterval: cfg.MinInterval},
	}
	var err error
	if cfg.RedisURL == "" {
		a.quota, err = limiter.NewMemory(limits)
		if err != nil {
			return fmt.Errorf("building the quotas: %w", err)
		}
		return nil
	}
	ropts, err := redis.ParseURL(cfg.RedisURL.Reveal())
	if err != nil {
		// config checked the URL; say which setting, never its password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return config.Bad("REDIS_URL", "[redacted]", "must be a Redis URL ("+err.Error()+")")
	}
	// Deadlines cut from the caller's context must bound every call, or a
	// Redis that hangs would hold requests for the client's read timeout.
	ropts.ContextTimeoutEnabled = true
	if ropts.DialTimeout == 0 {
		ropts.DialTimeout = time.Second
	}
	// One dial attempt per call: a refused connection then reads as such
	// at once, instead of as a timeout after go-redis's redials.
	if ropts.DialerRetries == 0 {
		ropts.DialerRetries = 1
	}
	a.redis = redis.NewClient(ropts)
	a.quota, err = limiter.NewRedis(a.redis, cfg.RedisPrefix, limits, cfg.RedisLocalShare, a.log)
	if err != nil {
		return fmt.Errorf("building the quotas: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, redisCheckTimeout)
	defer cancel()
	_ = a.quota.Check(cctx) // an outage is logged by the limiter, once
	return nil
}

// quotaFor is a tier's quota. Every provider has limits configured (zero
// is "no limit", said explicitly), so an error here is a programming one.
func (a *App) quotaFor(p limiter.Provider) (router.Quota, error) {
	q, err := a.quota.For(p)
	if err != nil {
		return nil, fmt.Errorf("building the %s tier: %w", p, err)
	}
	return q, nil
}

// buildCache builds the answer cache: in Redis on the one client when
// REDIS_URL is set, in memory otherwise. Its namespace names the prompt
// version and the enabled tiers' models, so that a new model or prompt
// never serves old answers.
func (a *App) buildCache(scorer *lexicon.Scorer, tiers []router.TierConfig, oc *ollama.Client, o *options) (*cache.Cache, error) {
	cfg := a.cfg
	ns := []string{router.PromptVersion}
	for _, t := range tiers {
		if t.Provider != nil {
			ns = append(ns, t.Tier.String()+"="+t.Model)
		}
	}
	var copts []cache.Option
	if a.redis != nil {
		copts = append(copts, cache.WithRedis(a.redis, cfg.CacheRedisPrefix))
	}
	var emb cache.Embedder
	if cfg.CacheEmbedModel != "" && oc != nil {
		emb = ollama.Embedder{Client: oc, Model: cfg.CacheEmbedModel}
		ns = append(ns, "embed="+cfg.CacheEmbedModel)
	}
	c, err := cache.New(cache.Config{
		Embedder:   emb,
		Similarity: cfg.CacheSimilarity,
		TTL:        cfg.CacheTTL,
		PerTicker:  cfg.CachePerTicker,
		MaxEntries: cfg.CacheMaxEntries,
		MaxBytes:   int64(cfg.CacheMaxMB) << 20,
		Namespace:  strings.Join(ns, "|"),
		Now:        o.now,
	}, cache.NewGuard(scorer.Weighs), a.log, copts...)
	if err != nil {
		return nil, fmt.Errorf("building the cache: %w", err)
	}
	return c, nil
}

func (a *App) newQueue() (*batcher.Queue, error) {
	cfg := a.cfg
	pacing, err := batcher.ParsePacing(cfg.GPUPacing)
	if err != nil {
		return nil, config.Bad("SENTIMENT_GPU_PACING", cfg.GPUPacing, "must be adaptive or waves")
	}
	var opts []batcher.Option
	if a.redis != nil && cfg.Local.Enabled {
		// Replicas in front of the same model server share its slots.
		opts = append(opts, batcher.WithLeases(batcher.NewRedisLeases(a.redis, gpuLeaseKey(cfg.Local.Endpoint), 0), cfg.RedisLocalShare, a.log))
	}
	q, err := batcher.New(batcher.Config{
		MaxConcurrent: cfg.Local.MaxConcurrent,
		QueueSize:     cfg.GPUQueue,
		Pacing:        pacing,
		WaveSize:      cfg.BatchSize,
		WaveDelay:     cfg.BatchDelay,
	}, opts...)
	if err != nil {
		return nil, fmt.Errorf("building the GPU queue: %w", err)
	}
	return q, nil
}

// gpuLeaseKey names the shared slots of one model server: replicas in
// front of the same endpoint share them, others do not. The braces are a
// Redis Cluster hash tag.
func gpuLeaseKey(endpoint string) string {
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	return "catalyst-sentiment:gpu:{" + host + "}:leases"
}

// client is the HTTP client of one upstream.
func (o *options) client(name string, maxConns int) *http.Client {
	if o.httpClient != nil {
		if hc := o.httpClient(name); hc != nil {
			return hc
		}
	}
	return upstream.NewHTTPClient(maxConns)
}

func (a *App) price(model string) router.Price {
	p := a.cfg.Prices[model]
	return router.Price{InputPerM: p.InputPerM, OutputPerM: p.OutputPerM}
}

// localTier builds the local tier: Ollama's native API (whose client the
// GPU manager shares, returned as oc) or an OpenAI-compatible server.
func (a *App) localTier(o *options) (t router.TierConfig, oc *ollama.Client, err error) {
	c := a.cfg.Local
	t = router.TierConfig{Tier: router.TierLocal, Model: c.Model, Timeout: c.Timeout, MaxChars: c.MaxLength,
		Price: a.price(c.Model), Queue: a.queue}
	if t.Quota, err = a.quotaFor(limiter.ProviderLocal); err != nil {
		return t, nil, err
	}
	hc := o.client(UpstreamLocal, c.MaxConcurrent)
	switch {
	case !c.Enabled:
		t.DisabledReason = "disabled: LLM_LOCAL_ENABLED=0"
	case c.API == "openai":
		t.Provider = router.NewOpenAI(router.OpenAIConfig{BaseURL: c.Endpoint, Model: c.Model, Seed: a.cfg.Seed}, hc)
	default:
		oc = ollama.New(ollama.Config{BaseURL: c.Endpoint, Model: c.Model, KeepAlive: c.KeepAlive, NumCtx: c.NumCtx, Seed: a.cfg.Seed}, hc)
		t.Provider = router.NewOllama(oc)
	}
	return t, oc, nil
}

// buildGPU builds the GPU manager over the local Ollama client and the
// GPU queue.
func (a *App) buildGPU(oc *ollama.Client, o *options) (*gpu.Manager, error) {
	cfg := a.cfg
	reader := o.gpuReader
	if !o.gpuReaderSet {
		r, err := gpu.Select(cfg.GPUReader, cfg.GPUSysfsRoot, nil)
		if err != nil {
			return nil, config.Bad("SENTIMENT_GPU_READER", cfg.GPUReader, err.Error())
		}
		reader = r
	}
	var coord gpu.Coordinator
	if a.redis != nil {
		// Replicas in front of one model server take turns cleaning it up.
		coord = gpu.NewRedisCoordinator(a.redis, strings.TrimSuffix(gpuLeaseKey(cfg.Local.Endpoint), ":leases")+":cleanup")
	}
	m, err := gpu.NewManager(gpu.ManagerConfig{
		Coordinator:   coord,
		Reader:        reader,
		Controller:    oc,
		Queue:         a.queue,
		MaxConcurrent: cfg.Local.MaxConcurrent,
		Policy: gpu.Policy{
			PollInterval: cfg.GPU.PollInterval,
			HighWater:    cfg.GPU.HighWater,
			Critical:     cfg.GPU.Critical,
			MaxFailures:  cfg.GPU.MaxFailures,
			RestartCmd:   cfg.GPU.RestartCmd,
			DrainTimeout: cfg.GPU.DrainTimeout,
			Warmup:       cfg.GPU.Warmup,
		},
		CleanupInterval: cfg.GPUCleanupInterval,
		PCIBusID:        cfg.GPU.PCIBusID,
		RunCommand:      o.runCommand,
	}, a.log)
	if err != nil {
		return nil, fmt.Errorf("building the GPU manager: %w", err)
	}
	return m, nil
}

func (a *App) geminiTier(o *options) (router.TierConfig, error) {
	c := a.cfg.Gemini
	t := router.TierConfig{Tier: router.TierGemini, Model: c.Model, Timeout: a.cfg.CloudTimeout, Price: a.price(c.Model)}
	var err error
	if t.Quota, err = a.quotaFor(limiter.ProviderGemini); err != nil {
		return t, err
	}
	if c.APIKey == "" {
		t.DisabledReason = "disabled: GEMINI_API_KEY is not set"
		return t, nil
	}
	t.Provider = router.NewGemini(router.GeminiConfig{BaseURL: c.BaseURL, Model: c.Model, APIKey: c.APIKey, Seed: a.cfg.Seed},
		o.client(UpstreamGemini, cloudConnsPerHost))
	return t, nil
}

func (a *App) anthropicTier(o *options) (router.TierConfig, error) {
	c := a.cfg.Anthropic
	t := router.TierConfig{Tier: router.TierAnthropic, Model: c.Model, Timeout: a.cfg.CloudTimeout, Price: a.price(c.Model)}
	var err error
	if t.Quota, err = a.quotaFor(limiter.ProviderAnthropic); err != nil {
		return t, err
	}
	if c.APIKey == "" {
		t.DisabledReason = "disabled: ANTHROPIC_API_KEY is not set"
		return t, nil
	}
	if err := router.CheckAnthropicModel(c.Model); err != nil {
		return t, config.Bad("SENTIMENT_ANTHROPIC_MODEL", c.Model, err.Error())
	}
	t.Provider = router.NewAnthropic(router.AnthropicConfig{BaseURL: c.BaseURL, Model: c.Model, APIKey: c.APIKey},
		o.client(UpstreamAnthropic, cloudConnsPerHost))
	return t, nil
}

// Listen opens the gRPC address; an address that cannot be listened on is
// a *config.SettingError.
func (a *App) Listen() (net.Listener, error) {
	lis, err := net.Listen("tcp", a.cfg.GRPCAddr)
	if err != nil {
		return nil, badAddr("SENTIMENT_GRPC_ADDR", a.cfg.GRPCAddr, err)
	}
	if a.metrics != nil {
		if a.metricsLis, err = net.Listen("tcp", a.cfg.MetricsAddr); err != nil {
			lis.Close()
			return nil, badAddr("SENTIMENT_METRICS_ADDR", a.cfg.MetricsAddr, err)
		}
	}
	return lis, nil
}

// badAddr is the SettingError of an address that cannot be listened on.
func badAddr(setting, addr string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	return config.Bad(setting, addr, fmt.Sprintf("must be an address this host can listen on (%v)", err))
}

// MetricsAddr is where /metrics and /healthz are served once Listen has
// opened it; empty without metrics.
func (a *App) MetricsAddr() string {
	if a.metricsLis == nil {
		return ""
	}
	return a.metricsLis.Addr().String()
}

// Server is the gRPC server, for tests that serve it themselves.
func (a *App) Server() *server.Server { return a.server }

// Run starts the GPU manager and serves on lis until ctx ends, then shuts
// down in order: the server drains for SENTIMENT_SHUTDOWN_GRACE (and then
// answers what is left from the lexicon), the GPU manager stops, the
// Redis client closes. It returns the server's error, if it failed.
func (a *App) Run(ctx context.Context, lis net.Listener) error {
	stopGPU := a.startGPU(ctx)
	stopMetrics := a.serveMetrics()
	served := make(chan error, 1)
	go func() { served <- a.server.Serve(lis) }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		a.log.Info("shutting down", "grace", a.cfg.ShutdownGrace)
		graceCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownGrace)
		alertsDone := make(chan struct{})
		go func() {
			defer close(alertsDone)
			if a.alerts != nil {
				// Pending alerts wait for their answers within the same
				// grace; the rest are edited to the timeout text.
				a.alerts.Shutdown(graceCtx)
			}
		}()
		a.server.Shutdown(graceCtx)
		<-alertsDone
		cancel()
		err = <-served
	}
	stopGPU()
	stopMetrics()
	a.close()
	return err
}

// serveMetrics serves /metrics and /healthz on the listener Listen opened
// until the returned stop is called: after the gRPC server has drained,
// so that a scrape during shutdown still answers.
func (a *App) serveMetrics() (stop func()) {
	if a.metricsLis == nil {
		return func() {}
	}
	srv := &http.Server{Handler: a.metrics.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(a.metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
}

// startGPU runs the GPU manager until the returned stop is called. It
// outlives ctx: in-flight calls drain while it still guards the GPU.
func (a *App) startGPU(ctx context.Context) (stop func()) {
	if a.gpu == nil {
		return func() {}
	}
	mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.gpu.Run(mctx)
	}()
	return func() { cancel(); <-done }
}

// Close releases what New built, for an App that never ran.
func (a *App) Close() { a.close() }

func (a *App) close() {
	if a.metricsLis != nil {
		// Opened by Listen for a Run that never came.
		a.metricsLis.Close()
	}
	if a.alerts != nil {
		// Past Run's grace, or without Run: the alerts still pending are
		// edited to the timeout text now.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a.alerts.Shutdown(ctx)
	}
	if a.queue != nil {
		a.queue.Close()
	}
	if a.usage != nil {
		// After the drain: the last calls' lines are in.
		if err := a.usage.Close(); err != nil {
			a.log.Warn("closing the usage log", "err", err)
		}
	}
	if a.cost != nil {
		a.cost.Close()
	}
	if a.cache != nil {
		a.cache.Close()
	}
	if a.redis != nil {
		if err := a.redis.Close(); err != nil {
			a.log.Warn("closing the Redis client", "err", err)
		}
		a.redis = nil
	}
}

// NewLogger is the service's logger, in the configured level and format.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// A failure that repeats (no model server at start) is one error,
	// then a counted warning now and then.
	return slog.New(logrepeat.New(h, nil))
}

// RedisLogger carries go-redis's own log lines (pool and connection
// trouble) into log; main installs it with redis.SetLogger.
type RedisLogger struct{ Log *slog.Logger }

// Printf implements go-redis's logging interface.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.Log.WarnContext(ctx, "redis client: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}
