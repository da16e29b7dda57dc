// Command sentimentd serves catalyst-sentiment's gRPC API.
//
// Settings come from flags and the environment (sentimentd -help lists
// them). Once listening it prints "LISTENING host:port" as the first line on
// stdout, so scripts and tests that ask for port 0 learn the port; logs go
// to stderr. SIGINT or SIGTERM drains in-flight calls within
// SENTIMENT_SHUTDOWN_GRACE and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/config"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/limiter"
	"github.com/catalystbot/sentiment/router"
	"github.com/catalystbot/sentiment/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sentimentd:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	// go-redis logs through a package-level logger; its lines join ours,
	// in our format.
	redis.SetLogger(redisLogger{log})

	scorer, err := lexicon.New()
	if err != nil {
		log.Error("loading the lexicon", "err", err)
		return 1
	}
	queue, err := router.NewGPUQueue(cfg)
	if err != nil {
		log.Error("building the GPU queue", "err", err)
		return 1
	}
	oc := router.LocalOllama(cfg)
	var ctl gpu.Controller
	if oc != nil {
		ctl = oc
	}
	mgr, err := gpu.FromConfig(cfg, ctl, queue, log)
	if err != nil {
		log.Error("building the GPU manager", "err", err)
		return 1
	}
	quota, err := limiter.FromConfig(cfg, log)
	if err != nil {
		log.Error("building the quota limiter", "err", err)
		return 1
	}
	defer quota.Close()
	// A Redis that cannot be reached is said at once, not at the first call.
	checkCtx, cancelCheck := context.WithTimeout(context.Background(), time.Second)
	_ = quota.Check(checkCtx)
	cancelCheck()
	routerOpts := []router.Option{router.WithGPUQueue(queue), router.WithQuota(quota), router.WithOllama(oc)}
	var serverOpts []server.Option
	if mgr != nil {
		routerOpts = append(routerOpts, router.WithLocalGate(mgr))
		serverOpts = append(serverOpts, server.WithGPU(mgr))
	}
	rt, err := router.FromConfig(cfg, log, routerOpts...)
	if err != nil {
		log.Error("building the router", "err", err)
		return 1
	}
	defer rt.Close()
	srv, err := server.New(cfg, scorer, rt, log, serverOpts...)
	if err != nil {
		log.Error("building the server", "err", err)
		return 1
	}
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return startupError(stderr, config.Bad("SENTIMENT_GRPC_ADDR", cfg.GRPCAddr, fmt.Sprintf("must be an address this host can listen on (%v)", listenErr(err))))
	}
	// Signals are caught before the address is announced: whoever reads
	// LISTENING may stop the server at once, and gets a graceful stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "LISTENING %s\n", lis.Addr())
	log.Info("serving", "addr", lis.Addr().String(), "tls", cfg.TLSCert != "", "auth", len(cfg.AuthTokens) > 0, "version", server.Version)

	if mgr != nil {
		// The manager stops last: in-flight calls drain while it still
		// guards the GPU.
		mgrCtx, stopMgr := context.WithCancel(context.Background())
		mgrDone := make(chan struct{})
		go func() { mgr.Run(mgrCtx); close(mgrDone) }()
		defer func() { stopMgr(); <-mgrDone }()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	select {
	case err := <-served:
		if err != nil {
			log.Error("server stopped", "err", err)
			return 1
		}
		return 0
	case <-ctx.Done():
	}
	stop() // a second signal now kills the process at once
	log.Info("shutting down", "grace", cfg.ShutdownGrace)
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	srv.Shutdown(graceCtx)
	if err := <-served; err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// startupError prints a setting found unusable once put to work in the
// same one-line form as a bad value, and gives the same exit status.
func startupError(stderr io.Writer, err *config.SettingError) int {
	fmt.Fprintln(stderr, "sentimentd:", err)
	return 2
}

// listenErr keeps what went wrong of a listen error, without the
// address the message already shows.
func listenErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// redisLogger carries go-redis's own log lines (pool and connection
// trouble) into the service's log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}
