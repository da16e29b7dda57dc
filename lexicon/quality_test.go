package lexicon

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
)

// qualitySets are the labelled sets of financial sentences the repo keeps
// for measuring judgement quality (label<TAB>sentence; positive, negative
// or neutral), with the figures docs/PERFORMANCE.md reports for each.
//
// financial_sentences was written before the finance rules were tuned and
// its totals steered a few weights. financial_holdout was written after
// that tuning and has never steered anything, but by the same hand, from
// the same templates and in the same house style: it guards against
// overfitting to single sentences, not against the style itself, and is
// not an independent set. Neither is tuned on sentence by sentence.
//
// The public-style pair is in the register of company press releases and
// stock exchange bulletins (EUR amounts, figures against the corresponding
// period, orders and contracts, personnel negotiations, plain company
// descriptions, some drug and trial news), about 60% neutral. Both files
// were written before the figure-comparison, deal and medicine rules were
// changed. financial_public_style was then tuned on, sentence by sentence:
// its figures are optimistic, and say only that the rules do what they were
// written for. financial_public_style_holdout steered nothing: its figures
// were first read after the rules were final, and the one change made after
// that ("severe" keeps its valence in drug news, so that side effects stay
// bad news) cost it a sentence ("severe asthma") and was kept. It shares
// the author and the register with the tuned half, so it too is no
// independent set.
//
// financial_public_style_independent is the check on overfitting: written
// by a second author once the rules were final, in the same register but
// with other companies, currencies, phrasings and figures, and with the
// label mix of the public set the issue was measured on. It steered
// nothing: its figures were read once, when it was complete, and its
// errors were not read; the two patterns added after that came from probe
// sentences outside every set and changed none of its figures. Its
// figures are the ones to quote.
var qualitySets = []struct {
	path string
	// ours and plain are the documented figures of our lexicon and of
	// plain VADER on the set.
	ours, plain documented
	// floor keeps a guard where it stood before the documented figure was
	// re-measured lower: a guard is never loosened.
	floor documented
}{
	{"testdata/financial_sentences.tsv", documented{0.872, 0.559, 0.893}, documented{0.573, 0.573, 0.563}, documented{0.820, 0.533, 0.835}},
	{"testdata/financial_holdout.tsv", documented{0.852, 0.559, 0.874}, documented{0.583, 0.523, 0.608}, documented{0.804, 0.514, 0.844}},
	{"testdata/financial_public_style.tsv", documented{0.959, 0.580, 0.975}, documented{0.653, 0.608, 0.595}, documented{}},
	{"testdata/financial_public_style_holdout.tsv", documented{0.926, 0.572, 0.932}, documented{0.623, 0.577, 0.625}, documented{}},
	{"testdata/financial_public_style_independent.tsv", documented{0.923, 0.599, 0.879}, documented{0.688, 0.628, 0.598}, documented{}},
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
			checkQuality(t, loadQualitySet(t, qs.path), qs.ours, qs.plain, qs.floor)
		})
	}
}

func checkQuality(t *testing.T, set []labelled, docOurs, docPlain, floor documented) {
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
		name             string
		got, want, floor float64
		exact            bool
	}{
		{"accuracy", oq.accuracy, docOurs.accuracy, floor.accuracy, false},
		{"skip rate", oq.skip, docOurs.skip, floor.skip, false},
		{"kept non-neutral", oq.kept, docOurs.kept, floor.kept, false},
		{"plain VADER accuracy", pq.accuracy, docPlain.accuracy, 0, true},
		{"plain VADER skip rate", pq.skip, docPlain.skip, 0, true},
		{"plain VADER kept non-neutral", pq.kept, docPlain.kept, 0, true},
	} {
		switch guard := max(f.want-guardMargin, f.floor); {
		case f.exact && math.Abs(f.got-f.want) > 0.001:
			t.Errorf("%s %.1f%%, documented %.1f%%: update docs/PERFORMANCE.md", f.name, 100*f.got, 100*f.want)
		case !f.exact && f.got < guard:
			t.Errorf("%s %.1f%%: under its guard %.1f%% (documented %.1f%%)", f.name, 100*f.got, 100*guard, 100*f.want)
		}
	}
}

// TestQualityTable logs the figures of every labelled set as the table in
// docs/PERFORMANCE.md ("go test -v -run QualityTable ./lexicon/"); the
// guards are in TestQualityOnFinancialSentences.
func TestQualityTable(t *testing.T) {
	plain, err := NewPlain()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("\n| set | scorer | kept | skipped | accuracy |\n| --- | --- | --- | --- | --- |\n")
	for _, qs := range qualitySets {
		set := loadQualitySet(t, qs.path)
		name := strings.TrimSuffix(strings.TrimPrefix(qs.path, "testdata/"), ".tsv")
		for _, r := range []struct {
			scorer string
			q      qualityFigures
		}{
			{"plain VADER", measure(set, func(s string) float64 { return plain.Score(s).Compound }, plainBand)},
			{"lexicon", measure(set, func(s string) float64 { return ours.Score(s).Score }, NeutralBand)},
		} {
			fmt.Fprintf(&b, "| %s (%d) | %s | %.1f%% | %.1f%% | %.1f%% |\n", name, len(set), r.scorer, 100*r.q.kept, 100*r.q.skip, 100*r.q.accuracy)
		}
	}
	t.Log(b.String())
}
