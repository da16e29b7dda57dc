// Command llmsim is a simulated world for demos and load tests of
// sentimentd: one process, on one loopback port, serving Ollama's API, an
// OpenAI-compatible server, Gemini, Anthropic and Discord's webhooks, with
// set latency, slots, failures, 429 storms and a VRAM leak written into a
// fake sysfs tree that sentimentd's GPU manager reads. A control API under
// /_sim/ changes the knobs at run time and reports what each upstream saw.
//
// Once listening it prints "LISTENING host:port" as the first line on
// stdout, so that scripts asking for port 0 learn the port; logs go to
// stderr. SIGINT or SIGTERM stops it. llmsim -help documents the flags,
// the scenario schema and the control API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/catalystbot/sentiment/internal/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// shutdownGrace is how long calls being answered get once a stop is
// asked for; held calls (hangs, queues) are dropped at once.
const shutdownGrace = 5 * time.Second

// run serves until ctx ends. It returns 0 after a clean stop, 2 for a bad
// flag or scenario, 1 when it cannot serve.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "llmsim:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := sim.New(cfg.scenario, sim.Options{SysfsRoot: cfg.sysfs, Log: log})
	if err != nil {
		fmt.Fprintln(stderr, "llmsim:", err)
		return 1
	}
	defer s.Close()
	lis, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		fmt.Fprintln(stderr, "llmsim:", err)
		return 1
	}
	fmt.Fprintf(stdout, "LISTENING %s\n", lis.Addr())
	log.Info("serving", "addr", lis.Addr().String(), "seed", s.Scenario().Seed, "sysfs", cfg.sysfs)

	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		fmt.Fprintln(stderr, "llmsim:", err)
		return 1
	case <-ctx.Done():
	}
	s.Close()
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
	}
	<-served
	log.Info("stopped")
	return 0
}

// config is what the flags say.
type config struct {
	addr, sysfs string
	scenario    sim.Scenario
}

// parseFlags reads the flags: the scenario file first, then the flags that
// override its knobs.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("llmsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		file     string
		seed     uint64
		latency  perUpstream
		slots    perUpstream
		queue    perUpstream
		crash    bool
		leak     uint64
		keepLeak bool
		vram     uint64
		model    uint64
	)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:11500", "listen address; port 0 picks one, printed as LISTENING host:port")
	fs.StringVar(&file, "scenario", "", "JSON scenario `file` (schema below); flags override it")
	fs.StringVar(&cfg.sysfs, "sysfs", "", "write the simulated card's sysfs tree under `dir` (for SENTIMENT_GPU_SYSFS_ROOT)")
	fs.Uint64Var(&seed, "seed", 0, "seed of the random draws; 0 picks one (printed at start and in the state)")
	fs.Var(&latency, "latency", "latency of the model APIs, as a `spec`: 200ms, 100ms-300ms (uniform) or 200ms~50ms (normal); name=spec,... for some (ollama=1s,discord=50ms)")
	fs.Var(&slots, "slots", "parallel slots of the model APIs (`n`, 0: no limit); name=n,... for some")
	fs.Var(&queue, "queue", "calls that may wait for a slot (`n`); name=n,... for some")
	fs.BoolVar(&crash, "crash-when-full", false, "Ollama answers a full queue with the crashed runner's 500, not 503")
	fs.Uint64Var(&leak, "leak-mib", 0, "VRAM each Ollama call leaks, in MiB")
	fs.BoolVar(&keepLeak, "keep-leak", false, "an unload keeps the leak (as Ollama on ROCm); only POST /_sim/ollama/restart frees it")
	fs.Uint64Var(&vram, "vram-mib", 0, "the card's VRAM in MiB (default 16368, an RX 6800)")
	fs.Uint64Var(&model, "model-mib", 0, "VRAM a loaded model takes, in MiB (default 4899)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
		fmt.Fprint(stderr, "\n", sim.ScenarioHelp, "\n", sim.ControlHelp)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see -help)", fs.Arg(0))
	}

	cfg.scenario = sim.Default()
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return cfg, err
		}
		if cfg.scenario, err = sim.ParseScenario(data, cfg.scenario); err != nil {
			return cfg, fmt.Errorf("%s: %w", file, err)
		}
	}
	sc := &cfg.scenario
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["seed"] {
		sc.Seed = seed
	}
	if err := latency.apply(sc, "latency", func(u *sim.Upstream, v string) error {
		l, err := sim.ParseLatency(v)
		u.Latency = l
		return err
	}); err != nil {
		return cfg, err
	}
	count := func(dst func(*sim.Upstream) *int) func(*sim.Upstream, string) error {
		return func(u *sim.Upstream, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%q is not a count", v)
			}
			*dst(u) = n
			return nil
		}
	}
	if err := slots.apply(sc, "slots", count(func(u *sim.Upstream) *int { return &u.Slots })); err != nil {
		return cfg, err
	}
	if err := queue.apply(sc, "queue", count(func(u *sim.Upstream) *int { return &u.Queue })); err != nil {
		return cfg, err
	}
	if set["crash-when-full"] {
		sc.Ollama.CrashWhenFull = crash
	}
	if set["leak-mib"] {
		sc.GPU.LeakMiBPerCall = leak
	}
	if set["keep-leak"] {
		sc.GPU.FreeOnUnload = !keepLeak
	}
	if set["vram-mib"] {
		sc.GPU.TotalMiB = vram
	}
	if set["model-mib"] {
		sc.GPU.ModelMiB = model
	}
	if err := sc.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

const usageHead = `llmsim: a simulated Ollama, OpenAI-compatible server, Gemini, Anthropic and
Discord on one loopback port, for demos and load tests of sentimentd.

Usage: llmsim [flags]

Flags:
`

// perUpstream is a flag whose value is either one value for every model
// API ("200ms") or name=value pairs for some upstreams
// ("ollama=1s,discord=50ms").
type perUpstream struct {
	raw string
	set bool
}

func (p *perUpstream) String() string { return p.raw }

func (p *perUpstream) Set(v string) error {
	p.raw, p.set = v, true
	return nil
}

// apply sets the knob on the upstreams the flag names, through set.
func (p *perUpstream) apply(sc *sim.Scenario, flagName string, set func(*sim.Upstream, string) error) error {
	if !p.set {
		return nil
	}
	bad := func(err error) error { return fmt.Errorf("-%s %q: %w", flagName, p.raw, err) }
	if !strings.Contains(p.raw, "=") {
		for _, name := range sim.ModelNames {
			u, _ := sc.Upstream(name)
			if err := set(u, strings.TrimSpace(p.raw)); err != nil {
				return bad(err)
			}
		}
		return nil
	}
	for pair := range strings.SplitSeq(p.raw, ",") {
		name, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return bad(fmt.Errorf("%q is not name=value", pair))
		}
		u, ok := sc.Upstream(strings.TrimSpace(name))
		if !ok {
			return bad(fmt.Errorf("no upstream %q (%s)", name, strings.Join(sim.Names, ", ")))
		}
		if err := set(u, strings.TrimSpace(v)); err != nil {
			return bad(err)
		}
	}
	return nil
}
