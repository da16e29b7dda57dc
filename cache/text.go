package cache

import (
	"hash/maphash"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// Text is an item's text as the cache reads it: its exact key, the
// shingles its near-duplicates are measured by, and the parts the meaning
// guard compares.
type Text struct {
	// Key is the exact-key form: the words and numbers, lower-cased,
	// with the wires' boilerplate ("PRESS RELEASE:", "(GLOBE NEWSWIRE)
	// --", "(Reuters) -", "/PRNewswire/", exchange tags) and
	// punctuation gone, joined by single spaces.
	Key string
	// Tokens are Key's words and numbers, in order.
	Tokens []string
	// shingles are the sorted hashes of the content words' unigrams and
	// bigrams (stop words out, light stemming in).
	shingles []uint64
	// numbers are the number tokens, with their sign, currency and unit,
	// in order.
	numbers []string
}

// seed hashes shingles; fixed for the process, which is all a Text lives.
var seed = maphash.MakeSeed()

// Read parses an item's title and summary.
func Read(title, summary string) Text {
	s := title
	if summary != "" {
		s += " . " + summary
	}
	return fromTokens(tokenize(stripBoilerplate(strings.ToLower(s))))
}

// Encode is t in a compact form to store beside its answer.
func (t *Text) Encode() string { return t.Key }

// DecodeText is the inverse of Encode.
func DecodeText(s string) (Text, error) {
	return fromTokens(strings.Fields(s)), nil
}

func fromTokens(toks []string) Text {
	t := Text{Key: strings.Join(toks, " "), Tokens: toks}
	var content []string
	for _, w := range toks {
		if isNumber(w) {
			t.numbers = append(t.numbers, w)
			content = append(content, w)
			continue
		}
		if stopWords[w] {
			continue
		}
		content = append(content, stem(w))
	}
	for i, w := range content {
		t.shingles = append(t.shingles, maphash.String(seed, w))
		if i > 0 {
			t.shingles = append(t.shingles, maphash.String(seed, content[i-1]+" "+w))
		}
	}
	slices.Sort(t.shingles)
	t.shingles = slices.Compact(t.shingles)
	return t
}

// Similarity is the Jaccard index of a's and b's shingles, 0 to 1.
func Similarity(a, b *Text) float64 {
	if len(a.shingles) == 0 && len(b.shingles) == 0 {
		return 1
	}
	inter, i, j := 0, 0, 0
	for i < len(a.shingles) && j < len(b.shingles) {
		switch x, y := a.shingles[i], b.shingles[j]; {
		case x == y:
			inter++
			i++
			j++
		case x < y:
			i++
		default:
			j++
		}
	}
	return float64(inter) / float64(len(a.shingles)+len(b.shingles)-inter)
}

var boilerplate = []*regexp.Regexp{
	regexp.MustCompile(`^\s*(press release|news release|update|breaking)\s*[:\-–—|]\s*`),
	regexp.MustCompile(`\((globe ?newswire|business ?wire|pr ?newswire|accesswire|reuters)\)\s*[-–—]*`),
	regexp.MustCompile(`/\s*(pr ?newswire|globe ?newswire)\s*/`),
	regexp.MustCompile(`\((nasdaq|nyse|nyse american|amex|otc\w*|tsx(-?v)?|lse|asx)\s*:\s*[a-z.]+\)`),
	regexp.MustCompile(`\s*[-–—|]\s*(reuters|bloomberg)\s*$`),
}

func stripBoilerplate(s string) string {
	for _, re := range boilerplate {
		s = re.ReplaceAllString(s, " ")
	}
	return s
}

// tokenize splits lower-cased text into words (letters and digits) and
// numbers (a sign, a currency sign, digits with their separators, a
// percent sign).
func tokenize(s string) []string {
	var out []string
	rs := []rune(s)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsDigit(r) || ((r == '-' || r == '+' || r == '−' || r == '$' || r == '€' || r == '£') && i+1 < len(rs) && unicode.IsDigit(rs[i+1]) && (i == 0 || !isWordRune(rs[i-1]))):
			j := i + 1
			for j < len(rs) && (unicode.IsDigit(rs[j]) || ((rs[j] == '.' || rs[j] == ',') && j+1 < len(rs) && unicode.IsDigit(rs[j+1]))) {
				j++
			}
			if j < len(rs) && rs[j] == '%' {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		case isWordRune(r):
			j := i + 1
			for j < len(rs) && (isWordRune(rs[j]) || (rs[j] == '\'' && j+1 < len(rs) && unicode.IsLetter(rs[j+1]))) {
				j++
			}
			out = append(out, string(rs[i:j]))
			i = j
		default:
			i++
		}
	}
	return out
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func isNumber(w string) bool {
	for _, r := range w {
		if unicode.IsDigit(r) {
			return true
		}
	}
	return false
}

var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "of": true, "to": true, "for": true, "in": true, "on": true,
	"at": true, "by": true, "with": true, "and": true, "its": true, "it": true, "inc": true,
	"corp": true, "corporation": true, "co": true, "ltd": true, "plc": true, "llc": true,
}

// stem strips the commonest English inflections.
func stem(w string) string {
	for _, suf := range []string{"ing", "ed", "es", "s"} {
		if len(w) > len(suf)+2 && strings.HasSuffix(w, suf) {
			return strings.TrimSuffix(w, suf)
		}
	}
	return w
}
