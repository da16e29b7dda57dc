package cache

import (
	"math"
	"testing"
)

// TestCheckRules pins which rule refuses what, with the real lexicon's
// weighs and prescores.
func TestCheckRules(t *testing.T) {
	sc := newScorer(t)
	g := NewGuard(sc.Weighs)
	for _, c := range []struct {
		name, a, b string
		rule       string // "" for a hit
	}{
		{"wire variant", "PRESS RELEASE: Acme Inc. raises full-year outlook", "Acme raises full year outlook - Reuters", ""},
		{"tense", "Acme raises outlook, beats estimates", "Acme raised outlook, beat estimates", ""},
		{"negation written two ways", "FDA did not approve Acme's drug", "FDA didn't approve Acme's drug", ""},
		{"a plain word dropped", "Acme wins large order from Beta", "Acme wins order from Beta", ""},
		{"empty", "The", "A", "empty"},
		{"changed figure", "Acme sales up 5%", "Acme sales up 6%", "number"},
		{"sign", "Acme shares move 5%", "Acme shares move -5%", "number"},
		{"decimal", "Acme profit EUR 3.1 mn", "Acme profit EUR 31 mn", "number"},
		{"unit", "Acme profit EUR 5.2 mn", "Acme profit EUR 5.2 bn", "number"},
		{"currency", "Acme order USD 40 mn", "Acme order EUR 40 mn", "number"},
		{"swapped figures", "Acme profit EUR 5.2 mn, compared to EUR 3.1 mn", "Acme profit EUR 3.1 mn, compared to EUR 5.2 mn", "number"},
		{"figure added", "Acme raises outlook", "Acme raises outlook by 5%", "number"},
		{"negated", "FDA approves Acme drug", "FDA does not approve Acme drug", "negation"},
		{"fails to", "Acme trial meets endpoint", "Acme trial fails to meet endpoint", "negation"},
		{"another word negated", "Acme does not expect growth", "Acme expects no growth", "negation"},
		{"question", "Acme to be acquired?", "Acme to be acquired", "negation"},
		{"approve/reject", "FDA approves Acme drug", "FDA rejects Acme drug", "opposed"},
		{"beats/misses swapped", "Acme beats revenue, misses EPS", "Acme misses revenue, beats EPS", "opposed"},
		{"rose/fell", "Acme operating profit rose", "Acme operating profit fell", "opposed"},
		{"widened/narrowed", "Acme loss widened", "Acme loss narrowed", "opposed"},
		{"profit/loss", "Acme swings to profit", "Acme swings to loss", "opposed"},
		{"upgrade/downgrade", "Analyst upgrades Acme", "Analyst downgrades Acme", "opposed"},
		{"above/below", "Acme trades above IPO price", "Acme trades below IPO price", "opposed"},
		{"resumes/suspends", "Acme resumes dividend", "Acme suspends dividend", "opposed"},
		{"polar term added", "Acme sales in Europe", "Acme sales up in Europe", "polar"},
		{"weighty word differs", "Acme reports great demand", "Acme reports good demand", "weighs"},
		{"weighty word dropped", "Acme wins excellent order from Beta", "Acme wins order from Beta", "weighs"},
		{"hedge", "Acme may be acquired by Beta", "Acme to be acquired by Beta", "weighs"},
		{"role", "Acme rival wins Army contract", "Acme wins Army contract", "weighs"},
		{"another period", "Acme third quarter sales", "Acme fourth quarter sales", "number"},
		{"another month", "Acme traffic rose in November", "Acme traffic rose in October", "number"},
		{"roles swapped", "Acme to acquire Beta", "Beta to acquire Acme", "order"},
		{"from/to swapped", "Acme target changed to $85 from $70", "Acme target changed from $85 to $70", "order"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newItem(sc, c.a, ""), newItem(sc, c.b, "")
			why := g.Check(&a.text, &b.text, a.pre, b.pre)
			if rule(why) != c.rule {
				t.Errorf("Check(%q, %q) = %q, want rule %q (prescores %.2f / %.2f)", a.text.Key, b.text.Key, why, c.rule, a.pre, b.pre)
			}
			if why2 := g.Check(&b.text, &a.text, b.pre, a.pre); rule(why2) != rule(why) {
				t.Errorf("Check is not symmetric: %q / %q", why, why2)
			}
		})
	}
}

// TestCheckPrescore: texts the other rules accept are still refused when
// their prescores point different ways.
func TestCheckPrescore(t *testing.T) {
	g := NewGuard(func(string) bool { return false })
	a, b := Read("Acme news", ""), Read("Acme news", "")
	for _, c := range []struct {
		pa, pb float64
		refuse bool
	}{
		{0.6, 0.5, false},
		{-0.6, -0.2, false},
		{0, 0, false},
		{0.04, -0.04, false},  // both inside the dead band
		{0.049, 0.051, false}, // across its edge, but close
		{0.06, -0.06, true},
		{0.6, -0.6, true},
		{0, 0.3, true},
		{-0.3, 0.01, true},
		{math.NaN(), 0.5, true},
		{0.5, math.NaN(), true},
	} {
		why := g.Check(&a, &b, c.pa, c.pb)
		if (why != "") != c.refuse || c.refuse && rule(why) != "prescore" {
			t.Errorf("Check with prescores %v / %v = %q, want refused: %v", c.pa, c.pb, why, c.refuse)
		}
	}
}

// TestCheckNilWeighs: without the lexicon's view every word weighs, so
// only texts that differ in stop words, boilerplate and inflection pass.
func TestCheckNilWeighs(t *testing.T) {
	g := NewGuard(nil)
	for _, c := range []struct {
		a, b string
		hit  bool
	}{
		{"Acme Inc. announces the deal", "ACME ANNOUNCED DEAL - Reuters", true},
		{"Acme announces large deal", "Acme announces deal", false},
	} {
		a, b := Read(c.a, ""), Read(c.b, "")
		if why := g.Check(&a, &b, 0.2, 0.2); (why == "") != c.hit {
			t.Errorf("Check(%q, %q) = %q, want hit: %v", c.a, c.b, why, c.hit)
		}
	}
}

// TestPolarTable checks the table of polar terms: every axis has two
// sides, and no stem stands on two sides or two axes.
func TestPolarTable(t *testing.T) {
	seen := map[string]string{}
	for i, ax := range polarAxes {
		if ax.name == "" || len(ax.plus) == 0 || len(ax.minus) == 0 {
			t.Errorf("axis %d %q: want a name and two sides", i, ax.name)
		}
		for side, words := range [][]string{ax.plus, ax.minus} {
			for _, w := range words {
				s := stem(w)
				where := ax.name + [...]string{"+", "-"}[side]
				if prev, ok := seen[s]; ok && prev != where {
					t.Errorf("%q (stem %q) is on %s and on %s", w, s, prev, where)
				}
				seen[s] = where
				if p, ok := poleOf[s]; !ok || int(p.axis) != i || p.minus != (side == 1) {
					t.Errorf("poleOf[%q] = %+v, want axis %d side %d", s, p, i, side)
				}
			}
		}
	}
	if len(polarAxes) > 255 {
		t.Errorf("%d axes do not fit pole.axis", len(polarAxes))
	}
}

func BenchmarkCheck(b *testing.B) {
	sc := newScorer(b)
	g := NewGuard(sc.Weighs)
	x := Read(benchTitle, "")
	y := Read("ACME CORP. (NYSE: ACME) Q3 REVENUE $1.2 BLN BEAT ESTIMATES; RAISED FULL-YEAR OUTLOOK - Reuters", "")
	pa, pb := sc.Score(benchTitle).Score, sc.Score(y.Key).Score
	if why := g.Check(&x, &y, pa, pb); why != "" {
		b.Fatalf("bench pair refused: %q", why)
	}
	b.ReportAllocs()
	for b.Loop() {
		g.Check(&x, &y, pa, pb)
	}
}

func BenchmarkCheckRefused(b *testing.B) {
	sc := newScorer(b)
	g := NewGuard(sc.Weighs)
	x := Read(benchTitle, "")
	y := Read("Acme Corp Q3 revenue of $1.2 billion misses estimates; cuts full-year outlook", "")
	b.ReportAllocs()
	for b.Loop() {
		g.Check(&x, &y, 0.6, -0.6)
	}
}
