package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/catalystbot/sentiment/secret"
)

// Defaults of the global flags.
const (
	defaultAddr    = "localhost:50051"
	defaultTimeout = 30 * time.Second
)

// globals are the flags every command takes. They are registered on the
// top-level flag set and again on each command's, with the values parsed so
// far as defaults, so that they may come before or after the command.
type globals struct {
	addr    string
	token   tokenValue
	tls     bool
	tlsCA   string
	timeout time.Duration
	json    bool

	// timeoutSet is true when --timeout was given: only then does a batch
	// stream get a deadline.
	timeoutSet bool
}

func newGlobals(getenv func(string) string) *globals {
	g := &globals{addr: defaultAddr, timeout: defaultTimeout}
	if a := getenv("SENTIMENT_ADDR"); a != "" {
		g.addr = a
	}
	g.token = tokenValue(getenv("SENTIMENT_TOKEN"))
	return g
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "the server's `host:port` ($SENTIMENT_ADDR)")
	fs.Var(&g.token, "token", "bearer `token` sent as \"authorization: Bearer <token>\" ($SENTIMENT_TOKEN)")
	fs.BoolVar(&g.tls, "tls", g.tls, "use TLS, trusting the system's roots")
	fs.StringVar(&g.tlsCA, "tls-ca", g.tlsCA, "use TLS, trusting the PEM certificates in `file`")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline of each unary call; a batch stream gets one only when this is given, for the whole stream")
	fs.BoolVar(&g.json, "json", g.json, "machine output: the responses as protojson")
}

// noteSet records which globals fs saw.
func (g *globals) noteSet(fs *flag.FlagSet) {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "timeout" {
			g.timeoutSet = true
		}
	})
}

// tokenValue is the bearer token as a flag: it never prints, not even as
// a default in -help.
type tokenValue secret.Secret

func (t *tokenValue) String() string {
	if t == nil {
		return ""
	}
	return secret.Secret(*t).String()
}

func (t *tokenValue) Set(s string) error { *t = tokenValue(s); return nil }

func (t tokenValue) reveal() string { return secret.Secret(t).Reveal() }

// parseInterspersed parses fs's flags wherever they stand among args and
// returns the other arguments in order; "--" ends the flags. The standard
// flag package stops at the first argument that is not a flag, and a
// headline comes before its --ticker. When stopAtCommand is set, parsing
// stops at the first argument that is not a flag (the command's name): the
// rest belongs to the command.
func parseInterspersed(fs *flag.FlagSet, args []string, stopAtCommand bool) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if stopAtCommand {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// commandFlags is a command's flag set with the globals on it too.
func commandFlags(name string, g *globals) *flag.FlagSet {
	fs := flag.NewFlagSet("sentimentctl "+name, flag.ContinueOnError)
	g.register(fs)
	return fs
}

// parseCommand parses a command's arguments. On -help it prints the
// command's usage and its flags to stdout and returns flag.ErrHelp.
func (c *cli) parseCommand(fs *flag.FlagSet, g *globals, args []string, synopsis string) ([]string, error) {
	pos, err := parseInterspersed(fs, args, false)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(c.stdout, "Usage: %s\n\nFlags (global ones included):\n", synopsis)
		fs.SetOutput(c.stdout)
		fs.PrintDefaults()
		return nil, err
	}
	if err != nil {
		return nil, usageErr("%s: %v", fs.Name(), err)
	}
	g.noteSet(fs)
	return pos, nil
}
