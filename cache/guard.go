package cache

import (
	"math"
	"slices"
	"strconv"
)

// Guard refuses a near-duplicate hit whose meaning may differ from the
// request's. Similarity cannot see a meaning flipped by one word
// ("approves" and "rejects", "rose" and "fell", a changed figure): in a
// long text one word is a few shingles in a hundred. So a near hit must
// differ only in words that carry no sentiment, and only where the two
// texts otherwise say the same things in the same order.
//
// A refused hit costs one model call; a wrong hit sends a trader the wrong
// way. Every rule therefore refuses when in doubt.
//
// A Guard holds no state beyond weighs: it is safe for concurrent use when
// weighs is, as the lexicon's is.
type Guard struct {
	// weighs reports whether a lower-case word carries sentiment (the
	// lexicon's view); nil means every content word does.
	weighs func(word string) bool
}

// NewGuard returns a guard over weighs, which reports whether a lower-case
// word carries sentiment; in production it is (*lexicon.Scorer).Weighs. A
// nil weighs treats every content word as weighty, so that only texts
// differing in stop words, company suffixes, boilerplate and inflection
// pass.
func NewGuard(weighs func(word string) bool) *Guard { return &Guard{weighs: weighs} }

// prescoreBand is the dead band around 0 inside which a prescore has no
// sign: headlines that say nothing score a few hundredths either way.
const prescoreBand = 0.05

// Check says why the answer stored for b may not stand for a, in a few
// words for the logs, or "" when it may. preA and preB are the two texts'
// lexicon prescores (Score in [-1,1]). The reason starts with the rule
// that refused:
//
//   - "empty": a text has no content word to compare;
//   - "number": the figures (numbers, number words, months) differ, in
//     value, sign, unit, currency or order ("EUR 5.2 mn ... EUR 3.1 mn"
//     against the two swapped; "third quarter" and "fourth quarter");
//   - "negation": what is negated differs ("approves" and "does not
//     approve"; "fails to meet" and "meets"), or a question mark;
//   - "opposed": the texts use the two poles of one axis of the table of
//     polar terms (approves/rejects, beats/misses, raises/cuts, rose/fell,
//     profit/loss, upgrade/downgrade, widened/narrowed, ...);
//   - "polar": a polar term is on one side only, or in another place;
//   - "weighs": the words that carry sentiment to the lexicon, stemmed
//     and in order, differ, counting as weighty the guard's own hedges
//     ("may", "plans", "reportedly", "rival");
//   - "order": the content words the two share come in another order
//     ("Acme to buy Beta" and "Beta to buy Acme"; "rose to 5 from 3" and
//     "rose from 5 to 3");
//   - "prescore": the prescores point different ways: opposite signs
//     outside a dead band of ±0.05, or one inside the band and the other
//     outside it and more than 0.05 away (0.04 and 0.06 agree; 0.0 and
//     0.3 do not), or either is NaN.
func (g *Guard) Check(a, b *Text, preA, preB float64) string {
	if len(a.words) == 0 || len(b.words) == 0 {
		return "empty: no content word"
	}
	if why := figuresDiffer(a.figures, b.figures); why != "" {
		return why
	}
	if why := negationDiffers(a.negated, b.negated); why != "" {
		return why
	}
	if why := polesDiffer(a.words, b.words); why != "" {
		return why
	}
	if why := g.weightsDiffer(a.Tokens, b.Tokens); why != "" {
		return why
	}
	if orderDiffers(a.words, b.words) {
		return "order: shared words in another order"
	}
	if prescoresDisagree(preA, preB) {
		return "prescore: " + strconv.FormatFloat(preA, 'f', 2, 64) + " / " + strconv.FormatFloat(preB, 'f', 2, 64)
	}
	return ""
}

func figuresDiffer(x, y []figure) string {
	if slices.Equal(x, y) {
		return ""
	}
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] != y[i] {
			return "number: " + x[i].String() + " / " + y[i].String()
		}
	}
	return "number: " + strconv.Itoa(len(x)) + " figures / " + strconv.Itoa(len(y))
}

func negationDiffers(x, y []string) string {
	if slices.Equal(x, y) {
		return ""
	}
	show := func(s []string, i int) string {
		switch {
		case i >= len(s):
			return "-"
		case s[i] == "?":
			return "?"
		}
		return "not " + s[i]
	}
	i := 0
	for i < len(x) && i < len(y) && x[i] == y[i] {
		i++
	}
	return "negation: " + show(x, i) + " / " + show(y, i)
}

// trim returns the lengths of the common prefix and the common suffix of
// x and y, which do not overlap. Every rule below is a filter over a
// sequence, so a difference can only lie between them: the rules look at
// the few words there instead of the whole text.
func trim(x, y []string) (pre, suf int) {
	n := min(len(x), len(y))
	for pre < n && x[pre] == y[pre] {
		pre++
	}
	for suf < n-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	return pre, suf
}

// polesDiffer compares the sequences of polar terms of two word lists.
func polesDiffer(x, y []string) string {
	pre, suf := trim(x, y)
	x, y = x[pre:len(x)-suf], y[pre:len(y)-suf]
	i, j := 0, 0
	for {
		i, j = nextPole(x, i), nextPole(y, j)
		if i == len(x) && j == len(y) {
			return ""
		}
		if i == len(x) || j == len(y) {
			w, v := "-", "-"
			if i < len(x) {
				w = x[i]
			}
			if j < len(y) {
				v = y[j]
			}
			return "polar: " + w + " / " + v
		}
		p, q := poleOf[x[i]], poleOf[y[j]]
		if p.axis == q.axis && p.minus != q.minus {
			return "opposed: " + x[i] + " / " + y[j] + " (" + polarAxes[p.axis].name + ")"
		}
		if p != q {
			return "polar: " + x[i] + " / " + y[j]
		}
		i++
		j++
	}
}

func nextPole(w []string, i int) int {
	for i < len(w) {
		if _, ok := poleOf[w[i]]; ok {
			return i
		}
		i++
	}
	return i
}

// weightsDiffer compares the sequences of the tokens that weigh, stemmed,
// with every negation written "not".
func (g *Guard) weightsDiffer(x, y []string) string {
	pre, suf := trim(x, y)
	i, j := pre, pre
	xe, ye := len(x)-suf, len(y)-suf
	for {
		i, j = g.nextWeighty(x, i, xe), g.nextWeighty(y, j, ye)
		if i == xe && j == ye {
			return ""
		}
		w, v := "-", "-"
		if i < xe {
			w = weightyForm(x, i)
		}
		if j < ye {
			v = weightyForm(y, j)
		}
		if w != v || w == "-" {
			return "weighs: " + w + " / " + v
		}
		i++
		j++
	}
}

func (g *Guard) nextWeighty(toks []string, i, end int) int {
	for ; i < end; i++ {
		t := toks[i]
		if isFigure(t) {
			continue // the figures rule has compared them
		}
		if g.weighs == nil && !stopWords(t) && !stopWords(bare(t)) || g.weighs != nil && g.weighs(t) ||
			isNegation(toks, i) || hedges[stem(t)] {
			return i
		}
	}
	return end
}

func weightyForm(toks []string, i int) string {
	if isNegation(toks, i) {
		return "not"
	}
	return stem(toks[i])
}

// orderDiffers reports whether the words x and y share come in another
// order (or another number of times) in each: a word dropped, added or
// replaced keeps the order of the rest; a swap does not.
func orderDiffers(x, y []string) bool {
	pre, suf := trim(x, y)
	mx, my := x[pre:len(x)-suf], y[pre:len(y)-suf]
	i, j := 0, 0
	for {
		for i < len(mx) && !slices.Contains(y, mx[i]) {
			i++
		}
		for j < len(my) && !slices.Contains(x, my[j]) {
			j++
		}
		if i == len(mx) || j == len(my) {
			return i != len(mx) || j != len(my)
		}
		if mx[i] != my[j] {
			return true
		}
		i++
		j++
	}
}

// prescoresDisagree reports whether two prescores point different ways:
// opposite signs outside the dead band, or one inside it and the other
// outside and more than the band's width away (two texts scoring 0.04 and
// 0.06 agree; 0.0 and 0.3 do not).
func prescoresDisagree(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return true
	}
	return prescoreSign(a) != prescoreSign(b) && math.Abs(a-b) > prescoreBand
}

func prescoreSign(s float64) int {
	switch {
	case s > prescoreBand:
		return 1
	case s < -prescoreBand:
		return -1
	}
	return 0
}

// hedges holds the stems of words that change what a headline claims
// without carrying sentiment to the lexicon: modal verbs, plans and
// rumours ("may be acquired" is not "acquired"; "mulls sale" is not
// "sells"), and roles ("rival wins contract" is not "wins contract"). The
// guard weighs them as if the lexicon did.
var hedges = stemSet(
	"may", "might", "could", "would", "should", "can", "must", "if", "unless", "whether", "until",
	"plan", "consider", "mull", "explore", "eye", "seek", "aim", "expect", "anticipate", "intend",
	"reportedly", "source", "rumor", "rumour", "speculation", "talks", "propose", "proposal",
	"potential", "possible", "possibly", "likely", "unlikely", "pending", "subject", "preliminary",
	"rival", "competitor", "peer", "former", "ex", "interim", "acting", "parent", "subsidiary",
)

// stemSet returns the set of the words' stems.
func stemSet(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[stem(w)] = true
	}
	return m
}

// polarAxis is one axis of opposed financial terms: words on one side
// mean the opposite of words on the other. The words are written as
// headlines write them; poleOf holds their stems.
type polarAxis struct {
	name        string
	plus, minus []string
}

// polarAxes is the guard's own table of polar terms. The lexicon's weighs
// also sees most of these words; the table names the opposition in the
// reason, and it holds where the lexicon has no opinion (above/below,
// resumes/suspends, completes/terminates, inflow/outflow).
var polarAxes = []polarAxis{
	{"approve/reject",
		[]string{"approve", "approval", "clear", "clearance", "authorize", "authorise", "authorization",
			"authorisation", "accept", "acceptance", "grant", "greenlight", "allow", "permit", "endorse"},
		[]string{"reject", "rejection", "deny", "denial", "refuse", "refusal", "revoke", "rescind",
			"veto", "ban", "prohibit", "forbid", "block"}},
	{"beat/miss",
		[]string{"beat", "top", "exceed", "surpass", "outpace"},
		[]string{"miss", "trail", "lag", "undershoot", "shortfall"}},
	{"up/down",
		[]string{"up", "rise", "raise", "increase", "gain", "grow", "growth", "climb", "jump", "surge",
			"soar", "rally", "rebound", "recover", "recovery", "advance", "boost", "lift", "hike",
			"expand", "expansion", "widen", "accelerate", "double", "triple", "spike", "leap", "higher",
			"high", "highest", "upside", "upturn", "inflow", "more", "peak"},
		[]string{"down", "fall", "decline", "drop", "decrease", "cut", "reduce", "reduction", "slash",
			"trim", "slump", "plunge", "tumble", "sink", "slide", "shrink", "contract", "contraction",
			"narrow", "dip", "slip", "ease", "halve", "slow", "slowdown", "decelerate", "lower", "low",
			"lowest", "downside", "downturn", "outflow", "less", "fewer", "retreat", "trough"}},
	{"above/below",
		[]string{"above", "over", "ahead"},
		[]string{"below", "under", "behind"}},
	{"better/worse",
		[]string{"improve", "improvement", "strengthen", "strength", "strong", "stronger", "better",
			"best", "robust", "solid", "oversubscribed"},
		[]string{"worsen", "deteriorate", "deterioration", "weaken", "weakness", "weak", "weaker",
			"worse", "worst", "poor", "disappointing", "soft", "softer", "sluggish", "undersubscribed"}},
	{"profit/loss",
		[]string{"profit", "profitable", "profitability", "surplus", "black"},
		[]string{"loss", "unprofitable", "deficit", "red"}},
	{"upgrade/downgrade",
		[]string{"upgrade"},
		[]string{"downgrade"}},
	{"win/lose",
		[]string{"win", "award", "winner"},
		[]string{"lose", "forfeit", "loser"}},
	{"buy/sell",
		[]string{"buy", "purchase", "acquire", "acquisition", "overweight", "accumulate"},
		[]string{"sell", "divest", "divestiture", "dispose", "disposal", "offload", "underweight"}},
	{"outperform/underperform",
		[]string{"outperform", "outperformance"},
		[]string{"underperform", "underperformance"}},
	{"bullish/bearish",
		[]string{"bullish", "bull", "optimistic", "optimism", "upbeat"},
		[]string{"bearish", "bear", "pessimistic", "pessimism", "downbeat"}},
	{"positive/negative",
		[]string{"positive"},
		[]string{"negative"}},
	{"success/failure",
		[]string{"succeed", "success", "successful", "meet", "pass"},
		[]string{"fail", "failure", "unsuccessful"}},
	{"resume/suspend",
		[]string{"resume", "restart", "reinstate", "reopen", "restore"},
		[]string{"suspend", "suspension", "halt", "pause", "stop", "cease", "freeze"}},
	{"complete/terminate",
		[]string{"complete", "completion", "finalize", "finalise", "consummate"},
		[]string{"terminate", "termination", "cancel", "cancellation", "abandon", "scrap", "withdraw", "collapse"}},
	{"appoint/depart",
		[]string{"appoint", "appointment", "hire", "name"},
		[]string{"resign", "resignation", "depart", "departure", "oust", "fire", "dismiss", "quit"}},
	{"include/exclude",
		[]string{"include", "inclusion"},
		[]string{"exclude", "exclusion", "remove", "removal", "delist"}},
	{"accretive/dilutive",
		[]string{"accretive"},
		[]string{"dilutive", "dilution", "dilute"}},
	{"tailwind/headwind",
		[]string{"tailwind"},
		[]string{"headwind"}},
	{"overvalued/undervalued",
		[]string{"overvalued"},
		[]string{"undervalued"}},
	{"hawkish/dovish",
		[]string{"hawkish"},
		[]string{"dovish"}},
}

// pole is a polar term's axis (an index into polarAxes) and side.
type pole struct {
	axis  uint8
	minus bool
}

// poleOf maps the stems of polarAxes' words to their pole; built once
// from the table, read only.
var poleOf = func() map[string]pole {
	m := make(map[string]pole, 300)
	for i, ax := range polarAxes {
		for _, w := range ax.plus {
			m[stem(w)] = pole{axis: uint8(i)}
		}
		for _, w := range ax.minus {
			m[stem(w)] = pole{axis: uint8(i), minus: true}
		}
	}
	return m
}()
