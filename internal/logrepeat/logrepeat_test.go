package logrepeat_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/logrepeat"
)

func TestRepeatsAreCountedAtWarn(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	var buf bytes.Buffer
	log := slog.New(logrepeat.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}), clock.Now))
	refused := errors.New("dial tcp 127.0.0.1:11434: connect: connection refused")
	warmup := func(wait time.Duration) { log.Error("model warm-up failed", "err", refused, "retry_in", wait) }

	warmup(time.Second) // the first: an error
	for range 5 {
		warmup(2 * time.Second) // within a second: counted
	}
	log.Error("model warm-up failed", "err", errors.New("model not found")) // another kind: an error
	log.Info("serving")                                                     // below error: as it is
	clock.Advance(time.Second)
	warmup(time.Second) // the summary of 6 repeats, at warn
	clock.Advance(time.Second)
	warmup(time.Second) // within the next 2 s: counted
	clock.Advance(time.Second)
	warmup(time.Second) // the summary of 2
	clock.Advance(logrepeat.Forget)
	warmup(time.Second) // quiet for long: an error again

	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=ERROR msg="model warm-up failed" err="dial tcp 127.0.0.1:11434: connect: connection refused" retry_in=1s`,
		`level=ERROR msg="model warm-up failed" err="model not found"`,
		`level=INFO msg=serving`,
		`level=WARN msg="model warm-up failed" err="dial tcp 127.0.0.1:11434: connect: connection refused" retry_in=1s repeated=6 next_summary_in=2s`,
		`level=WARN msg="model warm-up failed" err="dial tcp 127.0.0.1:11434: connect: connection refused" retry_in=1s repeated=2 next_summary_in=4s`,
		`level=ERROR msg="model warm-up failed" err="dial tcp 127.0.0.1:11434: connect: connection refused" retry_in=1s`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

func TestAttrsOfTheLoggerTellKindsApart(t *testing.T) {
	clock := clocktest.New(time.Unix(0, 0))
	var buf bytes.Buffer
	base := slog.New(logrepeat.New(slog.NewTextHandler(&buf, nil), clock.Now))
	base.With("tier", "local").Error("model call failed", "error_type", "timeout")
	base.With("tier", "gemini").Error("model call failed", "error_type", "timeout")
	base.With("tier", "local").Error("model call failed", "error_type", "timeout")
	if n := strings.Count(buf.String(), "level=ERROR"); n != 2 {
		t.Errorf("%d errors, want one per tier:\n%s", n, buf.String())
	}
}
