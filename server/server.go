// Package server adapts the gRPC contract to the service's parts: it
// validates requests, runs the request path and converts answers to the
// generated types, which stop here. It also owns the gRPC server itself:
// interceptors (request id, logging, panic recovery, auth, validation),
// health, reflection, TLS and graceful shutdown.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

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

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/secret"
)

// Version is reported by Stats; main may set it at link time.
var Version = "dev"

// Server is the SentimentService and the gRPC server that carries it.
type Server struct {
	pb.UnimplementedSentimentServiceServer

	cfg    config.Config
	log    *slog.Logger
	scorer Prescorer
	router Router
	gpu    GPU
	now    func() time.Time

	grpc   *grpc.Server
	health *health.Server
	stats  counters

	started time.Time
	// draining is closed when shutdown begins: batch streams stop reading
	// new items, answer the ones they accepted and end.
	draining  chan struct{}
	drainOnce sync.Once
	// abort is cancelled when the shutdown grace runs out: every call
	// still waiting for a model is answered from the lexicon at once.
	abort       context.Context
	abortCancel context.CancelCauseFunc
}

// Prescorer reads the sentiment of a text in microseconds; the lexicon
// package provides it.
type Prescorer interface {
	Score(text string) lexicon.Prescore
}

// Router judges an item with the language-model tiers; the router package
// provides it. It always answers: degraded with the lexicon's answer when no
// model could.
type Router interface {
	Judge(ctx context.Context, req router.Request) router.Result
	Stats(ctx context.Context) []router.TierStats
}

// GPU is the GPU manager as GPUStatus needs it.
type GPU interface {
	Status() gpu.Status
}

// WithGPU reports g's view in GPUStatus; without it GPUStatus says that no
// GPU manager runs.
func WithGPU(g GPU) Option { return func(s *Server) { s.gpu = g } }

// Option changes how New builds a Server; tests use them.
type Option func(*Server)

// WithClock replaces the wall clock used for latencies and uptime.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New builds the server from a validated Config.
func New(cfg config.Config, scorer Prescorer, rt Router, log *slog.Logger, opts ...Option) (*Server, error) {
	if scorer == nil || rt == nil {
		return nil, errors.New("server: a lexicon scorer and a router are required")
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		scorer:   scorer,
		router:   rt,
		now:      time.Now,
		health:   health.NewServer(),
		draining: make(chan struct{}),
	}
	s.abort, s.abortCancel = context.WithCancelCause(context.Background())
	for _, o := range opts {
		o(s)
	}
	s.started = s.now()

	if len(cfg.AuthTokens) > 0 && cfg.TLSCert == "" && !loopback(cfg.GRPCAddr) {
		log.Warn("bearer tokens travel in plaintext: anyone on the network path can read them; set SENTIMENT_TLS_CERT and SENTIMENT_TLS_KEY, or listen on a loopback address",
			"addr", cfg.GRPCAddr)
	}
	gopts, err := s.serverOptions()
	if err != nil {
		return nil, err
	}
	s.grpc = grpc.NewServer(gopts...)
	pb.RegisterSentimentServiceServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(pb.SentimentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s, nil
}

// serverOptions builds the interceptor chains and transport credentials.
// Order, outermost first: request id (so every log line has one), logging
// (so it sees the final code, INTERNAL after a panic included), recovery,
// auth, validation.
func (s *Server) serverOptions() ([]grpc.ServerOption, error) {
	recoveryOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		// The stack goes to our log only; the caller learns nothing of our
		// insides.
		s.log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "request_id", requestID(ctx), "stack", string(stack()))
		return status.Error(codes.Internal, "internal error")
	})
	unary := []grpc.UnaryServerInterceptor{
		unaryRequestID,
		unaryLogging(s.log),
		recovery.UnaryServerInterceptor(recoveryOpt),
	}
	stream := []grpc.StreamServerInterceptor{
		streamRequestID,
		streamLogging(s.log),
		recovery.StreamServerInterceptor(recoveryOpt),
	}
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
	s.abortCancel(errShuttingDown)
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
