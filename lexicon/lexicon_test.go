package lexicon

import (
	"math"
	"sync"
	"testing"
)

func mustNew(t testing.TB) *Scorer {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustPlain(t testing.TB) *Scorer {
	t.Helper()
	s, err := NewPlain()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestVADERRules checks each rule's effect as a relation between two texts
// (the parity test pins the exact numbers).
func TestVADERRules(t *testing.T) {
	s := mustPlain(t)
	c := func(text string) float64 { return s.Score(text).Compound }
	cases := []struct {
		name     string
		a, b     string
		relation string // "a<b", "a>b", "a<0<b" (opposite signs), "a=b"
	}{
		{"negation flips", "The results were not good.", "The results were good.", "a<0<b"},
		{"negation 3 words back", "The results were not at all good.", "The results were good.", "a<b"},
		{"n't negates", "Earnings aren't great.", "Earnings are great.", "a<0<b"},
		{"never so is not negation", "It has never been so good.", "It has been good.", "a>b"},
		{"without doubt is not negation", "Without good", "Without doubt good", "a<0<b"},
		{"booster raises", "An extremely strong quarter.", "A strong quarter.", "a>b"},
		{"dampener lowers", "A slightly strong quarter.", "A strong quarter.", "a<b"},
		{"kind of dampens", "It was kind of good.", "It was good.", "a<b"},
		{"caps emphasise", "The quarter was GREAT today.", "The quarter was great today.", "a>b"},
		{"all caps is no emphasis", "GREAT QUARTER", "great quarter", "a=b"},
		{"but shifts weight", "The quarter was good but the outlook is bad.", "The quarter was good and the outlook is bad.", "a<b"},
		{"exclamation emphasises", "Good results!", "Good results", "a>b"},
		{"exclamations cap at 4", "Good results!!!!", "Good results!!!!!!!", "a=b"},
		{"one question mark is nothing", "Good results?", "Good results", "a=b"},
		{"question marks emphasise", "Good results??", "Good results", "a>b"},
		{"idiom the shit", "That stock is shit.", "That stock is the shit.", "a<0<b"},
		{"least negates", "The least good outcome.", "The good outcome.", "a<0<b"},
		{"at least does not negate", "At least good.", "good", "a=b"},
		{"this quirk of the reference", "This is so good.", "This is good.", "a>b"},
		{"tab splits words", "good\tresults", "good results", "a=b"},
		{"emoji read as words", "Catch 😁", "Catch beaming face with smiling eyes", "a=b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := c(tc.a), c(tc.b)
			ok := false
			switch tc.relation {
			case "a<b":
				ok = a < b
			case "a>b":
				ok = a > b
			case "a=b":
				ok = math.Abs(a-b) < 1e-12
			case "a<0<b":
				ok = a < 0 && b > 0
			}
			if !ok {
				t.Errorf("compound(%q) = %.4f, compound(%q) = %.4f: want %s", tc.a, a, tc.b, b, tc.relation)
			}
		})
	}
}

// TestFinanceRules covers metric + verb, figures across periods and the
// words VADER misreads in finance.
func TestFinanceRules(t *testing.T) {
	s := mustNew(t)
	cases := []struct {
		text  string
		hit   string // "" for no hit expected
		label Label
	}{
		{"Operating profit rose to EUR 13.1 mn from EUR 8.7 mn", "profit up", LabelBullish},
		{"Net sales decreased by 5% to EUR 200 mn", "sales down", LabelBearish},
		{"The operating loss narrowed to EUR 1.2 mn", "loss down", LabelBullish},
		{"Operating loss increased to EUR 3 mn", "loss up", LabelBearish},
		{"Order book was up 24% at the end of the quarter", "orders up", LabelBullish},
		{"Net sales were EUR 5.2 mn, compared to EUR 3.1 mn a year earlier", "sales up", LabelBullish},
		{"Net profit totalled EUR 2.0 mn, compared with EUR 3.5 mn in 2023", "profit down", LabelBearish},
		{"Operating loss totalled EUR 1.1 mn, compared with a loss of EUR 2.4 mn", "loss down", LabelBullish},
		{"Operating profit EUR 5.2 mn (EUR 3.1 mn)", "profit up", LabelBullish},
		{"EBITDA of EUR 1.2 bn versus EUR 900 mn", "profit up", LabelBullish},
		{"Costs fell by 10% in the quarter", "costs down", LabelBullish},
		{"Higher raw material costs weighed on the quarter", "costs up", LabelBearish},
		{"Gross margin improved to 40%", "margin better", LabelBullish},
		{"Weak demand hurt the company", "volume worse", LabelBearish},
		{"Shares of Acme jumped 30% in premarket trading", "share price up", LabelBullish},
		{"Net sales did not increase", "sales up", LabelBearish},
		{"Revenue in 2024 was EUR 10 mn", "", LabelNeutral},
		{"The company's share capital is EUR 10 mn", "", LabelNeutral},
		{"Interest income and credit card fees", "", LabelNeutral},
		{"Crude oil output", "", LabelNeutral},
		{"The vice president of the fund holds a stake", "", LabelNeutral},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			p := s.Score(tc.text)
			if tc.hit == "" {
				if len(p.Hits) != 0 {
					t.Errorf("hits %+v, want none", p.Hits)
				}
			} else {
				found := false
				for _, h := range p.Hits {
					found = found || h.Phrase == tc.hit
				}
				if !found {
					t.Errorf("hits %+v, want %q", p.Hits, tc.hit)
				}
			}
			if got := p.Label(); got != tc.label {
				t.Errorf("label %v (score %.3f, compound %.3f, keyword %.3f), want %v",
					got, p.Score, p.Compound, p.Keyword, tc.label)
			}
		})
	}
}

// TestNeutralisedWords checks that finance-neutral words score in plain
// VADER but not in the finance-adjusted lexicon.
func TestNeutralisedWords(t *testing.T) {
	plain, ours := mustPlain(t), mustNew(t)
	for _, w := range []string{"share", "shares", "interest", "credit", "crude", "gross", "free", "outstanding", "like"} {
		if plain.Score(w).Compound == 0 {
			t.Errorf("plain VADER scores %q 0; the test expects a scored word", w)
		}
		if got := ours.Score(w).Compound; got != 0 {
			t.Errorf("finance compound(%q) = %.3f, want 0", w, got)
		}
	}
}

func TestHitsInOrder(t *testing.T) {
	s := mustNew(t)
	p := s.Score("Acme raises guidance as net sales rose; FDA approval next")
	want := []string{"raises guidance", "sales up", "fda approval"}
	if len(p.Hits) != len(want) {
		t.Fatalf("hits %+v, want %v", p.Hits, want)
	}
	for i, h := range p.Hits {
		if h.Phrase != want[i] {
			t.Errorf("hit %d = %q, want %q", i, h.Phrase, want[i])
		}
	}
}

func TestPlainScorer(t *testing.T) {
	s := mustPlain(t)
	p := s.Score("Acme beats estimates and raises guidance, a great quarter")
	if p.Keyword != 0 || p.Hits != nil || p.Score != p.Compound || p.Compound <= 0 {
		t.Errorf("plain prescore %+v: want Keyword 0, no hits, Score == Compound > 0", p)
	}
}

func TestLabel(t *testing.T) {
	cases := []struct {
		score float64
		want  Label
	}{
		{0, LabelNeutral}, {0.199, LabelNeutral}, {-0.199, LabelNeutral},
		{0.20, LabelBullish}, {1, LabelBullish}, {-0.20, LabelBearish}, {-1, LabelBearish},
	}
	for _, c := range cases {
		if got := (Prescore{Score: c.score}).Label(); got != c.want {
			t.Errorf("Label(%v) = %v, want %v", c.score, got, c.want)
		}
	}
	if LabelNeutral.String() != "neutral" || LabelBearish.String() != "bearish" || LabelBullish.String() != "bullish" {
		t.Errorf("label names: %v %v %v", LabelNeutral, LabelBearish, LabelBullish)
	}
}

func TestConfidence(t *testing.T) {
	cases := []struct {
		name string
		lo   Prescore
		hi   Prescore
	}{
		{"grows with |Score|", Prescore{Score: 0.3, Compound: 0.3, Keyword: 0.3}, Prescore{Score: 0.8, Compound: 0.3, Keyword: 0.3}},
		{"grows with |negative Score|", Prescore{Score: -0.3, Compound: -0.3, Keyword: -0.3}, Prescore{Score: -0.8, Compound: -0.3, Keyword: -0.3}},
		{"grows with agreement", Prescore{Score: 0.5, Compound: -0.6, Keyword: 0.8}, Prescore{Score: 0.5, Compound: 0.6, Keyword: 0.8}},
	}
	for _, c := range cases {
		lo, hi := c.lo.Confidence(), c.hi.Confidence()
		if !(lo < hi) || lo < 0 || hi > 1 {
			t.Errorf("%s: confidence %.3f then %.3f, want 0 <= lo < hi <= 1", c.name, lo, hi)
		}
	}
	if got := (Prescore{}).Confidence(); got != 0 {
		t.Errorf("confidence of zero prescore = %v, want 0", got)
	}
	if got := (Prescore{Score: 1, Compound: 1, Keyword: 1}).Confidence(); got != 1 {
		t.Errorf("confidence of full agreement at 1 = %v, want 1", got)
	}
}

// TestConcurrentScore shares one Scorer between goroutines; run with -race.
func TestConcurrentScore(t *testing.T) {
	s := mustNew(t)
	texts := []string{benchHeadline, "Company files for Chapter 11 bankruptcy", "good", "", "Net sales were EUR 5.2 mn, compared to EUR 3.1 mn"}
	want := make([]float64, len(texts))
	for i, x := range texts {
		want[i] = s.Score(x).Score
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for n := 0; n < 200; n++ {
				i := (g + n) % len(texts)
				if got := s.Score(texts[i]).Score; got != want[i] {
					t.Errorf("Score(%q) = %v concurrently, %v alone", texts[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestExplain(t *testing.T) {
	tests := []struct {
		p    Prescore
		want string
	}{
		{Prescore{Score: 0.4185, Compound: -0.3182, Hits: []Hit{{"fda approval", 0.8}}},
			`lexicon: score +0.42 (sentiment words -0.32, financial keywords: "fda approval" +0.80)`},
		{Prescore{Score: -0.001, Compound: -0.001},
			`lexicon: score +0.00 (sentiment words +0.00, no financial keywords)`},
		{Prescore{Score: -0.6, Compound: 0, Hits: []Hit{{"cuts guidance", -0.7}, {"misses estimates", -0.6}}},
			`lexicon: score -0.60 (sentiment words +0.00, financial keywords: "cuts guidance" -0.70, "misses estimates" -0.60)`},
	}
	for _, tt := range tests {
		if got := tt.p.Explain(); got != tt.want {
			t.Errorf("Explain() = %s\nwant        %s", got, tt.want)
		}
	}
}

func TestAppendSigned(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{
		{0, "+0.00"}, {-0.001, "+0.00"}, {0.004, "+0.00"}, {-0.005, "-0.01"}, {0.4185, "+0.42"},
		{-0.3182, "-0.32"}, {1, "+1.00"}, {-1, "-1.00"}, {12.5, "+12.50"}, {math.Copysign(0, -1), "+0.00"},
	} {
		if got := string(appendSigned([]byte("x"), tt.v)); got != "x"+tt.want {
			t.Errorf("appendSigned(%v) = %q, want %q", tt.v, got, "x"+tt.want)
		}
	}
}

func BenchmarkExplain(b *testing.B) {
	p := Prescore{Score: -0.6, Compound: 0.1, Hits: []Hit{{"cuts guidance", -0.7}, {"misses estimates", -0.6}}}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Explain()
	}
}
