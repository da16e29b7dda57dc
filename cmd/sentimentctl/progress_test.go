package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPlainReporterTenths: with a known total, a line at every tenth; the
// clock moves 100 ms a reading, so the rate and ETA are exact.
func TestPlainReporterTenths(t *testing.T) {
	var b bytes.Buffer
	p := &plainReporter{w: &b, now: newStepClock(100 * time.Millisecond).now, every: plainEvery}
	p.Start(20)
	kinds := []string{"bullish", "bearish", "neutral", "error"}
	for i := range 20 {
		p.Add(kinds[i%4])
	}
	p.Finish()
	want := strings.Join([]string{
		"progress 2/20 10% 10.0 items/s eta 2s bullish=1 bearish=1 neutral=0 errors=0",
		"progress 4/20 20% 10.0 items/s eta 2s bullish=1 bearish=1 neutral=1 errors=1",
		"progress 6/20 30% 10.0 items/s eta 1s bullish=2 bearish=2 neutral=1 errors=1",
		"progress 8/20 40% 10.0 items/s eta 1s bullish=2 bearish=2 neutral=2 errors=2",
		"progress 10/20 50% 10.0 items/s eta 1s bullish=3 bearish=3 neutral=2 errors=2",
		"progress 12/20 60% 10.0 items/s eta 1s bullish=3 bearish=3 neutral=3 errors=3",
		"progress 14/20 70% 10.0 items/s eta 1s bullish=4 bearish=4 neutral=3 errors=3",
		"progress 16/20 80% 10.0 items/s eta 0s bullish=4 bearish=4 neutral=4 errors=4",
		"progress 18/20 90% 10.0 items/s eta 0s bullish=5 bearish=5 neutral=4 errors=4",
		"progress 20/20 100% 10.0 items/s eta 0s bullish=5 bearish=5 neutral=5 errors=5",
	}, "\n") + "\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestPlainReporterEvery: with no total (stdin), a line every 2 s of the
// clock, and one at the end for what came after the last.
func TestPlainReporterEvery(t *testing.T) {
	var b bytes.Buffer
	p := &plainReporter{w: &b, now: newStepClock(500 * time.Millisecond).now, every: plainEvery}
	p.Start(-1)
	for range 9 {
		p.Add("neutral")
	}
	p.Finish()
	want := "progress 4 2.0 items/s bullish=0 bearish=0 neutral=4 errors=0\n" +
		"progress 8 2.0 items/s bullish=0 bearish=0 neutral=8 errors=0\n" +
		"progress 9 1.8 items/s bullish=0 bearish=0 neutral=9 errors=0\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestPlainReporterNothing: an empty batch still ends with one line.
func TestPlainReporterNothing(t *testing.T) {
	var b bytes.Buffer
	p := &plainReporter{w: &b, now: newStepClock(time.Second).now, every: plainEvery}
	p.Start(0)
	p.Finish()
	if want := "progress 0/0 100% 0.0 items/s bullish=0 bearish=0 neutral=0 errors=0\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}

// TestBarReporterUnknownTotal: a spinner for stdin, filled at Finish; it
// starts no goroutine of its own (goleak would tell).
func TestBarReporterUnknownTotal(t *testing.T) {
	var b bytes.Buffer
	r := &barReporter{w: &b}
	r.Start(-1)
	for range 5 {
		r.Add("bullish")
	}
	r.Finish()
	if !strings.Contains(b.String(), "bullish=5") || !strings.HasSuffix(b.String(), "\n") {
		t.Errorf("bar output %q", b.String())
	}
}

// TestNewReporter: auto is the bar only on a terminal that draws, outside
// CI; --json turns auto's plain lines off; the other modes are as named.
func TestNewReporter(t *testing.T) {
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	defer tty.Close()
	file, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tests := []struct {
		name   string
		mode   string
		stderr io.Writer
		env    map[string]string
		json   bool
		want   reporter
	}{
		{"auto on a terminal", progressAuto, tty, map[string]string{"TERM": "xterm"}, false, &barReporter{}},
		{"auto on a terminal with --json", progressAuto, tty, map[string]string{"TERM": "xterm"}, true, &barReporter{}},
		{"auto on a dumb terminal", progressAuto, tty, map[string]string{"TERM": "dumb"}, false, &plainReporter{}},
		{"auto in CI", progressAuto, tty, map[string]string{"TERM": "xterm", "CI": "true"}, false, &plainReporter{}},
		{"auto to a buffer", progressAuto, &bytes.Buffer{}, map[string]string{"TERM": "xterm"}, false, &plainReporter{}},
		{"auto to a file", progressAuto, file, map[string]string{"TERM": "xterm"}, false, &plainReporter{}},
		{"auto to a buffer with --json", progressAuto, &bytes.Buffer{}, nil, true, nopReporter{}},
		{"bar forced", progressBar, &bytes.Buffer{}, nil, false, &barReporter{}},
		{"plain forced", progressPlain, tty, map[string]string{"TERM": "xterm"}, false, &plainReporter{}},
		{"none", progressNone, tty, map[string]string{"TERM": "xterm"}, false, nopReporter{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newReporter(tt.mode, tt.stderr, func(k string) string { return tt.env[k] }, tt.json, time.Now)
			switch tt.want.(type) {
			case *barReporter:
				if _, ok := got.(*barReporter); !ok {
					t.Errorf("got %T, want the bar", got)
				}
			case *plainReporter:
				if _, ok := got.(*plainReporter); !ok {
					t.Errorf("got %T, want plain lines", got)
				}
			case nopReporter:
				if _, ok := got.(nopReporter); !ok {
					t.Errorf("got %T, want none", got)
				}
			}
		})
	}
}
