package lexicon

import "testing"

// TestFigureComparisons covers direction carried by figures: the current
// figure against the earlier one, with the metric's polarity deciding
// whether up is good news, and profits and losses on one scale.
func TestFigureComparisons(t *testing.T) {
	s := mustNew(t)
	cases := []struct {
		text  string
		hit   string // "" for no hit expected
		label Label
	}{
		// "compared to/with", "versus", "vs", "against", brackets: both polarities.
		{"Net sales were EUR 5.2 mn compared to EUR 3.1 mn a year earlier", "sales up", LabelBullish},
		{"Net sales were EUR 5.2 mn versus EUR 6.1 mn", "sales down", LabelBearish},
		{"Operating profit amounted to EUR 5.1 mn against EUR 3.0 mn", "profit up", LabelBullish},
		{"Earnings per share were EUR 0.21 vs EUR 0.35 a year earlier", "profit down", LabelBearish},
		{"EBIT was 13.1 vs 8.7", "profit up", LabelBullish},
		{"Operating margin was 8.1 % compared to 9.5 %", "margin down", LabelBearish},
		{"Return on equity was 16.4 % ( 12.9 % ) .", "returns up", LabelBullish},
		{"Operating loss was EUR 5.2 mn vs EUR 3.1 mn", "loss up", LabelBearish},
		{"Costs were EUR 5.2 mn compared with EUR 6.0 mn", "costs down", LabelBullish},
		{"Net debt was EUR 240 mn compared with EUR 190 mn", "debt up", LabelBearish},
		// The figure further from its metric, the earlier one after a marker.
		{"The order book at the end of the period stood at EUR 2.1 bn compared with EUR 1.6 bn", "orders up", LabelBullish},
		{"Net sales in the third quarter amounted to EUR 55.1 mn , while in the corresponding period in 2007 they were EUR 61.3 mn .", "sales down", LabelBearish},
		{"Kiviranta's net sales in the first quarter totalled EUR 27.4 mn, which is 15 % more than in the corresponding period", "sales up", LabelBullish},
		{"Operating profit was EUR 2 mn, 30 % less than in the previous year", "profit down", LabelBearish},
		{"Net sales for 2007 totalled EUR 93.6 mn, which represents an increase of 12.4 % on the previous year", "sales up", LabelBullish},
		// "up from", "down from", "rose/fell to X from Y".
		{"Net sales totalled EUR 48.2 mn, up from EUR 41.9 mn", "sales up", LabelBullish},
		{"Operating profit was EUR 3.4 mn, down from EUR 5.1 mn", "profit down", LabelBearish},
		{"Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007", "profit up", LabelBullish},
		{"Net sales decreased by 5.2 % to EUR 21.7 mn", "sales down", LabelBearish},
		{"Net debt rose to EUR 240 mn from EUR 190 mn", "debt up", LabelBearish},
		// A loss that narrows is good news, one that widens bad.
		{"Net loss narrowed to EUR 0.8 mn", "loss down", LabelBullish},
		{"The net loss for the period decreased to EUR 1.1 mn from EUR 4.6 mn", "loss down", LabelBullish},
		{"Net loss widened to EUR 3 mn from EUR 1 mn", "loss up", LabelBearish},
		// Profit and loss on one scale.
		{"Operating profit was EUR 1.3 mn, compared with a loss of EUR 0.6 mn", "profit up", LabelBullish},
		{"Pre-tax result was a loss of EUR 0.8 mn, compared with a profit of EUR 2.7 mn", "loss up", LabelBearish},
		{"Operating loss totalled EUR 3.9 mn , compared to a loss of EUR 1.2 mn a year earlier .", "loss up", LabelBearish},
		{"The company reported an operating profit of EUR 0.8 mn, turning around from a loss of EUR 1.5 mn", "profit up", LabelBullish},
		// Minus signs.
		{"Cash flow was EUR -4.3 mn compared with EUR 2.1 mn", "cash flow down", LabelBearish},
		{"The operating result was EUR -1.7 mn ( EUR -2.9 mn )", "profit up", LabelBullish},
		// No direction: one figure, figures that barely differ, "up to",
		// "from which", years.
		{"Net sales totalled EUR 5.2 mn", "", LabelNeutral},
		{"Operating profit was EUR 3.1 mn in the quarter", "", LabelNeutral},
		{"Net sales were EUR 14.2 mn, compared to EUR 14.1 mn a year earlier", "", LabelNeutral},
		{"Production capacity will be up to 5,000 tonnes a year", "", LabelNeutral},
		{"Net sales in 2008 were EUR 40 mn compared to 2007", "", LabelNeutral},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			p := s.Score(tc.text)
			if tc.hit == "" {
				if len(p.Hits) != 0 {
					t.Errorf("hits %+v, want none", p.Hits)
				}
			} else if !hasHit(p, tc.hit) {
				t.Errorf("hits %+v, want %q", p.Hits, tc.hit)
			}
			if got := p.Label(); got != tc.label {
				t.Errorf("label %v (%s), want %v", got, p.Explain(), tc.label)
			}
		})
	}
}

func hasHit(p Prescore, name string) bool {
	for _, h := range p.Hits {
		if h.Phrase == name {
			return true
		}
	}
	return false
}

// TestDealNews checks that won, received and signed business reaches a model
// as good news while plain descriptions of deals stay neutral.
func TestDealNews(t *testing.T) {
	s := mustNew(t)
	for _, c := range []struct {
		text  string
		label Label
	}{
		{"The company signed a contract worth EUR 2 mn with a Finnish utility", LabelBullish},
		{"Acme has won an order to deliver 12 cranes", LabelBullish},
		{"Acme received an order worth EUR 5 mn from a German shipyard", LabelBullish},
		{"Acme was awarded a contract to supply signalling systems", LabelBullish},
		{"Acme will supply turbines to a wind farm in Scotland", LabelBullish},
		{"Acme enters partnership with a Nordic telecom operator", LabelBullish},
		{"Acme has been commissioned to build a power plant", LabelBullish},
		{"The customer terminated the contract", LabelBearish},
		{"The company is headquartered in Helsinki", LabelNeutral},
		{"The value of the order was not disclosed", LabelNeutral},
		{"The deal was announced on Monday", LabelNeutral},
		{"The co-operation with the university continues", LabelNeutral},
	} {
		if got := s.Score(c.text); got.Label() != c.label {
			t.Errorf("%q: %v (%s), want %v", c.text, got.Label(), got.Explain(), c.label)
		}
	}
}

// TestMedicalNews checks that the words of medicine read as neutral in drug
// and trial news, that the outcome of the news still counts, that the same
// words keep their valence elsewhere, and that plain VADER is untouched.
func TestMedicalNews(t *testing.T) {
	s, plain := mustNew(t), mustPlain(t)
	for _, c := range []struct {
		text string
		sign int // +1 Score > 0, -1 Score < 0, 0 neutral label
	}{
		{"Acme soars after FDA approval of its cancer drug", +1},
		{"FDA rejects cancer drug", -1},
		{"Shares of the biotech dropped 30 % after the FDA declined to approve its cancer therapy", -1},
		{"In the phase 2 trial, tumors shrank in 40 % of patients", +1},
		{"Acme's trial of its pain drug failed to meet the primary endpoint", -1},
		{"Acme halts cancer trial after serious side effects", -1},
		{"Two patients died in the trial", -1},
		{"The drug reduced the risk of death by 30 % in patients with heart failure", +1},
		{"The company develops treatments for cancer and chronic pain", 0},
		{"The trial will enrol 300 patients with advanced kidney disease", 0},
		{"The study measures the rate of death or hospitalisation in patients with heart failure", 0},
		{"The medicine is used to treat chronic pain in hospitals", 0},
		{"Patients with severe side effects left the trial", -1},
		// No drug, trial or patient: the words count.
		{"Fatal accident at the mine", -1},
		{"Investors fear a painful restructuring", -1},
	} {
		p := s.Score(c.text)
		ok := false
		switch c.sign {
		case +1:
			ok = p.Score > 0 && p.Label() == LabelBullish
		case -1:
			ok = p.Score < 0 && p.Label() == LabelBearish
		case 0:
			ok = p.Label() == LabelNeutral
		}
		if !ok {
			t.Errorf("%q: %s, want sign %+d", c.text, p.Explain(), c.sign)
		}
	}
	// Plain VADER reads "cancer" as the reference does, drug news or not.
	if got := plain.Score("Acme soars after FDA approval of its cancer drug").Compound; got >= 0 {
		t.Errorf("plain compound %.4f, want the reference's negative reading", got)
	}
	// "failure" is neutral only after an organ; a failed trial stays a failure.
	if got := s.Score("The trial was a failure for the drug").Compound; got >= 0 {
		t.Errorf("compound of a failed trial %.4f, want < 0", got)
	}
}

// TestPossessiveIsNoWord checks that "'s" does not push a metric's verb out
// of its window.
func TestPossessiveIsNoWord(t *testing.T) {
	s := mustNew(t)
	p := s.Score("The new line will raise the mill's capacity by about 30 %")
	if !hasHit(p, "volume up") {
		t.Errorf("hits %+v, want \"volume up\"", p.Hits)
	}
	// The apostrophe of "didn't" still negates.
	for _, text := range []string{"Acme didn't raise its guidance", "Acme didn\u2019t raise its guidance"} {
		if p := s.Score(text); p.Score >= 0 {
			t.Errorf("%q: %s, want the negation read", text, p.Explain())
		}
	}
}
