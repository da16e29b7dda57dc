package cache

import (
	"errors"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text is an item's text as the cache reads it: its exact key, the
// shingles its near-duplicates are measured by, and the parts the meaning
// guard compares. Encode and DecodeText carry all of it: a decoded Text
// equals the Text Read made.
type Text struct {
	// Key is the exact-key form of title then summary: words and figures,
	// lower-cased, joined by single spaces, with the wires' boilerplate
	// (labels, datelines, wire and exchange tags, source suffixes) and
	// punctuation gone. Two items share a Key only when they are the same
	// words and figures in the same order: signs, decimals, units,
	// currencies, negations and question marks are kept.
	Key string
	// Tokens are Key's words and figures, in order.
	Tokens []string

	// words are the content words' stems in order: stop words and
	// company suffixes out, negations as "not", figures as they are.
	words []string
	// shingles are the sorted, distinct hashes of words' unigrams and
	// bigrams.
	shingles []uint64
	// figures are the figures with their sign, currency and unit, in
	// order.
	figures []figure
	// negated holds, for each negation in order, the stem of the content
	// word it negates ("" at the end of the text), and "?" for each
	// question mark.
	negated []string
}

// figure is one figure as the guard compares it: "EUR 5.2 mn" is
// {pre: "eur", num: "5.2", unit: "mn"}; "-5%" is {num: "-5%"}.
type figure struct {
	pre, num, unit, post string
}

func (f figure) String() string {
	s := f.num
	if f.pre != "" {
		s = f.pre + " " + s
	}
	if f.unit != "" {
		s += " " + f.unit
	}
	if f.post != "" {
		s += " " + f.post
	}
	return s
}

// Read parses an item's title and summary. It never fails: text it cannot
// read (control characters, invalid UTF-8, stray marks) separates words.
func Read(title, summary string) Text {
	n := max(len(title), len(summary))
	r := reader{low: make([]byte, 0, n+8), small: make([]bool, 0, n+8), lx: make([]lexeme, 0, n/4+8)}
	key := make([]byte, 0, len(title)+len(summary)+8)
	key = r.appendPart(key, title)
	key = r.appendPart(key, summary)
	t := Text{Key: string(key)}
	t.Tokens = split(t.Key)
	t.words, t.negated = contentOf(t.Tokens)
	t.derive()
	return t
}

// encodeVersion starts Encode's output, so that a Text stored by a build
// that reads text differently is refused rather than misread. Change it
// whenever Read's Keys, stems or negations change.
const encodeVersion = "t1|"

// Encode returns the form stored beside a cached answer: the format
// version, the Key, the content words' stems and the negated words, on
// three lines. The shingles and figures are rebuilt from these by
// DecodeText; storing the stems spares it the stemming, so decoding costs
// about as much as splitting the strings and hashing the stems.
func (t *Text) Encode() string {
	var b strings.Builder
	b.Grow(len(encodeVersion) + 2*len(t.Key) + 8)
	b.WriteString(encodeVersion)
	b.WriteString(t.Key)
	b.WriteByte('\n')
	for i, w := range t.words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	b.WriteByte('\n')
	for i, w := range t.negated {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w == "" {
			w = "-" // a negation at the end of the text
		}
		b.WriteString(w)
	}
	return b.String()
}

// ErrBadText is returned by DecodeText for a string not in Encode's
// format, or in another version's.
var ErrBadText = errors.New("cache: not an encoded text")

// DecodeText is the inverse of Encode: it returns the Text that was
// encoded, equal in every field, so Similarity and Check judge a stored
// entry exactly as they judged it when it was read. The Text's strings
// share the memory of s.
func DecodeText(s string) (Text, error) {
	rest, ok := strings.CutPrefix(s, encodeVersion)
	key, rest, ok1 := strings.Cut(rest, "\n")
	words, negated, ok2 := strings.Cut(rest, "\n")
	if !ok || !ok1 || !ok2 || !validList(key) || !wellSpaced(words) ||
		!wellSpaced(negated) || strings.IndexByte(negated, '\n') >= 0 {
		return Text{}, ErrBadText
	}
	// One array holds the three lists.
	nk, nw, nn := items(key), items(words), items(negated)
	all := make([]string, 0, nk+nw+nn)
	t := Text{Key: key}
	t.Tokens = splitInto(all[0:0:nk], key)
	t.words = splitInto(all[nk:nk:nk+nw], words)
	t.negated = splitInto(all[nk+nw:nk+nw:nk+nw+nn], negated)
	for i, w := range t.negated {
		if w == "-" {
			t.negated[i] = ""
		}
	}
	t.derive()
	return t, nil
}

// validList reports whether s could be a Key: valid UTF-8, items
// separated by single spaces, no other white space or control characters.
func validList(s string) bool {
	if !wellSpaced(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c-' ' < 0x7f-' ' { // printable ASCII
			continue
		}
		if c < utf8.RuneSelf {
			return false
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
		i += n - 1
	}
	return true
}

// wellSpaced reports whether s is a list of non-empty items separated by
// single spaces, or "". The lines of stems are checked only this far:
// whatever they hold, DecodeText returns what Encode would write back.
func wellSpaced(s string) bool {
	return s == "" || s[0] != ' ' && s[len(s)-1] != ' ' && !strings.Contains(s, "  ")
}

// split splits a list written by Read or Encode at its single spaces; nil
// for "". The items share s's memory.
func split(s string) []string {
	return splitInto(make([]string, 0, items(s)), s)
}

// items returns the number of items of a list: its spaces and one, or 0
// for "".
func items(s string) int {
	if s == "" {
		return 0
	}
	n := 1
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			n++
		}
	}
	return n
}

// splitInto appends the items of s to out; nil for "". A byte loop: the
// items are short, and IndexByte's setup costs more than it saves.
func splitInto(out []string, s string) []string {
	if s == "" {
		return nil
	}
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// contentOf returns the content words' stems of toks, in order, and for
// each negation the stem of the word it negates.
func contentOf(toks []string) (words, negated []string) {
	words = make([]string, 0, len(toks))
	pending := 0 // negations still looking for the word they negate
	for i, tok := range toks {
		switch {
		case isFigure(tok):
			words = append(words, tok)
		case tok == "?":
			negated = append(negated, "?")
			words = append(words, tok)
			continue
		case isNegation(toks, i):
			pending++
			if strings.HasPrefix(tok, "fail") {
				words = append(words, stem(tok))
			} else {
				words = append(words, "not")
			}
			continue
		case stopWords(tok) || stopWords(bare(tok)):
			continue
		default:
			words = append(words, stem(tok))
		}
		if pending > 0 && !negationSkips(tok) {
			for ; pending > 0; pending-- {
				negated = append(negated, words[len(words)-1])
			}
		}
	}
	for ; pending > 0; pending-- {
		negated = append(negated, "")
	}
	if len(words) == 0 {
		words = nil
	}
	return words, negated
}

// derive computes the figures from Tokens and the shingles from words.
func (t *Text) derive() {
	var buf [16]int
	at := buf[:0]
	for i, tok := range t.Tokens {
		if isFigure(tok) {
			at = append(at, i)
		}
	}
	if len(at) > 0 {
		t.figures = make([]figure, len(at))
		for k, i := range at {
			t.figures[k] = figureAt(t.Tokens, i)
		}
	}
	if len(t.words) == 0 {
		return
	}
	sh := make([]uint64, 0, 2*len(t.words))
	var prev uint64
	for i, w := range t.words {
		h := hashString(fnvOffset, w)
		sh = append(sh, h)
		if i > 0 {
			// FNV-1a of prev + " " + w, continuing prev's own hash.
			sh = append(sh, hashString((prev^' ')*fnvPrime, w))
		}
		prev = h
	}
	slices.Sort(sh)
	t.shingles = slices.Compact(sh)
}

// FNV-1a, 64 bits: a fixed function rather than a seeded one, so that a
// Text's shingles are the same in every process and every run, and
// similarities reproduce exactly.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// Similarity is the Jaccard index of a's and b's shingles: the unigrams
// and bigrams of their content words' stems, so that word order counts.
// It is 1 for texts that differ only in boilerplate, case, punctuation,
// stop words, company suffixes and inflection, and 0 when either text has
// no content word.
//
// What a difference costs, for n content words (2n-1 shingles): a content
// word dropped in the middle leaves 1-2/n (0.80 at n=10, 0.90 at n=20;
// 0.95 needs n >= 40, a long summary); dropped at either end,
// (2n-3)/(2n-1) (0.89 at n=10); a word replaced in the middle,
// (2n-4)/(2n+2) (0.73 at n=10); two words swapped, about 1-6/(2n) or less.
// So at the default threshold (0.95) a headline hits only when its
// content words are the same; a long title with summary may differ in one
// or two words, which the Guard then judges.
func Similarity(a, b *Text) float64 {
	x, y := a.shingles, b.shingles
	if len(x) == 0 || len(y) == 0 {
		return 0
	}
	inter, i, j := 0, 0, 0
	for i < len(x) && j < len(y) {
		switch {
		case x[i] == y[j]:
			inter++
			i++
			j++
		case x[i] < y[j]:
			i++
		default:
			j++
		}
	}
	return float64(inter) / float64(len(x)+len(y)-inter)
}

// isFigure reports whether a token is a figure, which the guard compares
// exactly: a token holding a digit ("5.2", "-5%", "q3", "2026", "h1"), a
// number or ordinal written as a word ("three", "third", "half") or a
// month ("third quarter" and "fourth quarter", "in November" and "in
// October" are other periods).
func isFigure(tok string) bool {
	switch tok {
	case "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
		"eleven", "twelve", "twenty", "thirty", "forty", "fifty", "hundred", "dozen", "half",
		"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
		"january", "february", "march", "april", "june", "july", "august", "september", "october",
		"november", "december":
		return true
	}
	ascii := true
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c-'0' <= 9 {
			return true
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	if ascii {
		return false
	}
	for _, r := range tok {
		if unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

// figureAt reads the figure at toks[i] with the currency before it and the
// unit and currency after it.
func figureAt(toks []string, i int) figure {
	f := figure{num: toks[i]}
	if i > 0 && isCurrency(toks[i-1]) {
		f.pre = toks[i-1]
	}
	j := i + 1
	if j < len(toks) && isUnit(toks[j]) {
		f.unit = toks[j]
		j++
	}
	if j < len(toks) && isCurrency(toks[j]) && (j+1 == len(toks) || !isFigure(toks[j+1])) {
		f.post = toks[j] // "5.2 mn euros", not the next figure's "EUR"
	}
	return f
}

// isUnit reports whether a token, after a figure, is its scale or unit.
// Read has already written scale words in one form ("million" -> "mn").
func isUnit(tok string) bool {
	switch tok {
	case "mn", "bn", "k", "tn", "bps", "x", "cents", "cent", "pence", "p", "shares", "points", "pts":
		return true
	}
	return false
}

// isCurrency reports whether a token is a currency: a sign ("$", "¥")
// or an ISO code. Read writes "€" and "£" as "eur" and "gbp".
func isCurrency(tok string) bool {
	switch tok {
	case "usd", "eur", "gbp", "jpy", "chf", "cad", "aud", "nzd", "sek", "nok", "dkk", "isk", "pln",
		"czk", "huf", "cny", "rmb", "hkd", "sgd", "inr", "krw", "brl", "mxn", "zar", "rub", "ils", "twd":
		return true
	}
	r, n := utf8.DecodeRuneInString(tok)
	return n == len(tok) && unicode.Is(unicode.Sc, r)
}

// isNegation reports whether toks[i] negates what follows it: "not", "no",
// "never", "without", "n't" forms, "cannot", "non", "unable", and "fail"
// before "to" ("fails to meet").
func isNegation(toks []string, i int) bool {
	tok := toks[i]
	switch tok {
	case "not", "no", "never", "without", "nor", "neither", "none", "cannot", "non", "unable",
		"didnt", "doesnt", "dont", "isnt", "wasnt", "arent", "werent", "hasnt", "havent", "hadnt",
		"wouldnt", "couldnt", "shouldnt", "cant", "wont", "aint":
		return true
	case "fail", "fails", "failed", "failing":
		return i+1 < len(toks) && toks[i+1] == "to"
	}
	return strings.HasSuffix(tok, "n't")
}

// negationSkips reports whether a content word is passed over when
// finding what a negation negates ("not to", "not yet approved").
func negationSkips(tok string) bool {
	switch tok {
	case "to", "yet", "ever", "even", "still", "also", "only", "just", "so", "currently":
		return true
	}
	return false
}

// stopWords reports whether a token carries no content for similarity:
// articles, auxiliaries, pronouns, the prepositions that do not relate
// figures, "today", and company suffixes. Negations, "to", "from", "by",
// "than", "above", "below", "up", "down", modal verbs and "will" are
// content: each can change what a headline says.
func stopWords(tok string) bool {
	switch tok {
	case "a", "an", "the", "of", "for", "in", "on", "at", "with", "and", "or", "as", "that", "which",
		"who", "this", "these", "those", "its", "it", "it's", "their", "his", "her", "our", "is", "are",
		"was", "were", "be", "been", "being", "has", "have", "had", "do", "does", "did", "today",
		"s", "into", "via", "also",
		// company suffixes
		"inc", "incorporated", "corp", "corporation", "co", "ltd", "limited", "plc", "llc", "lp",
		"llp", "ag", "sa", "se", "nv", "bv", "oyj", "oy", "ab", "asa", "gmbh", "spa", "kgaa", "sarl",
		"bhd", "pty", "tbk":
		return true
	}
	return false
}

// irregular maps irregular verb forms to the form stem reduces: "rose"
// and "rises" must read alike, as "won" and "wins" must.
var irregular = map[string]string{
	"rose": "rise", "risen": "rise", "fell": "fall", "fallen": "fall", "grew": "grow",
	"grown": "grow", "won": "win", "lost": "lose", "sold": "sell", "bought": "buy",
	"sank": "sink", "sunk": "sink", "shrank": "shrink", "shrunk": "shrink", "slid": "slide",
	"met": "meet", "paid": "pay", "said": "say", "made": "make", "took": "take", "taken": "take",
	"gave": "give", "given": "give", "began": "begin", "begun": "begin", "led": "lead",
	"held": "hold", "saw": "see", "seen": "see", "struck": "strike", "swung": "swing",
	"spun": "spin", "brought": "bring", "got": "get", "gotten": "get", "became": "become",
	"came": "come", "went": "go", "gone": "go", "wrote": "write", "written": "write",
	"withdrew": "withdraw", "withdrawn": "withdraw", "leapt": "leap", "beaten": "beat",
	"kept": "keep", "sought": "seek", "spent": "spend", "built": "build", "sent": "send",
	"lent": "lend", "dealt": "deal", "told": "tell", "found": "find", "forgone": "forgo",
	"undertook": "undertake", "froze": "freeze", "frozen": "freeze", "overtook": "overtake",
}

// stem strips the commonest English inflections so that "announces",
// "announced" and "announcing" read alike, as do "raise"/"raised",
// "misses"/"missed", "denies"/"denied", "plans"/"planned". It is light
// on purpose: the guard compares stems, so the stemmer must not join words
// a headline would contrast (it keeps "loss" apart from "lose", "high"
// from "higher", "new" from "news"). The result is a substring of the word
// or of a table entry, so stemming allocates nothing.
func stem(w string) string {
	if l, ok := irregular[w]; ok {
		w = l
	}
	w = bare(w)
	if w == "news" {
		return w // not the plural of "new"
	}
	n := len(w)
	switch {
	case n > 4 && (strings.HasSuffix(w, "ies") || strings.HasSuffix(w, "ied")):
		w = w[:n-3] // denies, denied -> den (as deny)
	case n > 4 && strings.HasSuffix(w, "sses"):
		w = w[:n-2]
	case n > 3 && strings.HasSuffix(w, "es") && (strings.HasSuffix(w[:n-2], "s") || strings.HasSuffix(w[:n-2], "x") ||
		strings.HasSuffix(w[:n-2], "z") || strings.HasSuffix(w[:n-2], "ch") || strings.HasSuffix(w[:n-2], "sh")):
		w = w[:n-2]
	case n > 3 && w[n-1] == 's' && w[n-2] != 's' && w[n-2] != 'u' && w[n-2] != 'i' && w[n-2] != '\'':
		w = w[:n-1]
	case n > 4 && strings.HasSuffix(w, "ed") && w[n-3] != 'e' && hasVowel(w[:n-2]):
		w = w[:n-2]
	case n > 5 && strings.HasSuffix(w, "ing") && hasVowel(w[:n-3]):
		w = w[:n-3]
	}
	if strings.HasSuffix(w, "eed") {
		w = w[:len(w)-1] // exceed(s, ed) -> excee -> exce; agreed -> agree -> agre
	}
	n = len(w)
	switch {
	case n > 2 && w[n-1] == w[n-2] && isConsonant(w[n-1]) && w[n-1] != 's':
		w = w[:n-1] // planned -> plann -> plan; fall, falling -> fal
	case n > 3 && w[n-1] == 'e':
		w = w[:n-1] // raise, raises, raised, raising -> rais
	case n > 3 && w[n-1] == 'y' && isConsonant(w[n-2]):
		w = w[:n-1] // deny -> den
	}
	return w
}

// bare strips a possessive: "acme's" reads as "acme".
func bare(w string) string {
	if b, ok := strings.CutSuffix(w, "'s"); ok {
		return b
	}
	return w
}

func hasVowel(s string) bool { return strings.ContainsAny(s, "aeiouy") }

func isConsonant(c byte) bool {
	return c >= 'a' && c <= 'z' && !strings.ContainsRune("aeiou", rune(c))
}

// ---- reading the raw text ----

// lexKind is what a lexeme is.
type lexKind uint8

const (
	lexWord     lexKind = iota + 1
	lexNumber           // digits with inner "." or "," ("5.2", "1,200", ".5")
	lexPunct            // one mark (a run of dashes is one), in p
	lexCurrency         // a currency sign other than "$"
)

// lexeme is one word, number or mark of a part, as offsets into the
// part's lowered text.
type lexeme struct {
	start, end int32
	kind       lexKind
	p          byte // lexPunct: the mark, normalised ('-' for every dash)
	spaced     bool // white space, or the start of the part, before it
	acronym    bool // "u.s.": written without its dots
	upper      bool // a word written in capitals ("NEW YORK")
	drop       bool // boilerplate
}

// reader holds one Read's buffers.
type reader struct {
	low   []byte   // the part, lowered and normalised
	small []bool   // by byte of low: the original was a lower-case letter
	lx    []lexeme // its lexemes
}

// appendPart reads one part (title or summary) and appends its tokens to
// key.
func (r *reader) appendPart(key []byte, s string) []byte {
	r.lower(s)
	r.lex()
	p := part{b: r.low, lx: r.lx}
	p.strip()
	return p.emit(key)
}

// lower writes s into r.low in lower case, with every dash written as
// an ASCII hyphen, every apostrophe as an ASCII apostrophe, every double
// quote as an ASCII double quote, invisible format characters (soft
// hyphen, zero-width space) removed, and control characters and invalid
// UTF-8 written as a space.
func (r *reader) lower(s string) {
	b, small := r.low[:0], r.small[:0]
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			small = append(small, c >= 'a' && c <= 'z')
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c == '`':
				c = '\''
			case c < ' ' || c == 0x7f:
				c = ' '
			}
			b = append(b, c)
			i++
			continue
		}
		ru, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case ru == utf8.RuneError && n == 1:
			b = append(b, ' ')
		case ru >= 0x2010 && ru <= 0x2015 || ru == 0x2212 || ru == 0xfe58 || ru == 0xfe63 || ru == 0xff0d:
			b = append(b, '-')
		case ru == 0x2018 || ru == 0x2019 || ru == 0x02bc || ru == 0x00b4 || ru == 0x2032:
			b = append(b, '\'')
		case ru == 0x201c || ru == 0x201d || ru == 0x201e || ru == 0x00ab || ru == 0x00bb:
			b = append(b, '"')
		case ru == 0x2026: // ellipsis
			b = append(b, '.')
		case unicode.Is(unicode.Cf, ru):
			// invisible: soft hyphen, zero-width space and joiners
		case unicode.IsSpace(ru) || unicode.IsControl(ru):
			b = append(b, ' ')
		default:
			b = utf8.AppendRune(b, unicode.ToLower(ru))
		}
		for isSmall := unicode.IsLower(ru); len(small) < len(b); {
			small = append(small, isSmall)
		}
	}
	r.low, r.small = b, small
}

// lex splits r.low into lexemes.
func (r *reader) lex() {
	b := r.low
	lx := r.lx[:0]
	spaced := true
	for i := 0; i < len(b); {
		c := b[i]
		if c == ' ' {
			spaced = true
			i++
			continue
		}
		l := lexeme{start: int32(i), spaced: spaced}
		spaced = false
		switch {
		case isDigit(c) || c == '.' && i+1 < len(b) && isDigit(b[i+1]) && (i == 0 || !isDigit(b[i-1])):
			j := i + 1
			for j < len(b) {
				if isDigit(b[j]) {
					j++
				} else if (b[j] == '.' || b[j] == ',') && j+1 < len(b) && isDigit(b[j+1]) {
					j += 2
				} else {
					break
				}
			}
			l.kind, i = lexNumber, j
		case wordStartAt(b, i):
			l.kind = lexWord
			if j := acronymEnd(b, i); j > 0 {
				l.acronym, i = true, j
				break
			}
			i = splitCurrency(b, l.start, wordEnd(b, i))
		case c == '-':
			j := i + 1
			for j < len(b) && b[j] == '-' {
				j++
			}
			l.kind, l.p, i = lexPunct, '-', j
		case c < utf8.RuneSelf:
			l.kind, l.p, i = lexPunct, c, i+1
			switch c {
			case '[', '{':
				l.p = '('
			case ']', '}':
				l.p = ')'
			}
		default:
			ru, n := utf8.DecodeRune(b[i:])
			i += n
			if unicode.Is(unicode.Sc, ru) {
				l.kind = lexCurrency
			} else {
				l.kind, l.p = lexPunct, 'x'
			}
		}
		l.end = int32(i)
		if l.kind == lexWord {
			l.upper = !slices.Contains(r.small[l.start:l.end], true)
		}
		lx = append(lx, l)
	}
	r.lx = lx
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' }

// wordStartAt reports whether a word starts at b[i]: a letter, or a digit
// of another script.
func wordStartAt(b []byte, i int) bool {
	c := b[i]
	if c < utf8.RuneSelf {
		return isASCIILetter(c)
	}
	r, _ := utf8.DecodeRune(b[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// wordRuneAt reports whether b[i] continues a word: a letter, digit or
// combining mark.
func wordRuneAt(b []byte, i int) (bool, int) {
	c := b[i]
	if c < utf8.RuneSelf {
		return isASCIILetter(c) || isDigit(c), 1
	}
	r, n := utf8.DecodeRune(b[i:])
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.M, r), n
}

// wordEnd returns the end of the word starting at b[i]: letters, digits,
// marks, and apostrophes between letters ("acme's", "didn't").
func wordEnd(b []byte, i int) int {
	for i < len(b) {
		if ok, n := wordRuneAt(b, i); ok {
			i += n
			continue
		}
		if b[i] == '\'' && i+1 < len(b) && wordStartAt(b, i+1) {
			i++
			continue
		}
		break
	}
	return i
}

// splitCurrency returns where the word b[start:end] ends when it is a
// currency code written against its figure ("EUR5.2", "USD40"): at the
// first digit. Otherwise it returns end.
func splitCurrency(b []byte, start int32, end int) int {
	for k := int(start); k < end; k++ {
		if isDigit(b[k]) {
			if k-int(start) == 3 && isCurrency(string(b[start:k])) {
				return k
			}
			return end
		}
	}
	return end
}

// acronymEnd returns the end of an acronym written with dots starting at
// b[i] ("u.s.", "s.a", "n.v."), or 0: single letters each followed by a
// dot and a single letter.
func acronymEnd(b []byte, i int) int {
	single := func(k int) bool { // b[k] is a one-letter word
		if k >= len(b) || !isASCIILetter(b[k]) {
			return false
		}
		if k+1 < len(b) {
			if ok, _ := wordRuneAt(b, k+1); ok {
				return false
			}
		}
		return true
	}
	if !single(i) {
		return 0
	}
	j := i
	for j+2 < len(b) && b[j+1] == '.' && single(j+2) {
		j += 2
	}
	if j == i {
		return 0
	}
	j++
	if j < len(b) && b[j] == '.' {
		j++
	}
	return j
}

// part is one lexed part being stripped and emitted.
type part struct {
	b  []byte
	lx []lexeme
}

func (p *part) text(i int) []byte { return p.b[p.lx[i].start:p.lx[i].end] }

// isWord reports whether lexeme i is the word w.
func (p *part) isWord(i int, w string) bool {
	return i >= 0 && i < len(p.lx) && p.lx[i].kind == lexWord && string(p.text(i)) == w
}

// isPunct reports whether lexeme i is one of the marks.
func (p *part) isPunct(i int, marks string) bool {
	if i < 0 || i >= len(p.lx) || p.lx[i].kind != lexPunct {
		return false
	}
	for k := 0; k < len(marks); k++ {
		if marks[k] == p.lx[i].p {
			return true
		}
	}
	return false
}

func (p *part) kind(i int) lexKind {
	if i < 0 || i >= len(p.lx) {
		return 0
	}
	return p.lx[i].kind
}

func (p *part) dropRange(i, j int) {
	for k := i; k < j && k < len(p.lx); k++ {
		p.lx[k].drop = true
	}
}

// words reports whether the words ws start at lexeme i, and where they end.
func (p *part) words(i int, ws []string) (int, bool) {
	for _, w := range ws {
		if !p.isWord(i, w) {
			return 0, false
		}
		i++
	}
	return i, true
}

// wires are the names wire services write in their tags: "(GLOBE
// NEWSWIRE)", "/PRNewswire/", "--(BUSINESS WIRE)--", "(Reuters)". Longer
// names first.
var wires = [][]string{
	{"globe", "newswire"}, {"globenewswire"}, {"business", "wire"}, {"businesswire"},
	{"pr", "newswire"}, {"prnewswire"}, {"cnw", "telbec"}, {"cnw"}, {"accesswire"},
	{"newsfile", "corp"}, {"newsfile"}, {"reuters"}, {"bloomberg"}, {"marketwired"},
	{"marketwire"}, {"dow", "jones"}, {"ein", "presswire"}, {"einpresswire"}, {"prweb"},
	{"newswire"}, {"cision"}, {"ap"}, {"afp"}, {"rttnews"}, {"mfn"},
}

// sources are the names that end a title as " - Reuters" or " | Bloomberg".
var sources = [][]string{
	{"the", "wall", "street", "journal"}, {"wall", "street", "journal"}, {"bloomberg", "news"},
	{"bloomberg", "com"}, {"globe", "newswire"}, {"business", "wire"}, {"pr", "newswire"},
	{"yahoo", "finance"}, {"seeking", "alpha"}, {"financial", "times"}, {"dow", "jones"},
	{"investing", "com"}, {"motley", "fool"}, {"fierce", "biotech"}, {"fierce", "pharma"},
	{"endpoints", "news"}, {"reuters"}, {"bloomberg"}, {"businesswire"}, {"globenewswire"},
	{"prnewswire"}, {"accesswire"}, {"newsfile"}, {"cnw"}, {"cision"}, {"marketwatch"},
	{"yahoo"}, {"benzinga"}, {"cnbc"}, {"ft"}, {"wsj"}, {"marketscreener"}, {"nasdaq"},
	{"zacks"}, {"fiercebiotech"}, {"barron's"}, {"barrons"}, {"tipranks"}, {"rttnews"},
}

// exchanges are the first words of the exchange tags "(NASDAQ: ACME)",
// "(TSX-V: ABC)", "(Nasdaq Helsinki: ACME1V)".
func isExchange(w string) bool {
	switch w {
	case "nasdaq", "nasdaqgs", "nasdaqgm", "nasdaqcm", "nyse", "nysearca", "amex", "otc", "otcqb",
		"otcqx", "otcmkts", "otcbb", "otcpk", "pink", "tsx", "tsxv", "cse", "asx", "lse", "aim", "fse",
		"xetra", "euronext", "omx", "hkex", "hkse", "sgx", "nzx", "jse", "six", "bse", "nse", "cboe",
		"bats", "neo", "frankfurt", "oslo", "tase", "krx", "twse", "ticker", "symbol":
		return true
	}
	return false
}

// month returns the full name of a month written in full or abbreviated
// ("dec", "sept"), or "".
func month(w []byte) string {
	switch string(w) {
	case "jan", "january":
		return "january"
	case "feb", "february":
		return "february"
	case "mar", "march":
		return "march"
	case "apr", "april":
		return "april"
	case "may":
		return "may"
	case "jun", "june":
		return "june"
	case "jul", "july":
		return "july"
	case "aug", "august":
		return "august"
	case "sep", "sept", "september":
		return "september"
	case "oct", "october":
		return "october"
	case "nov", "november":
		return "november"
	case "dec", "december":
		return "december"
	}
	return ""
}

// number reports whether lexeme i is a number of at most maxDigits
// digits and no separator.
func (p *part) number(i, maxDigits int) bool {
	if p.kind(i) != lexNumber {
		return false
	}
	t := p.text(i)
	if len(t) > maxDigits {
		return false
	}
	for _, c := range t {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// dateAt returns the end of a date starting at lexeme i ("Dec. 1, 2026",
// "December 01", "1 December 2026", "2026-12-01"), or -1.
func (p *part) dateAt(i int) int {
	ordinal := func(j int) int { // skip "st" of "1st"
		if p.kind(j) == lexWord && !p.lx[j].spaced {
			switch string(p.text(j)) {
			case "st", "nd", "rd", "th":
				return j + 1
			}
		}
		return j
	}
	year := func(j int) int {
		k := j
		if p.isPunct(k, ",") {
			k++
		}
		if p.number(k, 4) && len(p.text(k)) == 4 {
			return k + 1
		}
		return j
	}
	switch {
	case p.kind(i) == lexWord && month(p.text(i)) != "":
		j := i + 1
		if p.isPunct(j, ".") {
			j++
		}
		if !p.number(j, 2) {
			return -1
		}
		return year(ordinal(j + 1))
	case p.number(i, 2):
		j := ordinal(i + 1)
		if p.kind(j) != lexWord || month(p.text(j)) == "" {
			return -1
		}
		j++
		if p.isPunct(j, ".") {
			j++
		}
		return year(j)
	case p.number(i, 4) && p.isPunct(i+1, "-") && p.number(i+2, 2) && p.isPunct(i+3, "-") && p.number(i+4, 2):
		return i + 5
	}
	return -1
}

// wireAt returns the end of a wire tag starting at lexeme i ("(GLOBE
// NEWSWIRE)", "/PRNewswire-FirstCall/", "(Newsfile Corp. - December 1,
// 2026)", "/ ACCESSWIRE /"), or -1.
func (p *part) wireAt(i int) int {
	var closer string
	switch {
	case p.isPunct(i, "("):
		closer = ")"
	case p.isPunct(i, "/"):
		closer = "/"
	default:
		return -1
	}
	j := -1
	for _, w := range wires {
		if e, ok := p.words(i+1, w); ok {
			j = e
			break
		}
	}
	if j < 0 {
		return -1
	}
	for n := 0; n < 6 && j < len(p.lx) && !p.isPunct(j, closer); n++ {
		switch {
		case p.isPunct(j, "."):
			j++
		case p.isPunct(j, "-,") && p.dateAt(j+1) > 0:
			j = p.dateAt(j + 1)
		case p.isPunct(j, "-") && p.kind(j+1) == lexWord:
			j += 2
		default:
			return -1
		}
	}
	if !p.isPunct(j, closer) {
		return -1
	}
	return j + 1
}

// exchangeAt returns the end of an exchange tag starting at lexeme i
// ("(NASDAQ: ACME)", "(TSXV: ABC; OTCQB: ABCD)", "(NYSE American:
// XYZ)"), or -1.
func (p *part) exchangeAt(i int) int {
	if !p.isPunct(i, "(") {
		return -1
	}
	j := i + 1
	for {
		if p.kind(j) != lexWord || !isExchange(string(p.text(j))) {
			return -1
		}
		j++
		for n := 0; n < 4 && !p.isPunct(j, ":"); n++ { // "global select market", "-v"
			if p.kind(j) != lexWord && !p.isPunct(j, "-") {
				return -1
			}
			j++
		}
		if !p.isPunct(j, ":") {
			return -1
		}
		j++
		// The ticker: a word or number of at most 8 letters and digits, a
		// part joined to it ("BRK.B", "BBD-B"), a share class ("UPS B").
		// Nothing more: "(Nasdaq: up 5)" is not a tag.
		if k := p.kind(j); k != lexWord && k != lexNumber || len(p.text(j)) > 8 {
			return -1
		}
		j++
		if p.isPunct(j, ".-") && !p.lx[j].spaced && (p.kind(j+1) == lexWord || p.kind(j+1) == lexNumber) && !p.lx[j+1].spaced {
			j += 2
		}
		if p.kind(j) == lexWord && len(p.text(j)) == 1 {
			j++
		}
		switch {
		case p.isPunct(j, ")"):
			return j + 1
		case p.isPunct(j, ";,/|"):
			j++
		case p.isWord(j, "and"):
			j++
		default:
			return -1
		}
		if p.isPunct(j, ")") { // "(NASDAQ: ACME, )"
			return j + 1
		}
	}
}

// ricAt returns the end of a Reuters instrument code "(ACME.O)",
// "<ACME.N>", "(7203.T)" starting at lexeme i, or -1.
func (p *part) ricAt(i int) int {
	closer := ""
	switch {
	case p.isPunct(i, "("):
		closer = ")"
	case p.isPunct(i, "<"):
		closer = ">"
	default:
		return -1
	}
	if k := p.kind(i + 1); k != lexWord && k != lexNumber {
		return -1
	}
	if !p.isPunct(i+2, ".") || p.lx[i+2].spaced || p.kind(i+3) != lexWord || p.lx[i+3].spaced {
		return -1
	}
	if t := p.text(i + 3); len(t) > 3 || !p.isPunct(i+4, closer) {
		return -1
	}
	return i + 5
}

// definitionAt returns the end of a defined name starting at lexeme i:
// `(the "Company")`, `("Acme" or the "Company")`, or -1. It must name
// "company" and quote what it defines; other quoted words in brackets
// (`("buy")`) may be meaning and stay.
func (p *part) definitionAt(i int) int {
	if !p.isPunct(i, "(") {
		return -1
	}
	quoted, inQuote, company := 0, false, false
	for j := i + 1; j < len(p.lx) && j < i+16; j++ {
		l := &p.lx[j]
		switch {
		case l.kind == lexPunct && l.p == ')':
			if inQuote || quoted == 0 || quoted > 5 || !company {
				return -1
			}
			return j + 1
		case l.kind == lexPunct && (l.p == '"' || l.p == '\''):
			inQuote = !inQuote
		case l.kind == lexWord && inQuote:
			quoted++
			company = company || string(p.text(j)) == "company"
		case l.kind == lexWord:
			switch string(p.text(j)) {
			case "the", "or", "and", "collectively", "together", "hereinafter", "herein", "we", "us", "our":
			case "company":
				company = true
			default:
				return -1
			}
		default:
			return -1
		}
	}
	return -1
}

// tagAt returns the end of a wire, exchange, instrument or definition tag
// starting at lexeme i, or -1.
func (p *part) tagAt(i int) int {
	if e := p.wireAt(i); e > 0 {
		return e
	}
	if e := p.exchangeAt(i); e > 0 {
		return e
	}
	if e := p.ricAt(i); e > 0 {
		return e
	}
	return p.definitionAt(i)
}

// strip marks the wires' boilerplate as dropped: labels and datelines at
// the start, tags anywhere, a source name at the end.
func (p *part) strip() {
	p.stripLead()
	for i := 0; i < len(p.lx); i++ {
		if p.lx[i].drop || !p.isPunct(i, "(/<") {
			continue
		}
		if e := p.tagAt(i); e > 0 {
			p.dropRange(i, e)
			i = e - 1
		}
	}
	p.stripTail()
}

// stripLead drops, as often as they come, a label ("PRESS RELEASE:",
// "UPDATE 2-", "BRIEF-") and a dateline ("NEW YORK, Dec. 1, 2026
// /PRNewswire/ --", "SAN DIEGO--(BUSINESS WIRE)--", "HELSINKI, Dec 1
// (Reuters) -").
func (p *part) stripLead() {
	i := 0
	for {
		for i < len(p.lx) && p.lx[i].kind == lexPunct && !p.isPunct(i, "(/<?") {
			i++
		}
		e := p.labelAt(i)
		if e < 0 {
			e = p.datelineAt(i)
		}
		if e < 0 {
			return
		}
		p.dropRange(i, e)
		i = e
	}
}

// labelAt returns the end of a label starting at lexeme i, with the mark
// after it, or -1.
func (p *part) labelAt(i int) int {
	sep := func(j int) int {
		if p.isPunct(j, ":-|") {
			return j + 1
		}
		return -1
	}
	switch {
	case (p.isWord(i, "press") || p.isWord(i, "news")) && p.isWord(i+1, "release"):
		if e := sep(i + 2); e > 0 {
			return e
		}
		return i + 2
	case p.isWord(i, "update"):
		j := i + 1
		if p.number(j, 2) {
			j++
		}
		return sep(j)
	case p.isWord(i, "breaking"):
		j := i + 1
		if p.isWord(j, "news") {
			j++
		}
		return sep(j)
	case p.isWord(i, "brief"), p.isWord(i, "rpt"), p.isWord(i, "exclusive"), p.isWord(i, "flash"):
		return sep(i + 1)
	}
	return -1
}

// datelineAt returns the end of a dateline starting at lexeme i, with the
// wire tag, date and marks after it, or -1: "NEW YORK, Dec. 1, 2026
// /PRNewswire/ --", "SAN DIEGO--(BUSINESS WIRE)--", "HELSINKI, Finland,
// Dec 1 (Reuters) -", "NEW YORK (Reuters) -", "NEW YORK, NY / ACCESSWIRE
// / December 1, 2026 /", "(Bloomberg) --", "NEW YORK, Dec. 1, 2026 --".
//
// A dateline is up to three comma-separated places of up to four words,
// then a date after a comma, then a wire tag. Dropping it must never
// drop a headline's own words ("Acme shares fall (Reuters) - ..."), so
// besides its shape it needs one sign of being a dateline: a place in
// capitals in a text that is not all capitals, a date before or after the
// tag, a tag right after a dash ("--(BUSINESS WIRE)"), or nothing before
// the tag. Without a tag it needs both the capitals and the date. And more
// text must follow it.
func (p *part) datelineAt(i int) int {
	j, groups, upper := i, 0, true
	for groups < 3 {
		n := 0
		for n < 4 && p.kind(j) == lexWord {
			upper = upper && p.lx[j].upper
			j++
			n++
			if p.isPunct(j, ".") && !p.lx[j].spaced { // "Mass.", "St."
				j++
			}
		}
		if n == 0 {
			break
		}
		groups++
		if !p.isPunct(j, ",") || p.dateAt(j+1) > 0 {
			break
		}
		j++
	}
	if groups == 0 && j != i {
		return -1
	}
	upper = upper && groups > 0 && !p.allUpper()
	date := false
	if groups > 0 && p.isPunct(j, ",") && p.dateAt(j+1) > 0 {
		j, date = p.dateAt(j+1), true
	}
	dashed := false
	if groups > 0 && p.isPunct(j, "-") && p.wireAt(j+1) > 0 && !p.lx[j+1].spaced {
		j, dashed = j+1, true
	}
	if e := p.wireAt(j); e > 0 {
		k := p.skipMarks(e)
		after := false
		if d := p.dateAt(k); d > 0 {
			k, after = p.skipMarks(d), true
		}
		if k >= len(p.lx) || !(groups == 0 || upper || date || dashed || after) {
			return -1
		}
		return k
	}
	if date && upper && p.isPunct(j, "-") && p.skipMarks(j) < len(p.lx) {
		return p.skipMarks(j)
	}
	return -1
}

// allUpper reports whether every word of the part is in capitals: then
// capitals say nothing of a dateline.
func (p *part) allUpper() bool {
	for k := range p.lx {
		if p.lx[k].kind == lexWord && !p.lx[k].upper {
			return false
		}
	}
	return true
}

// skipMarks returns the first lexeme at or after i that is not a dash,
// slash, colon or bar.
func (p *part) skipMarks(i int) int {
	for p.isPunct(i, "-/:|,") {
		i++
	}
	return i
}

// stripTail drops a source name that ends the part after a dash or bar:
// " - Reuters", " | Bloomberg".
func (p *part) stripTail() {
	end := len(p.lx)
	for end > 0 && p.lx[end-1].kind == lexPunct && p.lx[end-1].p != '?' {
		end--
	}
	sep := false // a dash or bar among the last words: else no source name
	for k := end - 1; k >= 0 && k >= end-5; k-- {
		sep = sep || p.isPunct(k, "-|")
	}
	if !sep {
		return
	}
	for _, s := range sources {
		start := end - len(s)
		if start < 1 || !p.isPunct(start-1, "-|") {
			continue
		}
		if _, ok := p.words(start, s); ok {
			p.dropRange(start-1, len(p.lx))
			return
		}
	}
}

// emit appends the part's tokens to key: words (acronyms without their
// dots, scale words after a figure in one form), figures with their sign
// and percent sign, currency signs before figures, question marks.
func (p *part) emit(key []byte) []byte {
	sep := func() {
		if len(key) > 0 {
			key = append(key, ' ')
		}
	}
	live := func(i int) bool { return i >= 0 && i < len(p.lx) && !p.lx[i].drop }
	for i := 0; i < len(p.lx); i++ {
		l := &p.lx[i]
		if l.drop {
			continue
		}
		switch l.kind {
		case lexWord:
			w := p.text(i)
			afterNumber := live(i-1) && p.lx[i-1].kind == lexNumber
			if afterNumber {
				if u := unitWord(w); u != "" {
					sep()
					key = append(key, u...)
					continue
				}
				if string(w) == "basis" && (p.isWord(i+1, "points") || p.isWord(i+1, "point")) {
					sep()
					key = append(key, "bps"...)
					i++
					continue
				}
			}
			sep()
			switch m := month(w); {
			case m != "" && len(w) < len(m) && (afterNumber || p.dayAfter(i)):
				key = append(key, m...)
			case string(w) == "euro" || string(w) == "euros":
				key = append(key, "eur"...)
			case l.acronym:
				for _, c := range w {
					if c != '.' {
						key = append(key, c)
					}
				}
			default:
				key = append(key, w...)
			}
		case lexNumber:
			sep()
			// A dash or plus right before the figure, after a space or a
			// bracket, is its sign ("-5%", "(-0.12)"); after a word or
			// figure it joins them ("5-6%", "covid-19").
			if live(i-1) && p.isPunct(i-1, "-+") && !l.spaced &&
				(p.lx[i-1].spaced || p.kind(i-2) == lexPunct && !p.isPunct(i-2, "-+")) {
				key = append(key, p.lx[i-1].p)
			}
			key = append(key, p.text(i)...)
			switch {
			case live(i+1) && p.isPunct(i+1, "%"):
				key = append(key, '%')
				i++
			case p.isWord(i+1, "percent") || p.isWord(i+1, "pct"):
				key = append(key, '%')
				i++
			case p.isWord(i+1, "per") && p.isWord(i+2, "cent"):
				key = append(key, '%')
				i += 2
			}
		case lexCurrency:
			sep()
			switch string(p.text(i)) {
			case "€":
				key = append(key, "eur"...)
			case "£":
				key = append(key, "gbp"...)
			default:
				key = append(key, p.text(i)...)
			}
		case lexPunct:
			switch l.p {
			case '?', '%':
				sep()
				key = append(key, l.p)
			case '$':
				if live(i+1) && p.lx[i+1].kind == lexWord && !p.lx[i+1].spaced {
					continue // a cashtag: "$ACME"
				}
				sep()
				key = append(key, '$')
			}
		}
	}
	return key
}

// dayAfter reports whether a figure follows lexeme i, with or without a
// dot between ("Dec. 1", "Dec 1").
func (p *part) dayAfter(i int) bool {
	j := i + 1
	if p.isPunct(j, ".") {
		j++
	}
	return p.kind(j) == lexNumber && !p.lx[j].drop
}

// unitWord returns the one form of a scale or unit word written after a
// figure, or "".
func unitWord(w []byte) string {
	switch string(w) {
	case "m", "mn", "mln", "mio", "mm", "million", "millions":
		return "mn"
	case "b", "bn", "bln", "billion", "billions":
		return "bn"
	case "k", "thousand", "thousands", "tsd":
		return "k"
	case "tn", "trillion", "trillions":
		return "tn"
	case "bps", "bp":
		return "bps"
	}
	return ""
}
