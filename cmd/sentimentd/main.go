// Command sentimentd serves catalyst-sentiment's gRPC API.
//
// Settings come from flags and the environment (sentimentd -help lists
// them). Once listening it prints "LISTENING host:port" as the first line on
// stdout, so scripts and tests that ask for port 0 learn the port; logs go
// to stderr. SIGINT or SIGTERM drains in-flight calls within
// SENTIMENT_SHUTDOWN_GRACE and exits; a second signal kills at once. SIGHUP
// reopens the usage log (LLM_USAGE_LOG_PATH) for logrotate. A bad setting
// exits 2 with one line naming it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // SENTIMENT_COST_TZ in an image without a zone database

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/config"
	"github.com/catalystbot/sentiment/internal/app"
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
	log := app.NewLogger(cfg, stderr)
	redis.SetLogger(app.RedisLogger{Log: log})

	// Signals are caught before anything starts: whoever reads LISTENING
	// may stop the server at once, and gets a graceful stop. Once the first
	// arrives, the default comes back, so a second one kills.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return fail(stderr, err)
	}
	// SIGHUP reopens the usage log, after logrotate has moved it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hupDone := make(chan struct{})
	defer func() { signal.Stop(hup); close(hupDone) }()
	go func() {
		for {
			select {
			case <-hup:
				if err := a.ReopenLogs(); err != nil {
					log.Error("reopening the usage log", "err", err)
				} else {
					log.Info("usage log reopened")
				}
			case <-hupDone:
				return
			}
		}
	}()
	lis, err := a.Listen()
	if err != nil {
		a.Close()
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "LISTENING %s\n", lis.Addr())
	log.Info("serving", "addr", lis.Addr().String(), "tls", cfg.TLSCert != "", "auth", len(cfg.AuthTokens) > 0, "metrics", a.MetricsAddr())
	if err := a.Run(ctx, lis); err != nil {
		log.Error("server stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// fail prints why start-up failed: exit status 2 for a setting, 1 for
// anything else.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "sentimentd:", err)
	var se *config.SettingError
	if errors.As(err, &se) {
		return 2
	}
	return 1
}
