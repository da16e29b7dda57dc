// Command sentimentctl is the owner's command-line client of
// catalyst-sentiment: it judges one headline, streams a file of news items
// through ClassifyBatch with a progress bar, and shows the service's
// dashboard (quotas, breakers, errors, cache, prefilter, GPU, alerts, cost).
//
// Global flags may come before or after the command; run
// "sentimentctl -help" for the commands, flags and exit statuses.
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
	"time"
)

// Exit statuses, as -help and the README document them.
const (
	exitOK          = 0
	exitFailed      = 1 // batch items failed, or a call failed on the server
	exitUsage       = 2 // bad flags or arguments, unreadable file, bad input line
	exitUnreachable = 3 // the server could not be reached
)

const usage = `sentimentctl: the command-line client of catalyst-sentiment

Usage:
  sentimentctl [global flags] <command> [flags] [arguments]

Commands:
  classify "headline" [--ticker T] [--summary S] [--id ID] [--require-llm] [--skip-cache]
           [--tiers local,gemini,...]
        judge one news item and print the answer; --tiers names the tiers
        that may answer (lexicon, local, gemini, anthropic)
  alert "headline" [--ticker T] [--price P] [--change PCT] [--channel C] [--id ID]
        post a progressive Discord alert: the preliminary post at once, the
        model's answer as an edit; prints the channel and message id
  batch FILE|- [-o FILE] [--concurrency 64] [--progress auto|bar|plain|none]
        judge every item of a JSON-lines or CSV file (- reads stdin) over one
        ClassifyBatch stream; results as JSON lines, a summary on stderr
  gpu   show the GPU: VRAM, pressure, the local model, cleanups, the GPU queue
  stats show the dashboard: quotas, breakers, errors, cache, prefilter,
        alerts, cost and the GPU
  watch [--interval 2s] [--count N]
        refresh the dashboard every interval until Ctrl-C (or N times)

Global flags (before or after the command; -flag and --flag are the same):
  --addr host:port   the server [$SENTIMENT_ADDR, else localhost:50051]; every
                     replica with dns:///name:port: calls go round-robin, a
                     batch whose replica goes away resumes on another
  --token T          bearer token, sent as "authorization: Bearer T" [$SENTIMENT_TOKEN]
  --tls              use TLS, trusting the system's roots
  --tls-ca FILE      use TLS, trusting the PEM certificates in FILE
  --timeout D        deadline of each unary call [30s]; a batch stream has
                     no deadline unless --timeout is given, and then it
                     bounds the whole stream
  --json             machine output: the responses as protojson (proto field
                     names); batch writes its summary as one JSON object, the
                     last line on stderr

Batch input: JSON lines of NewsItem in protojson, e.g.
  {"id":"1","ticker":"ACME","title":"Acme raises guidance"}
or CSV with a header naming the columns: id,ticker,title[,summary] (source
and url may be added). The format comes from the extension (.csv; .jsonl,
.ndjson, .json) or else from the first character. Every item needs an id,
unique in the file: results are matched to items by it.

Exit status:
  0  ok
  1  some batch items failed or were not answered, or a call failed with an
     error from the server (bad item, require_llm unmet, bad token)
  2  usage: bad flags or arguments, an unreadable file, a bad input line
     (named as file:line)
  3  the server could not be reached (refused, not answering in time, TLS
     handshake failed)
`

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole command; main only supplies the process's environment.
// Ctrl-C (SIGINT) or SIGTERM cancels what is running: watch then ends with
// status 0, a batch stops and reports what was answered.
func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	return c.run(ctx, args)
}

// cli is one invocation's surroundings: the streams, the environment and
// the clock (tests set it to make progress lines and timings exact).
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
}

// command is the implementation of the command named name.
func command(name string) (func(*cli, context.Context, *globals, []string) error, bool) {
	switch name {
	case "classify":
		return (*cli).classify, true
	case "alert":
		return (*cli).alert, true
	case "batch":
		return (*cli).batch, true
	case "gpu":
		return (*cli).gpu, true
	case "stats":
		return (*cli).stats, true
	case "watch":
		return (*cli).watch, true
	}
	return nil, false
}

func (c *cli) run(ctx context.Context, args []string) int {
	g := newGlobals(c.getenv)
	fs := flag.NewFlagSet("sentimentctl", flag.ContinueOnError)
	g.register(fs)
	rest, err := parseInterspersed(fs, args, true)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(c.stdout, usage)
		return exitOK
	}
	if err != nil {
		return c.fail(usageErr("%v", err))
	}
	g.noteSet(fs)
	if len(rest) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	if rest[0] == "help" {
		fmt.Fprint(c.stdout, usage)
		return exitOK
	}
	cmd, ok := command(rest[0])
	if !ok {
		return c.fail(usageErr("unknown command %q (commands: classify, alert, batch, gpu, stats, watch)", rest[0]))
	}
	return c.fail(cmd(c, ctx, g, rest[1:]))
}

// fail prints err, unless it was said already, and returns its exit status.
func (c *cli) fail(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if !errors.Is(err, errReported) {
		fmt.Fprintln(c.stderr, "sentimentctl:", err)
	}
	var e *exitError
	if errors.As(err, &e) && e.hint {
		fmt.Fprintln(c.stderr, `run "sentimentctl -help" for usage`)
	}
	return exitCode(err)
}
