package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.uber.org/goleak"

	"github.com/catalystbot/sentiment/config"
	"github.com/catalystbot/sentiment/internal/app"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig has no model tier: answers come from the lexicon, whatever
// runs on the machine's Ollama port, and no cache, so that every item is
// judged.
func testConfig() config.Config {
	cfg := config.Default()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.ShutdownGrace = 5 * time.Second
	cfg.Local.Enabled = false
	cfg.Cache = false
	return cfg
}

// startServer serves the service, built by its composition root without
// a GPU manager (nothing of the machine's GPU is read), on a loopback
// port, and returns its address.
func startServer(t *testing.T, cfg config.Config) string {
	t.Helper()
	a, err := app.New(t.Context(), cfg, slog.New(slog.DiscardHandler), app.WithoutGPUManager())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Server().Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Server().Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
	})
	return lis.Addr().String()
}

// openPTY opens a pseudo-terminal for the tests of what a terminal shows.
// Without one they are skipped, except under CI, where a missing terminal
// must fail them rather than hide them.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no pseudo-terminal (CI is set, so the terminal tests must run): %v", err)
		}
		t.Skipf("no pseudo-terminal: %v", err)
	}
	return ptmx, tty
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// stepClock is a clock that moves on by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newStepClock(step time.Duration) *stepClock {
	return &stepClock{t: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC), step: step}
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// invocation is one run of the command in-process.
type invocation struct {
	env    map[string]string
	stdin  io.Reader
	stdout io.Writer // a buffer when nil
	stderr io.Writer // a buffer when nil
	now    func() time.Time
	ctx    context.Context
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command with args. Without a clock or a context it goes
// through run itself, as main does.
func runCLI(t *testing.T, inv invocation, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	stdout, stderr := inv.stdout, inv.stderr
	if stdout == nil {
		stdout = &out
	}
	if stderr == nil {
		stderr = &errb
	}
	stdin := inv.stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	getenv := func(k string) string { return inv.env[k] }
	var code int
	if inv.now == nil && inv.ctx == nil {
		code = run(args, getenv, stdin, stdout, stderr)
	} else {
		now, ctx := inv.now, inv.ctx
		if now == nil {
			now = time.Now
		}
		if ctx == nil {
			ctx = t.Context()
		}
		c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, now: now}
		code = c.run(ctx, args)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string // a part of it
		stderr   string // a part of it
		noStderr bool
	}{
		{name: "help", args: []string{"-help"}, code: 0, stdout: "Exit status:", noStderr: true},
		{name: "help word", args: []string{"help"}, code: 0, stdout: "3  the server could not be reached", noStderr: true},
		{name: "no command", args: nil, code: 2, stderr: "Commands:"},
		{name: "unknown command", args: []string{"judge"}, code: 2, stderr: `unknown command "judge"`},
		{name: "unknown flag", args: []string{"--colour", "stats"}, code: 2, stderr: "flag provided but not defined: -colour"},
		{name: "classify help", args: []string{"classify", "-help"}, code: 0, stdout: "-ticker", noStderr: true},
		{name: "classify without headline", args: []string{"classify", "--ticker", "ACME"}, code: 2, stderr: "a headline is required"},
		{name: "alert help", args: []string{"alert", "-help"}, code: 0, stdout: "-price", noStderr: true},
		{name: "classify tiers help", args: []string{"classify", "-help"}, code: 0, stdout: "-tiers", noStderr: true},
		{name: "classify bad flag", args: []string{"classify", "x", "--tickr", "ACME"}, code: 2, stderr: "-tickr"},
		{name: "batch without file", args: []string{"batch"}, code: 2, stderr: "one input file"},
		{name: "batch two files", args: []string{"batch", "a", "b"}, code: 2, stderr: "got 2 arguments"},
		{name: "batch bad progress", args: []string{"batch", "--progress", "fancy", "x.jsonl"}, code: 2, stderr: `--progress "fancy"`},
		{name: "batch bad concurrency", args: []string{"batch", "--concurrency", "0", "x.jsonl"}, code: 2, stderr: "--concurrency 0"},
		{name: "batch missing file", args: []string{"batch", "no-such-file.jsonl"}, code: 2, stderr: "no-such-file.jsonl"},
		{name: "watch bad interval", args: []string{"watch", "--interval", "0s"}, code: 2, stderr: "--interval 0s"},
		{name: "stats argument", args: []string{"stats", "now"}, code: 2, stderr: "takes no arguments"},
		{name: "unreadable CA", args: []string{"--tls-ca", "no-such-ca.pem", "stats"}, code: 2, stderr: "no-such-ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, invocation{}, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, r.stderr)
			}
			if tt.noStderr && r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
		})
	}
}

// TestUnreachable: a server that cannot be reached is exit status 3 for
// every command, and the message names the address.
func TestUnreachable(t *testing.T) {
	addr := closedAddr(t)
	file := writeJSONL(t, 3)
	for _, args := range [][]string{
		{"classify", "Acme beats estimates"},
		{"alert", "Acme beats estimates"},
		{"batch", file},
		{"gpu"},
		{"stats"},
		{"watch", "--count", "1"},
	} {
		t.Run(args[0], func(t *testing.T) {
			r := runCLI(t, invocation{env: map[string]string{"SENTIMENT_ADDR": addr}}, args...)
			if r.code != exitUnreachable {
				t.Errorf("exit status %d, want 3\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "cannot reach "+addr) {
				t.Errorf("stderr does not name %s: %s", addr, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
}
