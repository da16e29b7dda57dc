// Package metrics is the service's Prometheus view: the gRPC server's
// metrics, every upstream call as the router's observer hears it, and the
// parts' own counters and gauges read from their snapshots at scrape
// time, so that nothing but the per-call counters sits on the request
// path and /metrics agrees with Stats by construction.
//
// Every label set is bounded: tiers, providers, windows, outcomes, error
// kinds, cards. Never a ticker, an item id or a text.
package metrics

import (
	"context"
	"net/http"
	"regexp"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/cost"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/notifier"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/usage"
)

const namespace = "sentiment"

// callBuckets are sized for model calls: a cached or rejected call in tens
// of milliseconds, a warm local model in one or two seconds, a cold load
// or a slow cloud call up to a minute.
var callBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60}

// rpcBuckets are the gRPC handling times: a lexicon answer in tens of
// microseconds, a model's in seconds.
var rpcBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Sources are the parts' snapshots, read at every scrape. A nil source is
// a part the service does not run (no GPU manager, no cache, no alerts):
// its families are left out.
type Sources struct {
	Tiers    func(context.Context) []router.TierStats
	Pipeline func() pipeline.Stats
	Cache    func() cache.Stats
	Queue    func() batcher.Stats
	GPU      func() gpu.Status
	Alerts   func() notifier.Stats
	Cost     func(context.Context) cost.Snapshot
	UsageLog func() usage.Stats
}

// Metrics is the registry and the per-call instruments. It is safe for
// concurrent use.
type Metrics struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	errors  *prometheus.CounterVec
	retries *prometheus.CounterVec
	tokens  *prometheus.CounterVec
	cost    *prometheus.CounterVec
}

// New builds the registry: a private one, so that a second server in one
// process (a test) registers nothing twice.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(
			grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(rpcBuckets)),
		),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "calls_total",
			Help: "Model calls by tier and outcome (ok, error, invalid_answer).",
		}, []string{"tier", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "call_duration_seconds",
			Help: "Time of each model call, failed ones included.", Buckets: callBuckets,
		}, []string{"tier"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "errors_total",
			Help: "Failed model calls by tier and kind (timeout, http_503, connection, invalid_answer, ...).",
		}, []string{"tier", "kind"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "retries_total",
			Help: "Model calls that were retries of a failed one, by tier.",
		}, []string{"tier"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "upstream", Name: "tokens_total",
			Help: "Tokens sent (in) and received (out), by tier.",
		}, []string{"tier", "direction"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cost_usd_total",
			Help: "USD spent on model calls since start, by provider.",
		}, []string{"provider"}),
	}
	for _, t := range []router.Tier{router.TierLocal, router.TierGemini, router.TierAnthropic} {
		// Every tier shows from the first scrape, at zero.
		for _, o := range []router.Outcome{router.OutcomeOK, router.OutcomeError, router.OutcomeInvalidAnswer} {
			m.calls.WithLabelValues(t.String(), outcomeLabel(o))
		}
		m.latency.WithLabelValues(t.String())
		m.retries.WithLabelValues(t.String())
		m.cost.WithLabelValues(t.String())
	}
	m.reg.MustRegister(
		m.grpc, m.calls, m.latency, m.errors, m.retries, m.tokens, m.cost,
		&snapshots{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// GRPC is the gRPC server's metrics: its interceptors go in the server's
// chains, and InitializeMetrics(server) shows every method at zero.
func (m *Metrics) GRPC() *grpcprom.ServerMetrics { return m.grpc }

// Registry is the registry, for tests that gather it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveCall counts one model call: the router's observer.
func (m *Metrics) ObserveCall(_ context.Context, c router.Call) {
	tier := c.Tier.String()
	m.calls.WithLabelValues(tier, outcomeLabel(c.Outcome)).Inc()
	m.latency.WithLabelValues(tier).Observe(c.Latency.Seconds())
	if c.Outcome != router.OutcomeOK {
		m.errors.WithLabelValues(tier, kindLabel(c.ErrorType)).Inc()
	}
	if c.Retry > 0 {
		m.retries.WithLabelValues(tier).Inc()
	}
	if c.Usage.TokensIn > 0 {
		m.tokens.WithLabelValues(tier, "in").Add(float64(c.Usage.TokensIn))
	}
	if c.Usage.TokensOut > 0 {
		m.tokens.WithLabelValues(tier, "out").Add(float64(c.Usage.TokensOut))
	}
	if c.CostUSD > 0 {
		m.cost.WithLabelValues(tier).Add(c.CostUSD)
	}
}

func outcomeLabel(o router.Outcome) string {
	switch o {
	case router.OutcomeOK:
		return "ok"
	case router.OutcomeInvalidAnswer:
		return "invalid_answer"
	}
	return "error"
}

// kindPattern is what an error kind label may look like; anything else
// (which the router never makes) is "other", so the label set stays
// bounded.
var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func kindLabel(k string) string {
	if kindPattern.MatchString(k) {
		return k
	}
	return "other"
}

// Handler serves /metrics and /healthz (a plain-HTTP probe: the process
// answers).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// scrapeTimeout bounds the snapshots that ask Redis (the shared quota
// windows).
const scrapeTimeout = 2 * time.Second
