package lexicon

import (
	"math"
	"testing"
)

func inRange(v, lo, hi float64) bool { return !math.IsNaN(v) && v >= lo && v <= hi }

// FuzzScore checks that any text scores without panicking and within range.
// Seeds: testdata/fuzz/FuzzScore and the lines below.
func FuzzScore(f *testing.F) {
	for _, seed := range []string{
		"", "good", benchHeadline, "NOT BAD!!!! but ??? kind of",
		"EUR 1,200.5 mn (EUR 1.100,3 mn) vs 2023", "didn't raise ~ guidance",
	} {
		f.Add(seed)
	}
	s, err := New()
	if err != nil {
		f.Fatal(err)
	}
	plain, err := NewPlain()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, sc := range []*Scorer{s, plain} {
			p := sc.Score(text)
			if !inRange(p.Compound, -1, 1) || !inRange(p.Keyword, -1, 1) || !inRange(p.Score, -1, 1) {
				t.Fatalf("Score(%q) = %+v: out of [-1,1]", text, p)
			}
			if c := p.Confidence(); !inRange(c, 0, 1) {
				t.Fatalf("Confidence(%q) = %v: out of [0,1]", text, c)
			}
			for _, h := range p.Hits {
				if h.Phrase == "" || !inRange(h.Weight, -1, 1) || h.Weight == 0 {
					t.Fatalf("Score(%q): bad hit %+v", text, h)
				}
			}
		}
	})
}
