package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// reporter shows a batch's progress. The batch drives it: Start once with
// the number of items (-1 when unknown), Add once per item answered with
// its label ("bullish", "bearish", "neutral") or "error", Finish once at
// the end. Calls come from one goroutine.
type reporter interface {
	Start(total int)
	Add(kind string)
	Finish()
}

// Progress modes of --progress.
const (
	progressAuto  = "auto"
	progressBar   = "bar"
	progressPlain = "plain"
	progressNone  = "none"
)

// plainEvery is how often a plain progress line is written, besides one at
// every tenth of a known total.
const plainEvery = 2 * time.Second

// newReporter picks the reporter for mode. auto is the bar when stderr is
// a terminal that draws (TERM is not "dumb") outside CI, and plain lines
// otherwise; with --json, where stderr is for the summary object, auto off
// a terminal is none.
func newReporter(mode string, stderr io.Writer, getenv func(string) string, jsonOut bool, now func() time.Time) reporter {
	if mode == progressAuto {
		switch {
		case isTerminal(stderr) && getenv("TERM") != "dumb" && getenv("CI") == "":
			mode = progressBar
		case jsonOut:
			mode = progressNone
		default:
			mode = progressPlain
		}
	}
	switch mode {
	case progressBar:
		return &barReporter{w: stderr}
	case progressPlain:
		return &plainReporter{w: stderr, now: now, every: plainEvery}
	default:
		return nopReporter{}
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// kindCounts counts answers by label, and errors.
type kindCounts struct {
	bullish, bearish, neutral, errors, other int
}

func (k *kindCounts) add(kind string) {
	switch kind {
	case "bullish":
		k.bullish++
	case "bearish":
		k.bearish++
	case "neutral":
		k.neutral++
	case "error":
		k.errors++
	default:
		k.other++
	}
}

func (k kindCounts) String() string {
	s := fmt.Sprintf("bullish=%d bearish=%d neutral=%d errors=%d", k.bullish, k.bearish, k.neutral, k.errors)
	if k.other > 0 {
		s += fmt.Sprintf(" other=%d", k.other)
	}
	return s
}

// plainReporter writes a line at every tenth of a known total, every
// `every` in any case, and at the end:
//
//	progress 350/1000 35% 120.5 items/s eta 5s bullish=120 bearish=80 neutral=150 errors=0
//
// Its clock is injected: the same answers at the same readings give the
// same lines.
type plainReporter struct {
	w     io.Writer
	now   func() time.Time
	every time.Duration

	total       int
	done        int
	counts      kindCounts
	start, last time.Time
	nextTenth   int // the tenth whose count prints the next line
	printedDone int // done at the last line, -1 before any
}

func (p *plainReporter) Start(total int) {
	p.total = total
	p.start = p.now()
	p.last = p.start
	p.nextTenth = 1
	p.printedDone = -1
}

func (p *plainReporter) Add(kind string) {
	p.done++
	p.counts.add(kind)
	now := p.now()
	due := now.Sub(p.last) >= p.every
	if p.total > 0 {
		for p.nextTenth <= 10 && p.done*10 >= p.nextTenth*p.total {
			p.nextTenth++
			due = true
		}
	}
	if due {
		p.print(now)
	}
}

func (p *plainReporter) Finish() {
	if p.printedDone != p.done {
		p.print(p.now())
	}
}

func (p *plainReporter) print(now time.Time) {
	p.last = now
	p.printedDone = p.done
	var b strings.Builder
	b.WriteString("progress ")
	if p.total >= 0 {
		pct := 100
		if p.total > 0 {
			pct = p.done * 100 / p.total
		}
		fmt.Fprintf(&b, "%d/%d %d%%", p.done, p.total, pct)
	} else {
		fmt.Fprintf(&b, "%d", p.done)
	}
	if elapsed := now.Sub(p.start); elapsed > 0 {
		rate := float64(p.done) / elapsed.Seconds()
		fmt.Fprintf(&b, " %.1f items/s", rate)
		if p.total >= 0 && rate > 0 {
			eta := time.Duration(float64(max(p.total-p.done, 0)) / rate * float64(time.Second))
			fmt.Fprintf(&b, " eta %s", eta.Round(time.Second))
		}
	}
	fmt.Fprintf(&b, " %s\n", p.counts)
	io.WriteString(p.w, b.String())
}

// barReporter draws a progress bar that redraws itself in place on a
// terminal, with the rate, the elapsed time and ETA, and the counts by
// label at its end.
type barReporter struct {
	w      io.Writer
	bar    *progressbar.ProgressBar
	total  int
	done   int
	counts kindCounts
}

// barThrottle bounds how often the bar redraws.
const barThrottle = 100 * time.Millisecond

func (r *barReporter) Start(total int) {
	r.total = total
	if total == 0 {
		return
	}
	w := r.w
	r.bar = progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(r.counts.String()),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("items"),
		progressbar.OptionSetPredictTime(total > 0),
		progressbar.OptionThrottle(barThrottle),
		// No spinner goroutine for an unknown total: the bar redraws
		// as answers come.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}

func (r *barReporter) Add(kind string) {
	r.done++
	r.counts.add(kind)
	if r.bar == nil {
		return
	}
	r.bar.Describe(r.counts.String())
	_ = r.bar.Add(1)
}

func (r *barReporter) Finish() {
	if r.bar == nil {
		return
	}
	switch {
	case r.total < 0:
		// A spinner: fill it, which draws the last counts and ends the line.
		_ = r.bar.Finish()
	case r.done < r.total:
		// Not every item was answered: leave the bar where it stands.
		_ = r.bar.Exit()
	}
	// Otherwise the last Add drew the bar full, with the final counts,
	// and ended its line.
}

type nopReporter struct{}

func (nopReporter) Start(int)  {}
func (nopReporter) Add(string) {}
func (nopReporter) Finish()    {}
