package lexicon

import (
	"strconv"
	"strings"
)

// Explain says in words why the lexicon scored as it did; it is the
// rationale of every answer the lexicon gives (preliminary, prefiltered or
// degraded). It runs on every such answer, so it allocates once: the
// builder's buffer, which becomes the string.
func (p Prescore) Explain() string {
	var b strings.Builder
	b.Grow(64 + 32*len(p.Hits))
	var num [24]byte // one formatted number at a time, on the stack
	b.WriteString("lexicon: score ")
	b.Write(appendSigned(num[:0], p.Score))
	b.WriteString(" (sentiment words ")
	b.Write(appendSigned(num[:0], p.Compound))
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
		b.Write(appendSigned(num[:0], h.Weight))
	}
	b.WriteByte(')')
	return b.String()
}

// appendSigned appends v as "+0.42" or "-0.42"; a value that rounds to
// zero is "+0.00", whatever its sign.
func appendSigned(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', 2, 64)
	if b[start] != '-' {
		// Room for the sign: shift the digits right by one.
		b = append(b, 0)
		copy(b[start+1:], b[start:len(b)-1])
		b[start] = '+'
		return b
	}
	for _, c := range b[start+1:] {
		if c != '0' && c != '.' {
			return b
		}
	}
	b[start] = '+' // "-0.00"
	return b
}
