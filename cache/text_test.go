package cache

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/lexicon"
)

// threshold is the service's default near-duplicate threshold
// (LLM_CACHE_SIMILARITY).
const threshold = 0.95

func newScorer(tb testing.TB) *lexicon.Scorer {
	tb.Helper()
	sc, err := lexicon.New()
	if err != nil {
		tb.Fatal(err)
	}
	return sc
}

// item is a title and summary, read and prescored as the pipeline does.
type item struct {
	title, summary string
	text           Text
	pre            float64
}

func newItem(sc *lexicon.Scorer, title, summary string) item {
	raw := title
	if summary != "" {
		raw += "\n" + summary
	}
	return item{title: title, summary: summary, text: Read(title, summary), pre: sc.Score(raw).Score}
}

func (it item) String() string {
	if it.summary == "" {
		return fmt.Sprintf("%q", it.title)
	}
	return fmt.Sprintf("%q + %q", it.title, it.summary)
}

// readTSV returns the tab-separated fields of the non-comment lines of a
// testdata file, and the "## " group header each line falls under.
func readTSV(t *testing.T, name string) (rows [][]string, groups []string) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	group := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			group = strings.TrimPrefix(line, "## ")
			continue
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
		groups = append(groups, fmt.Sprintf("%s:%d %s", name, n, group))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, groups
}

// rule is the rule a Check reason names: its text up to the colon.
func rule(why string) string {
	r, _, _ := strings.Cut(why, ":")
	return r
}

// TestWireVariants reads the corpus of wire variants: each must hit the
// first text of its group, by Key or by Similarity >= 0.95 with the guard
// agreeing.
func TestWireVariants(t *testing.T) {
	sc := newScorer(t)
	g := NewGuard(sc.Weighs)
	rows, groups := readTSV(t, "wire_variants.tsv")
	var base item
	var sims []float64
	sameKey, pairs := 0, 0
	for i, r := range rows {
		if len(r) < 2 || len(r) > 3 || r[0] != "=" && r[0] != "+" {
			t.Fatalf("%s: want =|+ <TAB> title [<TAB> summary], got %q", groups[i], r)
		}
		r = append(r, "")
		it := newItem(sc, r[1], r[2])
		if r[0] == "=" {
			base = it
			continue
		}
		if base.title == "" {
			t.Fatalf("%s: a variant before its group's first text", groups[i])
		}
		pairs++
		if it.text.Key == base.text.Key {
			sameKey++
			continue
		}
		sim := Similarity(&it.text, &base.text)
		sims = append(sims, sim)
		why := g.Check(&it.text, &base.text, it.pre, base.pre)
		if sim < threshold || why != "" {
			t.Errorf("%s: variant does not hit: similarity %.3f, check %q, prescores %.2f / %.2f\n  variant %s\n     key %q\n  first   %s\n     key %q",
				groups[i], sim, why, it.pre, base.pre, it, it.text.Key, base, base.text.Key)
		}
	}
	if pairs < 40 {
		t.Errorf("corpus has %d variants, want at least 40", pairs)
	}
	sort.Float64s(sims)
	t.Logf("%d variants: %d with the same Key, %d near (similarity min %.3f, median %.3f)",
		pairs, sameKey, len(sims), at(sims, 0), at(sims, len(sims)/2))
}

func at(s []float64, i int) float64 {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// TestNeverHit reads the corpus of pairs that differ in meaning: none may
// hit. For every category but "event", the guard alone must refuse, so
// that a lower LLM_CACHE_SIMILARITY (down to 0.5, or any) cannot let them
// through.
func TestNeverHit(t *testing.T) {
	sc := newScorer(t)
	g := NewGuard(sc.Weighs)
	rows, groups := readTSV(t, "never_hit.tsv")
	byRule := map[string]int{}
	byCat := map[string]int{}
	lowSim, above := 0, 0
	for i, r := range rows {
		if len(r) != 5 {
			t.Fatalf("%s: want 5 tab-separated fields, got %d", groups[i], len(r))
		}
		cat := r[0]
		a, b := newItem(sc, r[1], r[2]), newItem(sc, r[3], r[4])
		byCat[cat]++
		if a.text.Key == b.text.Key {
			t.Errorf("%s: %s pair shares a Key %q\n  A %s\n  B %s", groups[i], cat, a.text.Key, a, b)
			continue
		}
		sim := Similarity(&a.text, &b.text)
		why := g.Check(&a.text, &b.text, a.pre, b.pre)
		if why2 := g.Check(&b.text, &a.text, b.pre, a.pre); (why == "") != (why2 == "") {
			t.Errorf("%s: Check is not symmetric: %q / %q", groups[i], why, why2)
		}
		if sim >= threshold {
			above++
		}
		switch cat {
		case "opposite", "number", "swap", "unit":
			if why == "" {
				t.Errorf("%s: %s pair passes the guard (similarity %.3f, prescores %.2f / %.2f)\n  A %s\n  B %s",
					groups[i], cat, sim, a.pre, b.pre, a, b)
			}
		case "event":
			if sim >= threshold && why == "" {
				t.Errorf("%s: event pair hits (similarity %.3f)\n  A %s\n  B %s", groups[i], sim, a, b)
			}
		default:
			t.Fatalf("%s: unknown category %q", groups[i], cat)
		}
		if why == "" {
			lowSim++
			byRule[cat+"/similarity only"]++
		} else {
			byRule[cat+"/"+rule(why)]++
		}
		if testing.Verbose() {
			t.Logf("%-8s sim %.3f  %-40q %s / %s", cat, sim, why, a.text.Key, b.text.Key)
		}
	}
	if len(rows) < 60 {
		t.Errorf("corpus has %d pairs, want at least 60", len(rows))
	}
	t.Logf("%d pairs %v; %d at similarity >= %.2f, %d refused by similarity alone; by category/rule: %v",
		len(rows), byCat, above, threshold, lowSim, byRule)
}

// TestReadKey pins what Read strips and what it keeps.
func TestReadKey(t *testing.T) {
	for _, c := range []struct {
		name, title, summary, key string
	}{
		{"case and punctuation", "Acme Corp. Beats Q3 Estimates!!!", "", "acme corp beats q3 estimates"},
		{"summary follows title", "Acme beats", "Shares rise.", "acme beats shares rise"},
		{"press release label", "PRESS RELEASE: Acme beats", "", "acme beats"},
		{"news release label", "NEWS RELEASE - Acme beats", "", "acme beats"},
		{"reuters update label", "UPDATE 2-Acme beats", "", "acme beats"},
		{"brief label", "BRIEF-Acme beats", "", "acme beats"},
		{"globe newswire dateline", "", "NEW YORK, Dec. 01, 2026 (GLOBE NEWSWIRE) -- Acme beats", "acme beats"},
		{"pr newswire dateline", "", "NEW YORK, Dec. 1, 2026 /PRNewswire/ -- Acme beats", "acme beats"},
		{"pr newswire firstcall", "", "NEW YORK, Dec. 1, 2026 /PRNewswire-FirstCall/ -- Acme beats", "acme beats"},
		{"business wire dateline", "", "SAN DIEGO--(BUSINESS WIRE)--Acme beats", "acme beats"},
		{"reuters dateline", "", "HELSINKI, Finland, Dec. 1 (Reuters) - Acme beats", "acme beats"},
		{"cnw dateline", "", "TORONTO, Dec. 1, 2026 /CNW/ - Acme beats", "acme beats"},
		{"accesswire dateline", "", "NEW YORK, NY / ACCESSWIRE / December 1, 2026 / Acme beats", "acme beats"},
		{"newsfile dateline", "", "Vancouver, British Columbia--(Newsfile Corp. - December 1, 2026) - Acme beats", "acme beats"},
		{"bloomberg lead", "", "(Bloomberg) -- Acme beats", "acme beats"},
		{"plain dateline", "", "NEW YORK, Dec. 1, 2026 -- Acme beats", "acme beats"},
		{"reuters suffix", "Acme beats - Reuters", "", "acme beats"},
		{"bloomberg suffix", "Acme beats | Bloomberg", "", "acme beats"},
		{"nasdaq tag", "Acme Inc. (NASDAQ: ACME) beats", "", "acme inc beats"},
		{"nyse tag", "Acme Inc. (NYSE:ACME) beats", "", "acme inc beats"},
		{"tsx-v tag", "Acme Inc. (TSX-V: ACM) beats", "", "acme inc beats"},
		{"two tags", "Acme Inc. (TSXV: ACM) (OTCQB: ACMEF) beats", "", "acme inc beats"},
		{"tags in one bracket", "Acme Inc. (TSXV: ACM; OTCQB: ACMEF) beats", "", "acme inc beats"},
		{"named exchange", "Acme AB (Nasdaq Stockholm: ACME B) beats", "", "acme ab beats"},
		{"instrument code", "Acme Inc <ACME.O> beats", "", "acme inc beats"},
		{"defined name", `Acme Inc. ("Acme" or the "Company") beats`, "", "acme inc beats"},
		{"defined name in single quotes", "Acme Inc. ('Acme' or the 'Company') beats", "", "acme inc beats"},
		{"quoted words in brackets stay", `Analyst rates Acme ("buy")`, "", "analyst rates acme buy"},
		{"an exchange named with a move stays", "Acme (Nasdaq: up 5) beats", "", "acme nasdaq up 5 beats"},
		{"share class ticker", "Acme (NYSE: BRK.B) beats", "", "acme beats"},
		{"cashtag", "$ACME beats", "", "acme beats"},
		{"acronym dots", "U.S. FDA approves Acme drug", "", "us fda approves acme drug"},
		{"curly apostrophe", "Acme\u2019s drug", "", "acme's drug"},
		{"soft hyphen", "Ac\u00adme beats", "", "acme beats"},
		{"invalid utf-8", "Acme\xffbeats", "", "acme beats"},
		{"sign kept", "Acme shares -5%", "", "acme shares -5%"},
		{"unicode minus", "Acme shares \u22125%", "", "acme shares -5%"},
		{"en dash as sign", "Acme shares \u20135%", "", "acme shares -5%"},
		{"plus kept", "Acme shares +5%", "", "acme shares +5%"},
		{"range is no sign", "Acme sees 5-6% growth", "", "acme sees 5 6% growth"},
		{"signed in brackets", "EPS (-0.12)", "", "eps -0.12"},
		{"decimal kept", "EUR 3.1 mn", "", "eur 3.1 mn"},
		{"leading decimal kept", "up .5%", "", "up .5%"},
		{"thousands kept as written", "1,200 jobs", "", "1,200 jobs"},
		{"scale words in one form", "$5.2M, 5.2 million, 5.2 mln, $1.1B, 1.1 bln, 3 thousand", "", "$ 5.2 mn 5.2 mn 5.2 mn $ 1.1 bn 1.1 bn 3 k"},
		{"percent in one form", "5 percent, 5 per cent, 5 pct, 5 %", "", "5% 5% 5% 5%"},
		{"basis points", "25 basis points", "", "25 bps"},
		{"currency signs", "€5.2 mn, £3 bn, ¥100", "", "eur 5.2 mn gbp 3 bn ¥ 100"},
		{"currency code against figure", "EUR5.2 MLN", "", "eur 5.2 mn"},
		{"euro word", "5 euros", "", "5 eur"},
		{"month abbreviation before day", "effective Jan. 1", "", "effective january 1"},
		{"negation kept", "FDA didn't approve", "", "fda didn't approve"},
		{"question kept", "Will FDA approve?", "", "will fda approve ?"},
		{"reuters dateline without date", "", "NEW YORK (Reuters) - Acme beats", "acme beats"},
		{"st. louis dateline", "", "ST. LOUIS, Dec. 1, 2026 /PRNewswire/ -- Acme beats", "acme beats"},
		{"washington d.c. dateline", "", "WASHINGTON, D.C., Dec. 1, 2026 /PRNewswire/ -- Acme beats", "acme beats"},
		{"title-case dateline with date and tag", "", "New York, Dec. 1, 2026 /PRNewswire/ -- Acme beats", "acme beats"},
		{"all-capitals text keeps its words", "ACME SHARES FALL (REUTERS) - SOURCES", "", "acme shares fall sources"},
		{"a date in the headline is no dateline", "Acme to report results on Dec. 1 (Reuters) - sources", "",
			"acme to report results on december 1 sources"},
		{"a title in brackets stays", "Acme shares fall (Reuters)", "", "acme shares fall"},
		{"headline words before a tag stay", "Acme shares fall (Reuters) - more", "", "acme shares fall more"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Read(c.title, c.summary)
			if got.Key != c.key {
				t.Errorf("Read(%q, %q).Key = %q, want %q", c.title, c.summary, got.Key, c.key)
			}
			if strings.Join(got.Tokens, " ") != got.Key {
				t.Errorf("Tokens %q do not make Key %q", got.Tokens, got.Key)
			}
		})
	}
}

// TestSimilarity pins what typical differences cost.
func TestSimilarity(t *testing.T) {
	const head = "Acme Corp Q3 revenue of $1.2 billion beats estimates; raises full-year outlook"
	for _, c := range []struct {
		name   string
		a, b   string
		lo, hi float64
	}{
		{"identical", head, head, 1, 1},
		{"stop word dropped", head, strings.Replace(head, " of ", " ", 1), 1, 1},
		{"company suffix dropped", head, strings.Replace(head, "Corp ", "", 1), 1, 1},
		{"tense", "Acme announces deal, raises outlook", "Acme announced deal, raised outlook", 1, 1},
		{"irregular tense", "Acme profit rises, wins order", "Acme profit rose, won order", 1, 1},
		// head has n = 12 content words (acme q3 revenue $ 1.2 bn beat
		// estimate raise full year outlook), 23 shingles.
		{"middle word dropped: 1-2/n", head, strings.Replace(head, " revenue", "", 1), 0.833, 0.834},
		{"last word dropped: (2n-3)/(2n-1)", head, strings.TrimSuffix(head, " outlook"), 0.913, 0.914},
		{"word replaced: (2n-4)/(2n+2)", head, strings.Replace(head, "revenue", "sales", 1), 0.769, 0.770},
		{"swap", "Zeta to acquire Theta", "Theta to acquire Zeta", 0, 0.6},
		{"nothing shared", "Acme beats", "Beta misses", 0, 0},
		{"empty", "", "", 0, 0},
		{"only stop words", "The", "The", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := Read(c.a, ""), Read(c.b, "")
			s := Similarity(&a, &b)
			if s < c.lo || s > c.hi {
				t.Errorf("Similarity(%q, %q) = %.4f, want in [%.2f, %.2f]", a.Key, b.Key, s, c.lo, c.hi)
			}
			if s2 := Similarity(&b, &a); s2 != s {
				t.Errorf("not symmetric: %v / %v", s, s2)
			}
		})
	}
}

// TestDroppedWordCost checks the documented cost of a dropped content
// word, 1-2/n for n content words, against headlines of growing length.
func TestDroppedWordCost(t *testing.T) {
	for _, n := range []int{5, 10, 20, 40, 60} {
		words := make([]string, n)
		for i := range words {
			words[i] = fmt.Sprintf("w%cx%c", 'a'+i%26, 'a'+i/26)
		}
		a := Read(strings.Join(words, " "), "")
		b := Read(strings.Join(slices.Delete(slices.Clone(words), n/2, n/2+1), " "), "")
		got, want := Similarity(&a, &b), 1-2/float64(n)
		if d := got - want; d > 1e-9 || d < -1e-9 {
			t.Errorf("n=%d: dropped middle word gives %.4f, want %.4f", n, got, want)
		}
	}
}

func TestStem(t *testing.T) {
	for _, group := range [][]string{
		{"announce", "announces", "announced", "announcing"},
		{"raise", "raises", "raised", "raising"},
		{"rise", "rises", "rose", "risen", "rising"},
		{"fall", "falls", "fell", "fallen", "falling"},
		{"win", "wins", "won", "winning"},
		{"lose", "loses", "lost", "losing"},
		{"miss", "misses", "missed", "missing"},
		{"beat", "beats", "beating", "beaten"},
		{"deny", "denies", "denied"},
		{"plan", "plans", "planned", "planning"},
		{"approve", "approves", "approved", "approving"},
		{"cut", "cuts", "cutting"},
		{"loss", "losses"},
		{"acme", "acme's"},
		{"report", "reports", "reported"},
		{"exceed", "exceeds", "exceeded", "exceeding"},
		{"agree", "agrees", "agreed"},
		{"freeze", "freezes", "froze", "frozen"},
		{"cancel", "cancels", "canceled", "cancelled"},
		{"stop", "stops", "stopped", "stopping"},
	} {
		for _, w := range group[1:] {
			if stem(w) != stem(group[0]) {
				t.Errorf("stem(%q) = %q, stem(%q) = %q: want equal", w, stem(w), group[0], stem(group[0]))
			}
		}
	}
	for _, pair := range [][2]string{{"loss", "lose"}, {"high", "higher"}, {"low", "lower"}, {"profit", "profitable"}, {"new", "news"}} {
		if stem(pair[0]) == stem(pair[1]) {
			t.Errorf("stem(%q) = stem(%q) = %q: want different", pair[0], pair[1], stem(pair[0]))
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	for _, c := range [][2]string{
		{"", ""},
		{"Acme Oyj's operating profit rose to EUR 5.2 mn from EUR 3.1 mn", ""},
		{"FDA didn't approve Acme's drug?", "NEW YORK, Dec. 1, 2026 /PRNewswire/ -- Acme Inc. (NASDAQ: ACME) said..."},
		{"The", ""},
	} {
		want := Read(c[0], c[1])
		enc := want.Encode()
		got, err := DecodeText(enc)
		if err != nil {
			t.Fatalf("DecodeText(%q): %v", enc, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("DecodeText(Encode(Read(%q))) = %+v, want %+v", c, got, want)
		}
	}
	for _, bad := range []string{"", "acme beats", "t1|acme beats", "t1|acme beats\nacm beat", "t0|acme\nacm\n",
		"t1| acme\nacm\n", "t1|acme \nacm\n", "t1|acme  beats\nacm beat\n", "t1|acme\tbeats\nacm beat\n",
		"t1|\xff\n\n", "t1|acme\nacm\nnot\nx", "t1|acme\u2028beats\n\n"} {
		if _, err := DecodeText(bad); err == nil {
			t.Errorf("DecodeText(%q): no error", bad)
		}
	}
}

// checkRead checks the invariants of one Read: the Key is valid UTF-8 and
// made of its Tokens, a Text survives Encode and DecodeText whole, and it
// is its own near duplicate.
func checkRead(t *testing.T, title, summary string) {
	t.Helper()
	x := Read(title, summary)
	if !utf8.ValidString(x.Key) {
		t.Fatalf("Read(%q, %q).Key = %q: not valid UTF-8", title, summary, x.Key)
	}
	if strings.Join(x.Tokens, " ") != x.Key || slices.Contains(x.Tokens, "") {
		t.Fatalf("Read(%q, %q): Tokens %q do not make Key %q", title, summary, x.Tokens, x.Key)
	}
	y, err := DecodeText(x.Encode())
	if err != nil {
		t.Fatalf("DecodeText(Encode(Read(%q, %q))): %v", title, summary, err)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("round trip of Read(%q, %q):\n got %+v\nwant %+v", title, summary, y, x)
	}
	s := Similarity(&x, &y)
	if s < 0 || s > 1 || len(x.words) > 0 && s != 1 {
		t.Fatalf("Similarity of Read(%q, %q) with itself = %v", title, summary, s)
	}
	if why := NewGuard(nil).Check(&x, &y, 0.3, 0.3); len(x.words) > 0 && why != "" {
		t.Fatalf("Check of Read(%q, %q) with itself = %q", title, summary, why)
	}
}

// FuzzReadEncodeDecode reads any title and summary without panicking and
// checks checkRead's invariants. Seeds: testdata/fuzz/FuzzReadEncodeDecode
// and the lines below.
func FuzzReadEncodeDecode(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{"Acme Oyj's operating profit rose to EUR 5.2 mn from EUR 3.1 mn", ""},
		{"PRESS RELEASE: FDA didn't approve Acme's drug?", "NEW YORK, Dec. 1, 2026 /PRNewswire/ -- Acme Inc. (NASDAQ: ACME)"},
		{"((((", "/ / / ( ) -- -5 -.5 .5. 5.. ,5, $ € 5%%"},
		{"U.S.A. u.s a.b.c.d.e", "\xff\xfe\u00ad\u200b"},
		{"(GLOBE NEWSWIRE) (Reuters) /PRNewswire/", "(NASDAQ: ) (NYSE:) ( : )"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, title, summary string) {
		checkRead(t, title, summary)
	})
}

// FuzzDecodeText decodes any string without panicking; what it accepts
// encodes back to itself.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{"", "t1|\n\n", "t1|acme beats\nacm beat\n", "t1|a  b\n\n",
		"t1|-5% eur 5.2 mn ?\n-5% eur 5.2 mn ?\n?", "t1|not\nnot\n-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := DecodeText(s)
		if err != nil {
			return
		}
		if x.Encode() != s {
			t.Fatalf("DecodeText(%q).Encode() = %q", s, x.Encode())
		}
	})
}

// TestReadRandom reads random mixes of the corpora's words and of odd
// runes. The seed is printed; set CACHE_TEST_SEED to replay one.
func TestReadRandom(t *testing.T) {
	seed := rand.Uint64()
	if s := os.Getenv("CACHE_TEST_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("CACHE_TEST_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (CACHE_TEST_SEED=%d to replay)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	pieces := []string{"Acme", "(", ")", "/", "--", "-", "–", "−", ".", ",", ":", "?", "%", "$", "€", "'", "’", `"`,
		"5", "5.2", "1,200", ".5", "mn", "billion", "per", "cent", "NASDAQ", "Reuters", "GLOBE", "NEWSWIRE",
		"PRNewswire", "Dec.", "1", "2026", "NEW YORK", "U.S.", "didn't", "not", "fails", "to", "PRESS RELEASE",
		"\xff", "\u00ad", "\u200b", "é", "\u0301", "٣", " ", "  ", "\t", "\n"}
	for i := 0; i < 2000; i++ {
		var title, summary strings.Builder
		for j := rng.IntN(30); j > 0; j-- {
			title.WriteString(pieces[rng.IntN(len(pieces))])
			if rng.IntN(2) == 0 {
				title.WriteByte(' ')
			}
		}
		for j := rng.IntN(30); j > 0; j-- {
			summary.WriteString(pieces[rng.IntN(len(pieces))])
		}
		checkRead(t, title.String(), summary.String())
	}
}

const (
	benchTitle   = "Acme Corp Q3 revenue of $1.2 billion beats estimates; raises full-year outlook"
	benchSummary = "NEW YORK, Dec. 1, 2026 /PRNewswire/ -- Acme Corp. (NYSE: ACME) today announced third-quarter revenue of $1.2 billion, up 14% from a year earlier, and raised its full-year outlook."
)

func BenchmarkRead(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Read(benchTitle, "")
	}
}

func BenchmarkReadWithSummary(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Read(benchTitle, benchSummary)
	}
}

func BenchmarkDecodeText(b *testing.B) {
	x := Read(benchTitle, "")
	enc := x.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeText(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeTextWithSummary(b *testing.B) {
	x := Read(benchTitle, benchSummary)
	enc := x.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeText(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSimilarity(b *testing.B) {
	x := Read(benchTitle, "")
	y := Read("ACME CORP Q3 REVENUE OF $1.2 BLN BEATS ESTIMATES; RAISES FULL-YEAR OUTLOOK - Reuters", "")
	b.ReportAllocs()
	for b.Loop() {
		Similarity(&x, &y)
	}
}

// benchEntries returns the texts of the wire variants corpus and of the
// first column of the never-hit corpus, as a ticker's stored entries.
func benchEntries(b *testing.B, n int) []Text {
	b.Helper()
	var out []Text
	for _, name := range []string{"wire_variants.tsv", "never_hit.tsv"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			f := strings.Split(strings.TrimRight(line, "\n"), "\t")
			if strings.HasPrefix(line, "#") || len(f) < 2 {
				continue
			}
			f = append(f, "")
			out = append(out, Read(f[1], f[2]))
		}
	}
	for len(out) < n {
		out = append(out, out...)
	}
	return out[:n]
}

// BenchmarkLookup100 is one near lookup against a ticker's 100 stored
// entries: decode each, measure it, and check those at the threshold.
func BenchmarkLookup100(b *testing.B) {
	sc := newScorer(b)
	g := NewGuard(sc.Weighs)
	entries := benchEntries(b, 100)
	enc := make([]string, len(entries))
	for i := range entries {
		enc[i] = entries[i].Encode()
	}
	q := Read("ACME CORP Q3 REVENUE OF $1.2 BLN BEATS ESTIMATES; RAISES FULL-YEAR OUTLOOK - Reuters", "")
	b.Run("decode+similarity+check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, e := range enc {
				x, _ := DecodeText(e)
				if Similarity(&q, &x) >= threshold {
					g.Check(&q, &x, 0.5, 0.5)
				}
			}
		}
	})
	b.Run("similarity+check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range entries {
				if Similarity(&q, &entries[i]) >= threshold {
					g.Check(&q, &entries[i], 0.5, 0.5)
				}
			}
		}
	})
	b.Run("similarity+check all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range entries {
				Similarity(&q, &entries[i])
				g.Check(&q, &entries[i], 0.5, 0.5)
			}
		}
	})
}
