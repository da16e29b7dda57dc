package lexicon

import "testing"

// TestWeighs pins which words carry sentiment to the lexicon: the cache's
// meaning guard refuses a near-duplicate that differs in any of them, and
// lets one through that differs only in the others.
func TestWeighs(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := NewPlain()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		word        string
		want, plain bool
	}{
		// VADER words with a valence, negations, boosters.
		{"good", true, true},
		{"bad", true, true},
		{"not", true, true},
		{"didn't", true, true},
		{"very", true, true},
		// Finance rules: phrase words, directions, evaluations, metrics,
		// units, comparisons, negations.
		{"approves", true, true},
		{"rejects", true, true},
		{"beats", true, false},
		{"misses", true, true},
		{"upgrade", true, false},
		{"downgrades", true, false},
		{"rose", true, false}, // a valence added by the finance adjustments
		{"fell", true, false},
		{"narrowed", true, false},
		{"widened", true, false},
		{"profit", true, true},
		{"loss", true, true},
		{"revenue", true, false},
		{"guidance", true, false},
		{"mn", true, false},
		{"billion", true, false},
		{"from", true, false},
		{"without", true, true},
		// Glue the phrases spell out, and words with no sentiment.
		{"the", false, false},
		{"to", false, false},
		{"of", false, false},
		{"be", false, false},
		{"will", false, false},
		{"did", false, false},
		{"t", false, false},
		{"acme", false, false},
		{"announces", false, false},
		{"company", false, false},
		{"tuesday", false, false},
		// Signs of drug news only: they change how "cancer" reads, not
		// the judgement by themselves.
		{"biotech", false, false},
		{"oncology", false, false},
		{"cancer", true, true}, // a VADER valence, dropped only in drug news
		{"approval", true, true},
		{"share", true, true},     // VADER's valence is removed, but it is a metric word
		{"interest", false, true}, // a VADER valence the finance adjustments remove
	} {
		if got := s.Weighs(c.word); got != c.want {
			t.Errorf("Weighs(%q) = %v, want %v", c.word, got, c.want)
		}
		if got := plain.Weighs(c.word); got != c.plain {
			t.Errorf("plain Weighs(%q) = %v, want %v", c.word, got, c.plain)
		}
	}
}
