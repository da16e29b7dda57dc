package lexicon

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Constants of vaderSentiment 3.3.2, with the reference's names in comments.
const (
	bIncr   = 0.293 // B_INCR: booster word
	bDecr   = -0.293
	cIncr   = 0.733 // C_INCR: ALL-CAPS emphasis
	nScalar = -0.74 // N_SCALAR: negation
	alpha   = 15.0  // normalize()'s alpha
)

// negateWords is the reference's NEGATE list.
var negateWords = [...]string{
	"aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
	"ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
	"dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
	"don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
	"neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
	"oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
	"oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
	"without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
}

// boosterWords is the reference's BOOSTER_DICT minus its multi-word keys,
// which are in boosterNGrams. A table, not a map: New copies it into the
// Scorer's word map.
var boosterWords = [...]struct {
	word  string
	scale float64
}{
	{"absolutely", bIncr}, {"amazingly", bIncr}, {"awfully", bIncr}, {"completely", bIncr}, {"considerable", bIncr},
	{"considerably", bIncr}, {"decidedly", bIncr}, {"deeply", bIncr}, {"effing", bIncr}, {"enormous", bIncr},
	{"enormously", bIncr}, {"entirely", bIncr}, {"especially", bIncr}, {"exceptional", bIncr}, {"exceptionally", bIncr},
	{"extreme", bIncr}, {"extremely", bIncr}, {"fabulously", bIncr}, {"flipping", bIncr}, {"flippin", bIncr},
	{"frackin", bIncr}, {"fracking", bIncr}, {"fricking", bIncr}, {"frickin", bIncr}, {"frigging", bIncr},
	{"friggin", bIncr}, {"fully", bIncr}, {"fuckin", bIncr}, {"fucking", bIncr}, {"fuggin", bIncr},
	{"fugging", bIncr}, {"greatly", bIncr}, {"hella", bIncr}, {"highly", bIncr}, {"hugely", bIncr},
	{"incredible", bIncr}, {"incredibly", bIncr}, {"intensely", bIncr}, {"major", bIncr}, {"majorly", bIncr},
	{"more", bIncr}, {"most", bIncr}, {"particularly", bIncr}, {"purely", bIncr}, {"quite", bIncr},
	{"really", bIncr}, {"remarkably", bIncr}, {"so", bIncr}, {"substantially", bIncr}, {"thoroughly", bIncr},
	{"total", bIncr}, {"totally", bIncr}, {"tremendous", bIncr}, {"tremendously", bIncr}, {"uber", bIncr},
	{"unbelievably", bIncr}, {"unusually", bIncr}, {"utter", bIncr}, {"utterly", bIncr}, {"very", bIncr},
	{"almost", bDecr}, {"barely", bDecr}, {"hardly", bDecr}, {"kinda", bDecr}, {"kindof", bDecr},
	{"kind-of", bDecr}, {"less", bDecr}, {"little", bDecr}, {"marginal", bDecr}, {"marginally", bDecr},
	{"occasional", bDecr}, {"occasionally", bDecr}, {"partly", bDecr}, {"scarce", bDecr}, {"scarcely", bDecr},
	{"slight", bDecr}, {"slightly", bDecr}, {"somewhat", bDecr}, {"sorta", bDecr}, {"sortof", bDecr},
	{"sort-of", bDecr},
}

// boosterNGrams are the multi-word keys of BOOSTER_DICT (all dampeners).
var boosterNGrams = [...][2]string{{"just", "enough"}, {"kind", "of"}, {"sort", "of"}}

// specialCase is one key of the reference's SPECIAL_CASES.
type specialCase struct {
	words   []string
	valence float64
}

// specialCases is SPECIAL_CASES; the reference matches them as joined strings,
// so the single-word key "badass" can never match and is left out.
var specialCases = [...]specialCase{
	{[]string{"the", "shit"}, 3}, {[]string{"the", "bomb"}, 3}, {[]string{"bad", "ass"}, 1.5},
	{[]string{"bus", "stop"}, 0}, {[]string{"yeah", "right"}, -2},
	{[]string{"kiss", "of", "death"}, -1.5}, {[]string{"to", "die", "for"}, 3},
	{[]string{"beating", "heart"}, 3.5},
}

// wordInfo is everything VADER needs to know about one lower-case token,
// found with a single map lookup.
type wordInfo struct {
	valence   float64
	inLex     bool
	isBooster bool
	booster   float64
	negation  bool // in the NEGATE list
	// medical is set by New only: the word's valence is dropped in drug
	// and trial news ("cancer drug", "reduced the risk of death"); with
	// medAfter only right after one of the words listed there ("heart
	// failure").
	medical  bool
	medAfter bool
}

// vtok is one VADER token: a whitespace-separated word with surrounding ASCII
// punctuation stripped unless that leaves two runes or fewer.
type vtok struct {
	raw   string
	lower []byte
	info  wordInfo
	upper bool // Python's str.isupper()
	neg   bool // negated([word]): in NEGATE or contains "n't"
}

func (t *vtok) is(s string) bool { return string(t.lower) == s }

// isPySpace reports whether Python's str.split() splits at r.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// isPunct reports whether b is in Python's string.punctuation.
func isPunct(b byte) bool {
	switch {
	case b >= '!' && b <= '/', b >= ':' && b <= '@', b >= '[' && b <= '`', b >= '{' && b <= '~':
		return true
	}
	return false
}

// pyIsUpper is Python's str.isupper(): at least one cased rune and no
// lower-case or title-case rune.
func pyIsUpper(s string) bool {
	cased := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return pyIsUpperSlow(s)
		}
		if c >= 'a' && c <= 'z' {
			return false
		}
		if c >= 'A' && c <= 'Z' {
			cased = true
		}
	}
	return cased
}

func pyIsUpperSlow(s string) bool {
	cased := false
	for _, r := range s {
		if unicode.IsLower(r) || unicode.IsTitle(r) || unicode.Is(unicode.Other_Lowercase, r) {
			return false
		}
		if unicode.IsUpper(r) || unicode.Is(unicode.Other_Uppercase, r) {
			cased = true
		}
	}
	return cased
}

// appendLower appends the lower case of s to dst.
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			for _, r := range s[i:] {
				dst = utf8.AppendRune(dst, unicode.ToLower(r))
			}
			return dst
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// stripPunct is _strip_punc_if_word: strip leading and trailing ASCII
// punctuation, unless two runes or fewer remain (emoticons such as ":)").
func stripPunct(tok string) string {
	i, j := 0, len(tok)
	for i < j && isPunct(tok[i]) {
		i++
	}
	for j > i && isPunct(tok[j-1]) {
		j--
	}
	if i == 0 && j == len(tok) {
		return tok
	}
	if utf8.RuneCountInString(tok[i:j]) <= 2 {
		return tok
	}
	return tok[i:j]
}

// replaceEmoji is the reference's emoji pass: each emoji rune becomes its
// description, preceded by a space unless a space came before it. Text
// without any emoji is returned as is, without allocating.
func (s *Scorer) replaceEmoji(text string) string {
	found := false
	for _, r := range text {
		if r >= 0x80 {
			if _, ok := s.emoji[r]; ok {
				found = true
				break
			}
		}
	}
	if !found {
		return text
	}
	var b strings.Builder
	prevSpace := true
	for _, r := range text {
		if d, ok := s.emoji[r]; ok {
			if !prevSpace {
				b.WriteByte(' ')
			}
			b.WriteString(d)
			prevSpace = false
			continue
		}
		b.WriteRune(r)
		prevSpace = r == ' '
	}
	return b.String()
}

// tokenizeVADER splits text as SentiText does and fills sc.vt.
func (s *Scorer) tokenizeVADER(sc *scratch, text string) {
	sc.vt = sc.vt[:0]
	sc.vbuf = sc.vbuf[:0]
	sc.spans = sc.spans[:0]
	for i := 0; i < len(text); {
		// skip whitespace
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		if isPySpace(r) {
			i += n
			continue
		}
		start := i
		for i < len(text) {
			r, n = rune(text[i]), 1
			if r >= utf8.RuneSelf {
				r, n = utf8.DecodeRuneInString(text[i:])
			}
			if isPySpace(r) {
				break
			}
			i += n
		}
		raw := stripPunct(text[start:i])
		a := len(sc.vbuf)
		sc.vbuf = appendLower(sc.vbuf, raw)
		sc.vt = append(sc.vt, vtok{raw: raw})
		sc.spans = append(sc.spans, [2]int{a, len(sc.vbuf)})
	}
	for k := range sc.vt {
		t := &sc.vt[k]
		t.lower = sc.vbuf[sc.spans[k][0]:sc.spans[k][1]]
		t.info = s.words[string(t.lower)]
		t.upper = pyIsUpper(t.raw)
		t.neg = t.info.negation || strings.Contains(string(t.lower), "n't")
	}
}

// vaderCompound runs VADER's rules over sc.vt and returns the compound score.
// text is the emoji-replaced text, for the punctuation emphasis.
func vaderCompound(sc *scratch, text string) float64 {
	toks := sc.vt
	if len(toks) == 0 {
		return 0
	}
	capDiff := allCapDifferential(toks)
	sent := sc.sent[:0]
	for i := range toks {
		t := &toks[i]
		if t.info.isBooster {
			sent = append(sent, 0)
			continue
		}
		if i < len(toks)-1 && t.is("kind") && toks[i+1].is("of") {
			sent = append(sent, 0)
			continue
		}
		sent = append(sent, sentimentValence(toks, i, capDiff))
	}
	butCheck(toks, sent)
	sc.sent = sent

	sum := 0.0
	for _, v := range sent {
		sum += v
	}
	amp := punctuationEmphasis(text)
	if sum > 0 {
		sum += amp
	} else if sum < 0 {
		sum -= amp
	}
	return normalize(sum)
}

func normalize(score float64) float64 {
	n := score / math.Sqrt(score*score+alpha)
	return max(-1, min(1, n))
}

func allCapDifferential(toks []vtok) bool {
	caps := 0
	for i := range toks {
		if toks[i].upper {
			caps++
		}
	}
	d := len(toks) - caps
	return d > 0 && d < len(toks)
}

func scalarIncDec(t *vtok, valence float64, capDiff bool) float64 {
	if !t.info.isBooster {
		return 0
	}
	scalar := t.info.booster
	if valence < 0 {
		scalar = -scalar
	}
	if t.upper && capDiff {
		if valence > 0 {
			scalar += cIncr
		} else {
			scalar -= cIncr
		}
	}
	return scalar
}

// sentimentValence is the reference's sentiment_valence for token i.
func sentimentValence(toks []vtok, i int, capDiff bool) float64 {
	t := &toks[i]
	if !t.info.inLex {
		return 0
	}
	n := len(toks)
	valence := t.info.valence
	if t.is("no") && i != n-1 && toks[i+1].info.inLex {
		valence = 0
	}
	if (i > 0 && toks[i-1].is("no")) || (i > 1 && toks[i-2].is("no")) ||
		(i > 2 && toks[i-3].is("no") && (toks[i-1].is("or") || toks[i-1].is("nor"))) {
		valence = t.info.valence * nScalar
	}
	if t.upper && capDiff {
		if valence > 0 {
			valence += cIncr
		} else {
			valence -= cIncr
		}
	}
	for start := 0; start < 3; start++ {
		if i > start && !toks[i-(start+1)].info.inLex {
			s := scalarIncDec(&toks[i-(start+1)], valence, capDiff)
			if start == 1 && s != 0 {
				s *= 0.95
			}
			if start == 2 && s != 0 {
				s *= 0.9
			}
			valence += s
			valence = negationCheck(valence, toks, start, i)
			if start == 2 {
				valence = specialIdiomsCheck(valence, toks, i)
			}
		}
	}
	return leastCheck(valence, toks, i)
}

// negationCheck is the reference's _negation_check, including its operator
// precedence slip at start 2: a word right after "so" or "this" is multiplied
// by 1.25 whatever comes three words before.
func negationCheck(valence float64, toks []vtok, start, i int) float64 {
	switch start {
	case 0:
		if toks[i-1].neg {
			valence *= nScalar
		}
	case 1:
		switch {
		case toks[i-2].is("never") && (toks[i-1].is("so") || toks[i-1].is("this")):
			valence *= 1.25
		case toks[i-2].is("without") && toks[i-1].is("doubt"):
		case toks[i-2].neg:
			valence *= nScalar
		}
	case 2:
		switch {
		case (toks[i-3].is("never") && (toks[i-2].is("so") || toks[i-2].is("this"))) ||
			(toks[i-1].is("so") || toks[i-1].is("this")):
			valence *= 1.25
		case toks[i-3].is("without") && (toks[i-2].is("doubt") || toks[i-1].is("doubt")):
		case toks[i-3].neg:
			valence *= nScalar
		}
	}
	return valence
}

// seqIs reports whether toks[from:from+len(words)] (within bounds) spell words.
func seqIs(toks []vtok, from int, words []string) bool {
	if from < 0 || from+len(words) > len(toks) {
		return false
	}
	for k, w := range words {
		if !toks[from+k].is(w) {
			return false
		}
	}
	return true
}

// specialIdiomsCheck is _special_idioms_check; called only with i >= 3.
func specialIdiomsCheck(valence float64, toks []vtok, i int) float64 {
	// Sequences in the reference's order: onezero, twoonezero, twoone,
	// threetwoone, threetwo; the first that is a special case wins.
	type seq struct{ from, n int }
	seqs := [...]seq{{i - 1, 2}, {i - 2, 3}, {i - 2, 2}, {i - 3, 3}, {i - 3, 2}}
	done := false
	for _, q := range seqs {
		for _, sc := range specialCases {
			if len(sc.words) == q.n && seqIs(toks, q.from, sc.words) {
				valence = sc.valence
				done = true
				break
			}
		}
		if done {
			break
		}
	}
	if len(toks)-1 > i {
		for _, sc := range specialCases {
			if len(sc.words) == 2 && seqIs(toks, i, sc.words) {
				valence = sc.valence
			}
		}
	}
	if len(toks)-1 > i+1 {
		for _, sc := range specialCases {
			if len(sc.words) == 3 && seqIs(toks, i, sc.words) {
				valence = sc.valence
			}
		}
	}
	// Booster n-grams threetwoone, threetwo, twoone: all keys are two words,
	// so only threetwo and twoone can match.
	for _, q := range [...]int{i - 3, i - 2} {
		for _, ng := range boosterNGrams {
			if toks[q].is(ng[0]) && toks[q+1].is(ng[1]) {
				valence += bDecr
			}
		}
	}
	return valence
}

// leastCheck is _least_check: "least" before a word negates it, except in
// "at least" and "very least".
func leastCheck(valence float64, toks []vtok, i int) float64 {
	if i > 1 && !toks[i-1].info.inLex && toks[i-1].is("least") {
		if !toks[i-2].is("at") && !toks[i-2].is("very") {
			valence *= nScalar
		}
	} else if i > 0 && !toks[i-1].info.inLex && toks[i-1].is("least") {
		valence *= nScalar
	}
	return valence
}

// butCheck is _but_check, quirk included: the reference finds each value's
// position with list.index, so when two words share a valence the first
// position is rescaled again and the later one is left alone.
func butCheck(toks []vtok, sent []float64) {
	bi := -1
	for k := range toks {
		if toks[k].is("but") {
			bi = k
			break
		}
	}
	if bi < 0 {
		return
	}
	for k := range sent {
		v := sent[k]
		si := 0
		for si < len(sent) && sent[si] != v {
			si++
		}
		if si < bi {
			sent[si] = v * 0.5
		} else if si > bi {
			sent[si] = v * 1.5
		}
	}
}

func punctuationEmphasis(text string) float64 {
	ep := strings.Count(text, "!")
	if ep > 4 {
		ep = 4
	}
	amp := float64(ep) * 0.292
	qm := strings.Count(text, "?")
	if qm > 1 {
		if qm <= 3 {
			amp += float64(qm) * 0.18
		} else {
			amp += 0.96
		}
	}
	return amp
}
