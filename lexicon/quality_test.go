package lexicon

import (
	"bufio"
	"math"
	"os"
	"strings"
	"testing"
)

// qualitySets are the labelled sets of financial sentences the repo keeps
// for measuring judgement quality (label<TAB>sentence; positive, negative
// or neutral), with the figures docs/PERFORMANCE.md reports for each. The
// first was written before the finance rules were tuned and its totals
// steered a few weights. The hold-out was written after tuning and has
// never steered anything, but by the same hand, from the same templates
// and in the same house style: it guards against overfitting to single
// sentences, not against the style itself, and is not an independent set.
// Neither is tuned on sentence by sentence.
var qualitySets = []struct {
	path string
	// ours and plain are the documented figures of our lexicon and of
	// plain VADER on the set.
	ours, plain documented
}{
	{"testdata/financial_sentences.tsv", documented{0.850, 0.563, 0.865}, documented{0.573, 0.573, 0.563}},
	{"testdata/financial_holdout.tsv", documented{0.834, 0.544, 0.874}, documented{0.583, 0.523, 0.608}},
}

// documented is one scorer's figures as docs/PERFORMANCE.md states them.
type documented struct{ accuracy, skip, kept float64 }

// guardMargin is how far a figure may fall below the documented one
// before the test fails: enough for a deliberate small trade-off, not for
// a regression the docs would hide.
const guardMargin = 0.03

// Targets from DESIGN.md, "Judgement quality".
const (
	targetAccuracy = 0.67
	targetSkip     = 0.45 // share of all items with |Score| < threshold
	targetKept     = 0.80 // share of non-neutral items with |Score| >= threshold
	threshold      = 0.20 // default LLM_MIN_PRESCALE_SCORE
	plainBand      = 0.05 // VADER's customary neutral band for labels
)

type labelled struct {
	label Label
	text  string
}

func loadQualitySet(t *testing.T, qualityFile string) []labelled {
	t.Helper()
	f, err := os.Open(qualityFile)
	if err != nil {
		t.Fatalf("the labelled set %s is required (label<TAB>sentence): %v", qualityFile, err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		lab, sentence, ok := strings.Cut(text, "\t")
		if !ok {
			t.Fatalf("%s:%d: no tab", qualityFile, line)
		}
		var l Label
		switch lab {
		case "positive":
			l = LabelBullish
		case "negative":
			l = LabelBearish
		case "neutral":
			l = LabelNeutral
		default:
			t.Fatalf("%s:%d: label %q, want positive/negative/neutral", qualityFile, line, lab)
		}
		out = append(out, labelled{l, sentence})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 200 {
		t.Fatalf("%s has %d items, want several hundred", qualityFile, len(out))
	}
	return out
}

// qualityFigures are the DESIGN.md figures for one scorer.
type qualityFigures struct {
	accuracy, skip, kept float64
	confusion            [3][3]int // [want][got]
}

func measure(set []labelled, score func(string) float64, band float64) qualityFigures {
	var q qualityFigures
	correct, skipped, nonNeutral, kept := 0, 0, 0, 0
	for _, it := range set {
		s := score(it.text)
		got := LabelNeutral
		switch {
		case s >= band:
			got = LabelBullish
		case s <= -band:
			got = LabelBearish
		}
		q.confusion[it.label][got]++
		if got == it.label {
			correct++
		}
		keep := s >= threshold || s <= -threshold
		if !keep {
			skipped++
		}
		if it.label != LabelNeutral {
			nonNeutral++
			if keep {
				kept++
			}
		}
	}
	q.accuracy = float64(correct) / float64(len(set))
	q.skip = float64(skipped) / float64(len(set))
	q.kept = float64(kept) / float64(nonNeutral)
	return q
}

func TestQualityOnFinancialSentences(t *testing.T) {
	for _, qs := range qualitySets {
		t.Run(strings.TrimSuffix(strings.TrimPrefix(qs.path, "testdata/"), ".tsv"), func(t *testing.T) {
			checkQuality(t, loadQualitySet(t, qs.path), qs.ours, qs.plain)
		})
	}
}

func checkQuality(t *testing.T, set []labelled, docOurs, docPlain documented) {
	plain, err := NewPlain()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := New()
	if err != nil {
		t.Fatal(err)
	}
	pq := measure(set, func(s string) float64 { return plain.Score(s).Compound }, plainBand)
	oq := measure(set, func(s string) float64 { return ours.Score(s).Score }, NeutralBand)
	// The label rule used by measure must be Prescore.Label's.
	for _, it := range set[:min(len(set), 50)] {
		p := ours.Score(it.text)
		want := LabelNeutral
		if p.Score >= NeutralBand {
			want = LabelBullish
		} else if p.Score <= -NeutralBand {
			want = LabelBearish
		}
		if p.Label() != want {
			t.Fatalf("Label() = %v for Score %.3f, want %v", p.Label(), p.Score, want)
		}
	}
	t.Logf("%d sentences; threshold %.2f", len(set), threshold)
	t.Logf("plain VADER (band ±%.2f): accuracy %.1f%%, skip %.1f%%, kept non-neutral %.1f%%",
		plainBand, 100*pq.accuracy, 100*pq.skip, 100*pq.kept)
	t.Logf("lexicon     (band ±%.2f): accuracy %.1f%%, skip %.1f%%, kept non-neutral %.1f%%",
		NeutralBand, 100*oq.accuracy, 100*oq.skip, 100*oq.kept)
	t.Logf("lexicon confusion [want neutral/bearish/bullish][got neutral/bearish/bullish]: %v", oq.confusion)
	if oq.accuracy < targetAccuracy {
		t.Errorf("accuracy %.1f%%, target >= %.0f%%", 100*oq.accuracy, 100*targetAccuracy)
	}
	if oq.skip < targetSkip {
		t.Errorf("skip rate %.1f%%, target >= %.0f%%", 100*oq.skip, 100*targetSkip)
	}
	if oq.kept < targetKept {
		t.Errorf("kept non-neutral %.1f%%, target >= %.0f%%", 100*oq.kept, 100*targetKept)
	}
	// The figures the docs claim hold, within a few points; plain VADER,
	// the comparison the docs draw, exactly.
	for _, f := range []struct {
		name      string
		got, want float64
		exact     bool
	}{
		{"accuracy", oq.accuracy, docOurs.accuracy, false},
		{"skip rate", oq.skip, docOurs.skip, false},
		{"kept non-neutral", oq.kept, docOurs.kept, false},
		{"plain VADER accuracy", pq.accuracy, docPlain.accuracy, true},
		{"plain VADER skip rate", pq.skip, docPlain.skip, true},
		{"plain VADER kept non-neutral", pq.kept, docPlain.kept, true},
	} {
		switch {
		case f.exact && math.Abs(f.got-f.want) > 0.001:
			t.Errorf("%s %.1f%%, documented %.1f%%: update docs/PERFORMANCE.md", f.name, 100*f.got, 100*f.want)
		case !f.exact && f.got < f.want-guardMargin:
			t.Errorf("%s %.1f%%: more than %.0f points under the documented %.1f%%", f.name, 100*f.got, 100*guardMargin, 100*f.want)
		}
	}
}
