package cache

import (
	"slices"
)

// Guard refuses a near-duplicate hit whose meaning may differ from the
// request's: similarity alone cannot see a meaning flipped by one word
// ("approves" and "rejects", "rose" and "fell", a changed figure), so a
// near hit must differ only in words that carry no sentiment.
type Guard struct {
	// weighs reports whether a lower-case word carries sentiment (the
	// lexicon's view).
	weighs func(word string) bool
}

// NewGuard returns the guard over the lexicon's view of which words carry
// sentiment.
func NewGuard(weighs func(word string) bool) *Guard { return &Guard{weighs: weighs} }

// Check says why the answer stored for b may not stand for a; "" when it
// may. preA and preB are the two texts' lexicon prescores.
func (g *Guard) Check(a, b *Text, preA, preB float64) string {
	if !slices.Equal(a.numbers, b.numbers) {
		return "a number differs"
	}
	if sign(preA) != sign(preB) {
		return "the prescores disagree in sign"
	}
	if !slices.Equal(g.weighty(a), g.weighty(b)) {
		return "a word that carries sentiment differs"
	}
	return ""
}

func (g *Guard) weighty(t *Text) []string {
	var out []string
	for _, w := range t.Tokens {
		if !isNumber(w) && g.weighs(w) {
			out = append(out, w)
		}
	}
	return out
}

// sign is a prescore's direction, with a small dead band around zero.
func sign(s float64) int {
	switch {
	case s > 0.05:
		return 1
	case s < -0.05:
		return -1
	}
	return 0
}
