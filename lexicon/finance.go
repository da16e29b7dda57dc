package lexicon

import (
	"bufio"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Weights of the rule-made hits (the phrases carry their own weights).
const (
	metricVerbWeight    = 0.6 // "operating profit rose": times the verb's strength
	metricCompareWeight = 0.5 // "EUR 5.2 mn, compared to EUR 3.1 mn"
	negatedFactor       = -0.5
	negationWindow      = 3    // words before a hit searched for a negation
	verbWindowAfter     = 6    // words after a metric searched for its verb
	verbWindowBefore    = 3    // words before a metric ("higher sales", "cut costs")
	numberWindow        = 10   // words after a metric searched for its figure, up to the next metric
	compareWindow       = 8    // words after the figure searched for "compared to" or "15 % more"
	priorWindow         = 7    // words after "compared to" searched for the earlier figure
	signWindow          = 4    // words before a figure searched for "a loss of", "a profit of"
	flatShare           = 0.01 // figures closer than this share of the larger read as unchanged
	defaultGap          = 3
	maxSlots            = 12
)

// slot is one word position of a pattern: a set of word ids, or a gap that
// skips up to gap words.
type slot struct {
	ids []int32
	gap int
}

func (s *slot) has(id int32) bool {
	for _, x := range s.ids {
		if x == id {
			return true
		}
	}
	return false
}

// pattern is a compiled phrase, metric or comparator.
type pattern struct {
	slots  []slot
	name   int32   // index into the owner's names
	weight float64 // phrase weight (0: a neutral phrase, no hit), or metric polarity
	hasNeg bool    // spells a negation itself: no negation check
	rank   int     // phrase pass: 0 exact multi-word, 1 with gaps, 2 one word
}

// wordClass is what the finance rules know about one word id.
type wordClass struct {
	dir    float64 // >0 up, <0 down, magnitude = strength
	eval   float64 // >0 better, <0 worse
	unit   float64 // multiplier when the word follows a number
	than   float64 // >0 more, <0 less: a direction only right after a figure ("15 % more")
	figure float64 // +1 "a profit of", -1 "a loss of": which side of zero a figure after it lies
	neg    bool
	med    bool // names drugs, trials or patients: the text is medical news
	// rule is set when a phrase, a metric, a comparison, a negation or a
	// word class other than med uses the word. A word with med alone only
	// says what kind of news a text is, and judges nothing: see Weighs.
	rule bool
}

// finance holds the compiled finance tables; read-only after New.
type finance struct {
	ids     map[string]int32
	classes []wordClass // by word id

	phrases      []pattern
	phraseFirst  [][]int32 // by word id: phrases whose first slot holds it, file order
	phraseNames  []string
	metrics      []pattern
	metricFirst  [][]int32
	metricNames  []string // per metric m: name+" down", " up", " worse", " better" at 4m..4m+3
	compares     []pattern
	compareFirst [][]int32
	negates      []pattern // multi-word negations ("fails to")
	negateFirst  [][]int32
	tID          int32 // "t" of "didn't" split at the apostrophe
}

// ftok is one finance token: a run of letters/digits, lower-cased.
type ftok struct {
	id    int32 // -1 when the word is in no table
	num   float64
	isNum bool
	year  bool // a bare integer 1900..2100: a year, not a figure
	paren bool // an opening bracket came right before it
	endsN bool // ends in 'n' ("didn" of "didn't")
}

func (f *finance) wordID(w string) int32 {
	if id, ok := f.ids[w]; ok {
		return id
	}
	id := int32(len(f.classes))
	f.ids[w] = id
	f.classes = append(f.classes, wordClass{})
	return id
}

// inflect expands a "+" word: raise+ -> raise raises raised raising.
func inflect(base string) []string {
	out := []string{base}
	n := len(base)
	switch {
	case strings.HasSuffix(base, "e"):
		out = append(out, base+"s", base+"d", base[:n-1]+"ing")
	case strings.HasSuffix(base, "s"), strings.HasSuffix(base, "sh"), strings.HasSuffix(base, "ch"),
		strings.HasSuffix(base, "x"), strings.HasSuffix(base, "z"):
		out = append(out, base+"es", base+"ed", base+"ing")
	case n > 1 && base[n-1] == 'y' && !strings.ContainsRune("aeiou", rune(base[n-2])):
		out = append(out, base[:n-1]+"ies", base[:n-1]+"ied", base+"ing")
	default:
		out = append(out, base+"s", base+"ed", base+"ing")
	}
	return out
}

func validWord(w string) bool {
	if w == "" {
		return false
	}
	for _, r := range w {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// compile parses a pattern: words separated by spaces, alternatives by "|",
// "+" for inflections, "~"/"~N" for gaps.
func (f *finance) compile(src string) (pattern, error) {
	var p pattern
	fields := strings.Fields(src)
	if len(fields) == 0 || len(fields) > maxSlots {
		return p, fmt.Errorf("pattern %q: want 1 to %d words", src, maxSlots)
	}
	for i, fld := range fields {
		if strings.HasPrefix(fld, "~") {
			gap := defaultGap
			if len(fld) > 1 {
				g, err := strconv.Atoi(fld[1:])
				if err != nil || g < 1 || g > 6 {
					return p, fmt.Errorf("pattern %q: bad gap %q", src, fld)
				}
				gap = g
			}
			if i == 0 || i == len(fields)-1 {
				return p, fmt.Errorf("pattern %q: a gap must sit between words", src)
			}
			p.slots = append(p.slots, slot{gap: gap})
			p.rank = 1
			continue
		}
		var s slot
		for _, alt := range strings.Split(fld, "|") {
			words := []string{alt}
			if base, ok := strings.CutSuffix(alt, "+"); ok {
				words = inflect(base)
			}
			for _, w := range words {
				if !validWord(w) {
					return p, fmt.Errorf("pattern %q: %q is not one lower-case word", src, w)
				}
				switch w {
				case "not", "no", "never", "t", "without", "nor", "cannot":
					p.hasNeg = true
				}
				id := f.wordID(w)
				if !s.has(id) {
					s.ids = append(s.ids, id)
				}
			}
		}
		p.slots = append(p.slots, s)
	}
	if len(p.slots) == 1 {
		p.rank = 2
	}
	return p, nil
}

// markRule records that every word of p takes part in a rule.
func (f *finance) markRule(p *pattern) {
	for _, sl := range p.slots {
		for _, id := range sl.ids {
			f.classes[id].rule = true
		}
	}
}

// index adds pattern i to first[id] for every id of its first slot.
func (f *finance) index(first [][]int32, p *pattern, i int) [][]int32 {
	for _, id := range p.slots[0].ids {
		for int(id) >= len(first) {
			first = append(first, nil)
		}
		first[id] = append(first[id], int32(i))
	}
	return first
}

// readTSV calls fn with the tab-separated fields of each non-comment line.
func readTSV(name, data string, cols int, fn func(line int, fields []string) error) error {
	sc := bufio.NewScanner(strings.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != cols {
			return fmt.Errorf("%s:%d: want %d tab-separated fields, got %d", name, n, cols, len(fields))
		}
		if err := fn(n, fields); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	return sc.Err()
}

func newFinance(phrasesTSV, termsTSV string) (*finance, error) {
	f := &finance{ids: make(map[string]int32)}
	f.tID = f.wordID("t")
	nameIdx := map[string]int32{}
	err := readTSV("finance_phrases.tsv", phrasesTSV, 3, func(_ int, fl []string) error {
		w, err := strconv.ParseFloat(fl[1], 64)
		if err != nil || w < -1 || w > 1 {
			return fmt.Errorf("weight %q: want a number in [-1,1]", fl[1])
		}
		p, err := f.compile(fl[2])
		if err != nil {
			return err
		}
		if w == 0 && p.rank != 0 {
			return fmt.Errorf("a neutral phrase (weight 0) must be exact words, two or more")
		}
		f.markRule(&p)
		idx, ok := nameIdx[fl[0]]
		if !ok {
			idx = int32(len(f.phraseNames))
			nameIdx[fl[0]] = idx
			f.phraseNames = append(f.phraseNames, fl[0])
		}
		p.name, p.weight = idx, w
		f.phrases = append(f.phrases, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	metricIdx := map[string]int32{}
	err = readTSV("finance_terms.tsv", termsTSV, 4, func(_ int, fl []string) error {
		kind, name := fl[0], fl[1]
		v, err := strconv.ParseFloat(fl[2], 64)
		if err != nil {
			return fmt.Errorf("value %q: %w", fl[2], err)
		}
		p, err := f.compile(fl[3])
		if err != nil {
			return err
		}
		if kind != "medical" {
			f.markRule(&p)
		}
		single := func() error {
			if len(p.slots) != 1 {
				return fmt.Errorf("%s: want single words", kind)
			}
			return nil
		}
		switch kind {
		case "metric":
			if v != 1 && v != -1 {
				return fmt.Errorf("metric polarity %v: want 1 or -1", v)
			}
			idx, ok := metricIdx[name]
			if !ok {
				idx = int32(len(f.metricNames) / 4)
				metricIdx[name] = idx
				f.metricNames = append(f.metricNames, name+" down", name+" up", name+" worse", name+" better")
			}
			p.name, p.weight = idx, v
			f.metrics = append(f.metrics, p)
		case "figure":
			if err := single(); err != nil {
				return err
			}
			if v != 1 && v != -1 {
				return fmt.Errorf("figure sign %v: want 1 or -1", v)
			}
			for _, id := range p.slots[0].ids {
				f.classes[id].figure = v
			}
		case "medical":
			if err := single(); err != nil {
				return err
			}
			for _, id := range p.slots[0].ids {
				f.classes[id].med = true
			}
		case "up", "down", "better", "worse", "unit", "more", "less":
			if err := single(); err != nil {
				return err
			}
			if v <= 0 {
				return fmt.Errorf("%s value %v: want > 0", kind, v)
			}
			for _, id := range p.slots[0].ids {
				c := &f.classes[id]
				if c.dir != 0 || c.eval != 0 || c.unit != 0 || c.than != 0 {
					return fmt.Errorf("word id %d listed twice in word classes", id)
				}
				switch kind {
				case "up":
					c.dir = v
				case "down":
					c.dir = -v
				case "better":
					c.eval = v
				case "worse":
					c.eval = -v
				case "unit":
					c.unit = v
				case "more":
					c.than = v
				case "less":
					c.than = -v
				}
			}
		case "compare":
			f.compares = append(f.compares, p)
		case "negate":
			if len(p.slots) == 1 {
				for _, id := range p.slots[0].ids {
					f.classes[id].neg = true
				}
			} else {
				f.negates = append(f.negates, p)
			}
		default:
			return fmt.Errorf("unknown kind %q", kind)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(f.phrases) == 0 || len(f.metrics) == 0 {
		return nil, fmt.Errorf("finance tables: no phrases or no metrics")
	}
	for i := range f.phrases {
		f.phraseFirst = f.index(f.phraseFirst, &f.phrases[i], i)
	}
	for i := range f.metrics {
		f.metricFirst = f.index(f.metricFirst, &f.metrics[i], i)
	}
	for i := range f.compares {
		f.compareFirst = f.index(f.compareFirst, &f.compares[i], i)
	}
	for i := range f.negates {
		f.negateFirst = f.index(f.negateFirst, &f.negates[i], i)
	}
	return f, nil
}

func firstOf(first [][]int32, id int32) []int32 {
	if id < 0 || int(id) >= len(first) {
		return nil
	}
	return first[id]
}

// match tries p at toks[ti:], filling pos with the token index of each word
// slot (-1 for gaps). It returns the index after the match.
func match(p *pattern, toks []ftok, si, ti int, pos *[maxSlots]int) (int, bool) {
	if si == len(p.slots) {
		return ti, true
	}
	s := &p.slots[si]
	if s.gap > 0 {
		pos[si] = -1
		for g := 0; g <= s.gap && ti+g < len(toks); g++ {
			if end, ok := match(p, toks, si+1, ti+g, pos); ok {
				return end, true
			}
		}
		return 0, false
	}
	if ti >= len(toks) || !s.has(toks[ti].id) {
		return 0, false
	}
	pos[si] = ti
	return match(p, toks, si+1, ti+1, pos)
}

// tokenize fills sc.ft with the finance tokens of text.
func (f *finance) tokenize(sc *scratch, text string) {
	sc.ft = sc.ft[:0]
	sc.fbuf = sc.fbuf[:0]
	paren, apos, minus := false, false, false
	prev := ' ' // the last rune read
	for i := 0; i < len(text); {
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		isDigit := r >= '0' && r <= '9'
		if !isDigit && !isLetter(r) {
			if r == '(' || r == '[' {
				paren = true
			}
			apos = r == '\'' || r == '\u2019'
			// "EUR -4.3 mn", "(-1.2)": a minus sign that starts a word.
			minus = (r == '-' || r == '\u2212') && (unicode.IsSpace(prev) || prev == '(' || prev == '[')
			prev = r
			i += n
			continue
		}
		start := len(sc.fbuf)
		t := ftok{paren: paren}
		paren = false
		afterApos, negative := apos, minus
		apos, minus = false, false
		if isDigit {
			// A figure: digits with inner "." or "," ("5.2", "1,200", "5,2").
			val, frac, scale, dec := 0.0, false, 0.1, false
			for i < len(text) {
				c := text[i]
				switch {
				case c >= '0' && c <= '9':
					if frac {
						val += float64(c-'0') * scale
						scale /= 10
					} else {
						val = val*10 + float64(c-'0')
					}
					sc.fbuf = append(sc.fbuf, c)
					i++
					continue
				case (c == '.' || c == ',') && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
					if c == ',' && !frac && thousands(text[i+1:]) {
						i++
						continue
					}
					if frac {
						// "1.200.000": a second separator ends the figure.
						break
					}
					frac, dec = true, true
					sc.fbuf = append(sc.fbuf, '.')
					i++
					continue
				}
				break
			}
			t.isNum, t.num = true, val
			t.year = !dec && val >= 1900 && val <= 2100
			if negative {
				t.num, t.year = -val, false
			}
		} else {
			for i < len(text) {
				r, n = rune(text[i]), 1
				if r >= utf8.RuneSelf {
					r, n = utf8.DecodeRuneInString(text[i:])
				}
				if !isLetter(r) && !(r >= '0' && r <= '9') {
					break
				}
				if r < utf8.RuneSelf {
					c := byte(r)
					if c >= 'A' && c <= 'Z' {
						c += 'a' - 'A'
					}
					sc.fbuf = append(sc.fbuf, c)
				} else {
					sc.fbuf = utf8.AppendRune(sc.fbuf, unicode.ToLower(r))
				}
				i += n
			}
		}
		prev = 'a'
		w := sc.fbuf[start:]
		if afterApos && len(w) == 1 && w[0] == 's' {
			// The possessive "'s" ("the company's order book") is no word
			// of its own: it would only push words out of each other's window.
			sc.fbuf = sc.fbuf[:start]
			continue
		}
		t.endsN = len(w) > 0 && w[len(w)-1] == 'n'
		t.id = -1
		if id, ok := f.ids[string(w)]; ok {
			t.id = id
		}
		sc.ft = append(sc.ft, t)
	}
	// Scale figures by a unit word after them ("5.2 mn").
	for k := range sc.ft {
		t := &sc.ft[k]
		if t.isNum && k+1 < len(sc.ft) && sc.ft[k+1].id >= 0 {
			if u := f.classes[sc.ft[k+1].id].unit; u > 0 {
				t.num *= u
				t.year = false
			}
		}
	}
}

func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	return unicode.IsLetter(r)
}

// thousands reports whether s starts with exactly three digits: "1,200".
func thousands(s string) bool {
	if len(s) < 3 {
		return false
	}
	for k := 0; k < 3; k++ {
		if s[k] < '0' || s[k] > '9' {
			return false
		}
	}
	return len(s) == 3 || s[3] < '0' || s[3] > '9'
}

func (f *finance) class(t *ftok) wordClass {
	if t.id < 0 {
		return wordClass{}
	}
	return f.classes[t.id]
}

// medical reports whether the text is drug or trial news: it names a
// drug, a trial, patients, a regulator of medicines.
func (f *finance) medical(sc *scratch) bool {
	for k := range sc.ft {
		if f.class(&sc.ft[k]).med {
			return true
		}
	}
	return false
}

// negatedAt reports whether a negation starts at token k.
func (f *finance) negatedAt(toks []ftok, k int) bool {
	t := &toks[k]
	if f.class(t).neg {
		return true
	}
	if t.id == f.tID && k > 0 && toks[k-1].endsN { // didn't, can't, won't
		return true
	}
	var pos [maxSlots]int
	for _, pi := range firstOf(f.negateFirst, t.id) {
		if _, ok := match(&f.negates[pi], toks, 0, k, &pos); ok {
			return true
		}
	}
	return false
}

// negatedSpan reports whether a negation sits in the window words before lo
// or anywhere in [lo, hi).
func (f *finance) negatedSpan(toks []ftok, lo, hi int) bool {
	for k := max(0, lo-negationWindow); k < hi && k < len(toks); k++ {
		if f.negatedAt(toks, k) {
			return true
		}
	}
	return false
}

// phraseAt tries the phrases of one rank starting at token k and records
// the first that matches; it returns its weight, or 0.
func (f *finance) phraseAt(sc *scratch, k, rank int, pos *[maxSlots]int) float64 {
	toks := sc.ft
	for _, pi := range firstOf(f.phraseFirst, toks[k].id) {
		p := &f.phrases[pi]
		if p.rank != rank || sc.usedPhrase[p.name] || sc.covered[k] {
			continue
		}
		_, ok := match(p, toks, 0, k, pos)
		if !ok || anyCovered(sc.covered, pos[:len(p.slots)]) {
			continue
		}
		for _, q := range pos[:len(p.slots)] {
			if q >= 0 {
				sc.covered[q] = true
			}
		}
		if p.weight == 0 {
			// A neutral phrase ("up to", "weight loss") only keeps its
			// words from the other rules.
			continue
		}
		w := p.weight
		if !p.hasNeg && f.negatedGap(toks, k, pos[:len(p.slots)]) {
			w *= negatedFactor
		}
		sc.usedPhrase[p.name] = true
		sc.hits = append(sc.hits, posHit{Hit{Phrase: f.phraseNames[p.name], Weight: w}, k})
		return w
	}
	return 0
}

// posHit is a Hit with the index of its first word, for ordering.
type posHit struct {
	Hit
	pos int
}

// metricOcc is one metric found in the text.
type metricOcc struct {
	metric     int32 // metric name index
	polarity   float64
	start, end int
}

// score finds the finance hits of sc.ft, appends them to sc.hits and returns
// the sum of their weights.
func (f *finance) score(sc *scratch) float64 {
	toks := sc.ft
	n := len(toks)
	sc.covered = resetBools(sc.covered, n)
	sc.usedPhrase = resetBools(sc.usedPhrase, len(f.phraseNames))
	sc.usedMetric = resetBools(sc.usedMetric, len(f.metricNames))
	sc.hits = sc.hits[:0]
	sc.occ = sc.occ[:0]
	sum := 0.0
	var pos [maxSlots]int

	// 1. Phrases, most specific first: exact multi-word ones over the whole
	// text, then those with gaps, then single words; within a pass left to
	// right, and at one word the first line that matches wins.
	for rank := 0; rank < 3; rank++ {
		for k := 0; k < n; k++ {
			sum += f.phraseAt(sc, k, rank, &pos)
		}
	}

	// 2. Metrics not inside a phrase.
	for k := 0; k < n; k++ {
		if sc.covered[k] {
			continue
		}
		for _, mi := range firstOf(f.metricFirst, toks[k].id) {
			m := &f.metrics[mi]
			end, ok := match(m, toks, 0, k, &pos)
			if !ok {
				continue
			}
			sc.occ = append(sc.occ, metricOcc{metric: m.name, polarity: m.weight, start: k, end: end})
			k = end - 1
			break
		}
	}

	// 3. Each metric's direction: a verb near it, else figures compared
	// across periods.
	for oi, o := range sc.occ {
		sign, w, at, label := f.metricVerb(sc, o)
		if sign == 0 {
			sign, at, label = f.metricCompare(sc, oi)
			w = metricCompareWeight
		}
		if sign == 0 {
			continue
		}
		name := 4*int(o.metric) + label
		if sc.usedMetric[name] {
			continue
		}
		lo, hi := min(o.start, at), max(o.end, at+1)
		if f.negatedSpan(toks, lo, hi) {
			w *= negatedFactor
		}
		sc.usedMetric[name] = true
		sc.hits = append(sc.hits, posHit{Hit{Phrase: f.metricNames[name], Weight: w * sign}, o.start})
		sum += w * sign
	}
	return sum
}

// Offsets of a metric's hit names in metricNames.
const (
	labelDown = iota
	labelUp
	labelWorse
	labelBetter
)

// dirLabel is labelUp for d > 0, else labelDown.
func dirLabel(d float64) int {
	if d > 0 {
		return labelUp
	}
	return labelDown
}

// metricVerb looks for a direction or judgement word near the metric. It
// returns the good-news sign (+1/-1, 0 if none), the weight, the word's
// index and the hit's label.
func (f *finance) metricVerb(sc *scratch, o metricOcc) (sign, weight float64, at, label int) {
	toks := sc.ft
	try := func(j int) bool {
		if sc.covered[j] {
			return false
		}
		c := f.class(&toks[j])
		switch {
		case c.eval != 0:
			sign, weight, label = math.Copysign(1, c.eval), metricVerbWeight*math.Abs(c.eval), labelWorse
			if c.eval > 0 {
				label = labelBetter
			}
		case c.dir != 0:
			sign, weight, label = math.Copysign(1, c.dir)*o.polarity, metricVerbWeight*math.Abs(c.dir), dirLabel(c.dir)
		default:
			return false
		}
		at = j
		return true
	}
	for j := o.end; j < len(toks) && j < o.end+verbWindowAfter; j++ {
		if try(j) {
			return
		}
	}
	for j := o.start - 1; j >= 0 && j >= o.start-verbWindowBefore; j-- {
		if try(j) {
			return
		}
	}
	return 0, 0, 0, 0
}

// figure reports whether t is a figure: a number that is not a year.
func figure(t *ftok) bool { return t.isNum && !t.year }

// metricCompare reads a metric's direction from figures: "<metric> ... X,
// compared to Y", "X (Y)", "X, while in the corresponding period it was Y",
// "X, which is 15 % more than" or "X, an increase of 12 %". It returns the
// good-news sign (0 if the figures say nothing), the index of the word that
// decided it and the hit's label. Figures of a profit or loss are compared
// on one scale, so that "a loss of EUR 0.8 mn, compared with a profit of
// EUR 2.7 mn" is worse and "a profit of 1.3, compared with a loss of 0.6"
// better.
func (f *finance) metricCompare(sc *scratch, oi int) (float64, int, int) {
	toks, o := sc.ft, sc.occ[oi]
	n := len(toks)
	limit := n // the current figure belongs to this metric, not the next one
	if oi+1 < len(sc.occ) {
		limit = sc.occ[oi+1].start
	}
	cur := -1
	for j := o.end; j < limit && j < o.end+numberWindow; j++ {
		if figure(&toks[j]) {
			cur = j
			break
		}
	}
	if cur < 0 {
		return 0, 0, 0
	}
	// A profit or loss metric: which side of zero each figure lies.
	own := 0.0
	for k := o.start; k < o.end; k++ {
		if g := f.class(&toks[k]).figure; g != 0 {
			own = g
		}
	}
	curSign := f.figureSign(toks, cur, o.start, own)
	var pos [maxSlots]int
	for k := cur + 1; k < limit && k < cur+compareWindow; k++ {
		if sc.covered[k] {
			continue
		}
		c := f.class(&toks[k])
		// "15 % more than", "EUR 3 mn lower than a year ago", "EUR 5 mn,
		// up from", "which is an increase of 12 %".
		afterFigure := figure(&toks[k-1]) || (k > cur+1 && figure(&toks[k-2]) && f.class(&toks[k-1]).unit > 0)
		beforeFigure := (k+1 < n && figure(&toks[k+1])) || (k+2 < n && figure(&toks[k+2]))
		if d := c.dir + c.than; d != 0 && (afterFigure || (beforeFigure && c.dir != 0)) {
			return math.Copysign(1, d) * o.polarity, k, dirLabel(d)
		}
		after := -1
		if toks[k].paren {
			after = k
		} else {
			for _, ci := range firstOf(f.compareFirst, toks[k].id) {
				if end, ok := match(&f.compares[ci], toks, 0, k, &pos); ok {
					after = end
					break
				}
			}
		}
		if after < 0 {
			continue
		}
		for j := after; j < n && j < after+priorWindow; j++ {
			if !figure(&toks[j]) {
				continue
			}
			x1, x2 := toks[cur].num, toks[j].num
			if own != 0 {
				x1 *= curSign
				x2 *= f.figureSign(toks, j, k, curSign)
			}
			d := x1 - x2
			if math.Abs(d) < flatShare*max(math.Abs(x1), math.Abs(x2)) || d == 0 {
				return 0, 0, 0
			}
			if own != 0 {
				// On the profit scale, up is good news; the label names
				// the metric's own move ("loss down").
				return math.Copysign(1, d), j, dirLabel(d * own)
			}
			return math.Copysign(1, d) * o.polarity, j, dirLabel(d)
		}
		return 0, 0, 0
	}
	return 0, 0, 0
}

// figureSign is +1 or -1 when "a profit of" or "a loss of" stands in the
// signWindow words before the figure at j (not before lo), else def.
func (f *finance) figureSign(toks []ftok, j, lo int, def float64) float64 {
	for k := j - 1; k >= lo && k >= j-signWindow; k-- {
		if toks[k].isNum {
			break
		}
		if g := f.class(&toks[k]).figure; g != 0 {
			return g
		}
	}
	return def
}

// negatedGap reports whether a negation sits before a phrase starting at k or
// inside its gaps.
func (f *finance) negatedGap(toks []ftok, k int, pos []int) bool {
	last := k
	for _, q := range pos {
		if q > last {
			last = q
		}
	}
	for j := max(0, k-negationWindow); j <= last; j++ {
		if j >= k && contains(pos, j) {
			continue
		}
		if f.negatedAt(toks, j) {
			return true
		}
	}
	return false
}

func contains(pos []int, j int) bool {
	for _, q := range pos {
		if q == j {
			return true
		}
	}
	return false
}

func anyCovered(covered []bool, pos []int) bool {
	for _, q := range pos {
		if q >= 0 && covered[q] {
			return true
		}
	}
	return false
}

func resetBools(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	b = b[:n]
	clear(b)
	return b
}
