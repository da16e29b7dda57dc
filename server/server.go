// Package server adapts the gRPC contract to the request path (the
// pipeline package): it converts requests and answers between the
// generated types, which stop here, and the pipeline's plain ones, maps
// errors to status codes in one place, and names fields by their paths in
// the contract. It also owns the gRPC server itself: interceptors (request
// id, logging, panic recovery, auth, the checks only the wire needs),
// health, reflection, TLS and graceful shutdown. It holds no request
// policy.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/cache"
	"github.com/catalystbot/sentiment/cost"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/notifier"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/usage"
)

// Version is reported by Stats; main may set it at link time.
var Version = "dev"

// Config is the server's own settings.
type Config struct {
	// Addr is where the server listens; it decides whether bearer tokens
	// over plaintext deserve a warning.
	Addr string
	// AuthTokens, when not empty, are the bearer tokens a caller must
	// present; health checks stay open.
	AuthTokens []secret.Secret
	// TLSCert and TLSKey, when set, are the PEM files the server serves
	// TLS with.
	TLSCert, TLSKey string
	// BatchConcurrency is how many items of one ClassifyBatch stream are
	// judged at once; the stream reads no further item until one ends.
	BatchConcurrency int
	// CostAlertDaily and CostAlertMonthly are shown in Stats.
	CostAlertDaily, CostAlertMonthly float64
}

// Server is the SentimentService and the gRPC server that carries it.
type Server struct {
	pb.UnimplementedSentimentServiceServer

	cfg    Config
	log    *slog.Logger
	pipe   Pipeline
	tiers  Tiers
	gpu    GPU
	queue  Queue
	cache  Cache
	alerts Alerts
	cost   Cost
	usage  UsageLog
	now    func() time.Time

	grpcMetrics *grpcprom.ServerMetrics

	grpc   *grpc.Server
	health *health.Server
	stats  counters

	started time.Time
	// draining is closed when shutdown begins: batch streams stop reading
	// new items, answer the ones they accepted and end.
	draining  chan struct{}
	drainOnce sync.Once
}

// Pipeline is the request path (the pipeline package).
type Pipeline interface {
	Judge(ctx context.Context, req pipeline.Request, also ...pipeline.Listener) (pipeline.Answer, error)
	// Abort answers every call still waiting for a model at once.
	Abort()
	Stats() pipeline.Stats
}

// Tiers reports the model tiers for Stats (the router).
type Tiers interface {
	Stats(ctx context.Context) []router.TierStats
}

// GPU is the GPU manager as GPUStatus and CleanupGPU need it.
type GPU interface {
	Status() gpu.Status
	RequestCleanup(reason string) error
}

// Cache is the answer cache as Stats needs it.
type Cache interface {
	Stats() cache.Stats
}

// WithCache reports c's counts in Stats.
func WithCache(c Cache) Option { return func(s *Server) { s.cache = c } }

// Alerts is the Discord notifier: it resolves the channels alerts name,
// posts the Alert RPC's alerts and counts them for Stats. The Classify
// calls' alerts reach it as a pipeline listener.
type Alerts interface {
	Channel(field, name string) (string, *pipeline.FieldError)
	Alert(ctx context.Context, judge notifier.Judge, req pipeline.Request) (notifier.Result, error)
	Channels() []notifier.ChannelInfo
	Stats() notifier.Stats
}

// WithAlerts serves alerts through a; without it, a request that asks for
// one is refused: no channel is configured.
func WithAlerts(a Alerts) Option { return func(s *Server) { s.alerts = a } }

// Cost is the cost totals as Stats needs them.
type Cost interface {
	Snapshot(ctx context.Context) cost.Snapshot
}

// WithCost reports c's totals in Stats; without it Stats shows the
// configured thresholds alone.
func WithCost(c Cost) Option { return func(s *Server) { s.cost = c } }

// UsageLog is the usage log as Stats needs it.
type UsageLog interface {
	Stats() usage.Stats
}

// WithUsageLog reports u's line counts in Stats.
func WithUsageLog(u UsageLog) Option { return func(s *Server) { s.usage = u } }

// WithGRPCMetrics counts every RPC in m (go-grpc-middleware's Prometheus
// provider): its interceptors run outermost, and every method shows at
// zero from the start.
func WithGRPCMetrics(m *grpcprom.ServerMetrics) Option { return func(s *Server) { s.grpcMetrics = m } }

// Queue is the GPU queue as GPUStatus needs it.
type Queue interface {
	Stats() batcher.Stats
}

// Option changes how New builds a Server.
type Option func(*Server)

// WithGPU reports g's view in GPUStatus; without it GPUStatus says that no
// GPU manager runs.
func WithGPU(g GPU) Option { return func(s *Server) { s.gpu = g } }

// WithQueue reports the GPU queue q in GPUStatus. The queue runs without a
// GPU manager too (an OpenAI-compatible local tier, a manager turned off),
// and its shared slots matter most when several replicas run.
func WithQueue(q Queue) Option { return func(s *Server) { s.queue = q } }

// WithClock replaces the wall clock used for uptime.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New builds the server over the request path p and the tiers' stats t.
func New(cfg Config, p Pipeline, t Tiers, log *slog.Logger, opts ...Option) (*Server, error) {
	if p == nil || t == nil {
		return nil, errors.New("server: a pipeline and the tiers' stats are required")
	}
	if cfg.BatchConcurrency < 1 {
		return nil, fmt.Errorf("server: BatchConcurrency=%d: must be at least 1", cfg.BatchConcurrency)
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		pipe:     p,
		tiers:    t,
		now:      time.Now,
		health:   health.NewServer(),
		draining: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.started = s.now()

	if len(cfg.AuthTokens) > 0 && cfg.TLSCert == "" && !loopback(cfg.Addr) {
		log.Warn("bearer tokens travel in plaintext: anyone on the network path can read them; set SENTIMENT_TLS_CERT and SENTIMENT_TLS_KEY, or listen on a loopback address",
			"addr", cfg.Addr)
	}
	gopts, err := s.serverOptions()
	if err != nil {
		return nil, err
	}
	s.grpc = grpc.NewServer(gopts...)
	pb.RegisterSentimentServiceServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if s.grpcMetrics != nil {
		s.grpcMetrics.InitializeMetrics(s.grpc)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(pb.SentimentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// serverOptions builds the interceptor chains and transport credentials.
// Order, outermost first: the RPC metrics (when on), request id (so every log line has one), logging
// (so it sees the final code, INTERNAL after a panic included), recovery,
// auth, validation.
func (s *Server) serverOptions() ([]grpc.ServerOption, error) {
	recoveryOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		// The stack goes to our log only; the caller learns nothing of our
		// insides.
		s.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "request_id", requestID(ctx), "stack", string(stack()))
		return status.Error(codes.Internal, "internal error")
	})
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if s.grpcMetrics != nil {
		unary = append(unary, s.grpcMetrics.UnaryServerInterceptor())
		stream = append(stream, s.grpcMetrics.StreamServerInterceptor())
	}
	unary = append(unary,
		unaryRequestID,
		unaryLogging(s.log),
		recovery.UnaryServerInterceptor(recoveryOpt),
	)
	stream = append(stream,
		streamRequestID,
		streamLogging(s.log),
		recovery.StreamServerInterceptor(recoveryOpt),
	)
	if len(s.cfg.AuthTokens) > 0 {
		check := bearerCheck(s.cfg.AuthTokens)
		unary = append(unary, selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(check), selector.MatchFunc(needsAuth)))
		stream = append(stream, selector.StreamServerInterceptor(auth.StreamServerInterceptor(check), selector.MatchFunc(needsAuth)))
	}
	unary = append(unary, s.unaryValidation)
	stream = append(stream, streamValidation)

	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.ForceServerCodecV2(newUTF8Codec()),
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
	}
	if s.cfg.TLSCert != "" {
		creds, err := credentials.NewServerTLSFromFile(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", s.cfg.TLSCert, s.cfg.TLSKey, err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	return opts, nil
}

// loopback reports whether addr (host:port) listens on loopback only; an
// empty host or a wildcard listens on every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// needsAuth leaves health checks open: load balancers and supervisors
// probe without credentials.
func needsAuth(_ context.Context, c interceptors.CallMeta) bool {
	return c.Service != healthpb.Health_ServiceDesc.ServiceName
}

// bearerCheck accepts a call whose "authorization: Bearer <token>" names
// one of the tokens. Tokens are compared in constant time and never logged.
func bearerCheck(tokens []secret.Secret) auth.AuthFunc {
	want := make([][]byte, len(tokens))
	for i, t := range tokens {
		want[i] = []byte(t.Reveal())
	}
	return func(ctx context.Context) (context.Context, error) {
		got, err := auth.AuthFromMD(ctx, "bearer")
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, "a bearer token is required: send metadata \"authorization: Bearer <token>\"")
		}
		ok := 0
		for _, w := range want {
			ok |= subtle.ConstantTimeCompare([]byte(got), w)
		}
		if ok != 1 {
			return nil, status.Error(codes.Unauthenticated, "the bearer token is not valid")
		}
		return ctx, nil
	}
}

// Serve answers calls on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serving gRPC on %s: %w", lis.Addr(), err)
	}
	return nil
}

// finalAnswerWait bounds how long Shutdown waits, once the grace has run
// out and the calls in flight were told to answer from the lexicon, for
// those answers to be sent before it cuts the connections.
const finalAnswerWait = 2 * time.Second

// Shutdown stops taking calls and lets in-flight calls and streams finish
// until ctx is done. Health turns NOT_SERVING first so load balancers stop
// sending work. When ctx ends first, every call and batch item still
// waiting for a model is answered at once with its lexicon answer, marked
// degraded because the server is shutting down, and each batch stream ends
// with a status that says so: nothing accepted is left unanswered. Only
// what cannot even be sent within finalAnswerWait is cut.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
	s.drainOnce.Do(func() { close(s.draining) })
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.log.Warn("shutdown grace ran out: answering the calls in flight from the lexicon")
	s.pipe.Abort()
	t := time.NewTimer(finalAnswerWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("cutting the connections that are left")
		s.grpc.Stop()
		<-done
	}
}
