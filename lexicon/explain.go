package lexicon

import (
	"strconv"
	"strings"
)

// Explain says in words why the lexicon scored as it did; it is the
// rationale of every answer the lexicon gives (preliminary, prefiltered or
// degraded).
func (p Prescore) Explain() string {
	var b strings.Builder
	b.Grow(64 + 32*len(p.Hits))
	b.WriteString("lexicon: score ")
	b.WriteString(signed(p.Score))
	b.WriteString(" (sentiment words ")
	b.WriteString(signed(p.Compound))
	if len(p.Hits) == 0 {
		b.WriteString(", no financial keywords)")
		return b.String()
	}
	b.WriteString(", financial keywords:")
	for i, h := range p.Hits {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" \"")
		b.WriteString(h.Phrase)
		b.WriteString("\" ")
		b.WriteString(signed(h.Weight))
	}
	b.WriteByte(')')
	return b.String()
}

// signed formats v as "+0.42" or "-0.42".
func signed(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v >= 0 || s == "-0.00" {
		return "+" + strings.TrimPrefix(s, "-")
	}
	return s
}
