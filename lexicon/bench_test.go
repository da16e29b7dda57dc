package lexicon

import "testing"

// benchHeadline is a 16-word headline with a phrase, a metric move and
// period figures, so every path of Score runs.
const benchHeadline = "Acme Corp beats estimates as quarterly revenue rose to $52 million from $31 million, raises guidance"

func BenchmarkScore(b *testing.B) {
	s, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Score(benchHeadline)
	}
}

func BenchmarkScorePlain(b *testing.B) {
	s, err := NewPlain()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Score(benchHeadline)
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}
