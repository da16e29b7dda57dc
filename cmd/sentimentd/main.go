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
	"syscall"

	"github.com/catalystbot/sentiment/config"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/lexicon"
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
	mgr, err := gpu.FromConfig(cfg, queue, log)
	if err != nil {
		log.Error("building the GPU manager", "err", err)
		return 1
	}
	routerOpts := []router.Option{router.WithGPUQueue(queue)}
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
		log.Error("listening", "addr", cfg.GRPCAddr, "err", err)
		return 1
	}
	fmt.Fprintf(stdout, "LISTENING %s\n", lis.Addr())
	log.Info("serving", "addr", lis.Addr().String(), "tls", cfg.TLSCert != "", "auth", len(cfg.AuthTokens) > 0, "version", server.Version)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
