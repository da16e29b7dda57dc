package lexicon

import (
	"bufio"
	"strings"
	"testing"
)

// phraseCases has at least one row per phrase name of data/finance_phrases.tsv
// (TestEveryPhraseHasACase checks), each showing the phrase detected with its
// sign, plus rows for inflections and word order. Rows of the neutral
// phrases (weight 0) show a text that they keep free of any hit.
var phraseCases = []struct {
	phrase string
	text   string
	sign   int // +1 bullish, -1 bearish, 0 no hit at all
}{
	{"neutral", "Production capacity will be up to 5,000 tonnes a year", 0},
	{"neutral", "Demand for weight loss treatments", 0},
	{"neutral", "The record date of the dividend is 5 April", 0},
	{"fda approval", "FDA approves BioCo's lead drug for rare disease", +1},
	{"fda approval", "BioCo drug approved by the FDA", +1},
	{"fda approval", "FDA grants approval to BioCo's gene therapy", +1},
	{"fda rejection", "FDA rejects XYZ Therapeutics application", -1},
	{"fda rejection", "The FDA declined to approve the company's lead drug", -1},
	{"complete response letter", "BioCo receives complete response letter for its NDA", -1},
	{"complete response letter", "BioCo gets CRL from regulator", -1},
	{"regulatory approval", "BioCo wins EMA approval for eye drug", +1},
	{"regulatory approval", "MedCo receives CE mark approval", +1},
	{"breakthrough designation", "BioCo granted Breakthrough Therapy designation", +1},
	{"fast track designation", "BioCo receives fast track designation", +1},
	{"orphan drug designation", "BioCo awarded orphan drug designation", +1},
	{"primary endpoint failed", "Phase 2 trial failed to meet primary endpoint", -1},
	{"primary endpoint failed", "Study did not meet its primary endpoint", -1},
	{"primary endpoint failed", "Trial missed the primary endpoint", -1},
	{"primary endpoint met", "Phase 3 trial met its primary endpoint", +1},
	{"primary endpoint met", "Pivotal study achieves primary endpoint", +1},
	{"positive trial results", "BioCo announces positive topline results", +1},
	{"statistically significant", "Drug showed a statistically significant benefit", +1},
	{"trial efficacy", "The drug reduced the risk of death by 30 % in the study", +1},
	{"trial efficacy", "A lower rate of hospitalisation among treated patients", +1},
	{"trial efficacy", "The therapy shrank tumours in most patients", +1},
	{"trial efficacy", "The drug significantly reduced pain", +1},
	{"trial efficacy", "Treatment improved overall survival", +1},
	{"trial efficacy", "Tumours shrank in 40 % of the patients treated", +1},
	{"clinical hold", "FDA places clinical hold on BioCo study", -1},
	{"trial halted", "BioCo halts mid-stage trial", -1},
	{"warning letter", "FDA issues warning letter to device maker", -1},
	{"product recall", "Company recalls 10,000 vehicles", -1},
	{"beats estimates", "Acme beats Q3 earnings estimates", +1},
	{"beats estimates", "Acme beat analyst estimates", +1},
	{"beats estimates", "Revenue topped consensus expectations", +1},
	{"beats estimates", "Quarterly profit better than expected", +1},
	{"misses estimates", "Acme misses revenue estimates", -1},
	{"misses estimates", "Earnings missed Wall Street expectations", -1},
	{"misses estimates", "Sales came in below expectations", -1},
	{"raises price target", "Analyst raises price target on Acme to $40", +1},
	{"cuts price target", "Broker cuts price target to $5", -1},
	{"raises guidance", "Acme raises full-year guidance", +1},
	{"raises guidance", "Acme raised its 2025 revenue guidance", +1},
	{"raises guidance", "Acme is raising its outlook", +1},
	{"raises guidance", "Full-year outlook raised", +1},
	{"raises guidance", "The company raised its full-year operating profit forecast", +1},
	{"cuts guidance", "Acme cuts outlook", -1},
	{"cuts guidance", "Acme lowered its annual forecast", -1},
	{"cuts guidance", "Stock tumbles after guidance cut", -1},
	{"cuts guidance", "Acme lowered its full-year net sales forecast", -1},
	{"withdraws guidance", "Acme withdraws full-year guidance", -1},
	{"reaffirms guidance", "Acme reaffirms 2025 guidance", +1},
	{"profit warning", "Retailer issues profit warning", -1},
	{"turns profitable", "Acme swung to a profit in the quarter", +1},
	{"turns profitable", "Start-up became profitable", +1},
	{"turns profitable", "Norwell posts first quarterly profit since 2019", +1},
	{"turns profitable", "Acme turned around from a loss of EUR 1.5 mn", +1},
	{"swings to loss", "Acme swings to a loss", -1},
	{"swings to loss", "The operating result slipped into the red", -1},
	{"dividend increase", "Board raises quarterly dividend by 10%", +1},
	{"dividend cut", "Acme suspends dividend", -1},
	{"special dividend", "Acme declares special dividend", +1},
	{"stock buyback", "Board authorizes $50 million share buyback", +1},
	{"stock buyback", "Acme to repurchase up to 5% of shares", +1},
	{"non-dilutive financing", "BioCo secures non-dilutive funding", +1},
	{"public offering", "XYZ announces $25 million public offering of common stock", -1},
	{"public offering", "XYZ prices underwritten offering", -1},
	{"private placement", "XYZ closes private placement", -1},
	{"accretive", "The deal is expected to be accretive to earnings", +1},
	{"new jobs", "Acme to hire 500 workers", +1},
	{"dilution", "Shareholders face dilution", -1},
	{"convertible notes", "XYZ issues convertible senior notes", -1},
	{"shelf registration", "XYZ files shelf registration", -1},
	{"reverse split", "Company announces 1-for-10 reverse stock split", -1},
	{"stock split", "Acme announces 4-for-1 stock split", +1},
	{"delisting", "Exchange moves to delist XYZ", -1},
	{"listing deficiency", "XYZ receives Nasdaq deficiency notice", -1},
	{"listing deficiency", "XYZ falls below minimum bid price requirement", -1},
	{"regains compliance", "XYZ regains compliance with Nasdaq listing rule", +1},
	{"going concern", "Auditor raises going concern doubt", -1},
	{"bankruptcy", "Company files for Chapter 11 protection", -1},
	{"bankruptcy", "Retailer files for bankruptcy", -1},
	{"default", "Developer defaults on bond payment", -1},
	{"debt restructuring", "XYZ enters forbearance agreement with lenders", -1},
	{"secures financing", "Acme secures $10 million credit facility", +1},
	{"repays debt", "Acme repays its term loan in full", +1},
	{"analyst upgrade", "Analyst upgrades Acme to buy", +1},
	{"analyst downgrade", "Analyst downgrades Acme to sell", -1},
	{"analyst downgrade", "The company's credit rating was lowered by one notch", -1},
	{"buy rating", "Broker starts Acme with a buy rating", +1},
	{"sell rating", "Broker reiterates sell rating", -1},
	{"takeover offer", "Rival makes takeover bid for Acme", +1},
	{"takeover offer", "Acme to be acquired by MegaCorp", +1},
	{"merger terminated", "MegaCorp terminates merger agreement", -1},
	{"merger", "Two regional banks announce merger", +1},
	{"acquisition", "Acme completes acquisition of rival", +1},
	{"contract loss", "Acme loses its largest customer", -1},
	{"order cancellation", "Airline cancels order for 20 jets", -1},
	{"order cancellation", "The customer terminated the contract", -1},
	{"contract win", "Acme wins $30 million defense contract", +1},
	{"contract win", "Acme awarded new order", +1},
	{"contract win", "The company signed a contract worth EUR 2 mn with a utility", +1},
	{"contract win", "Acme has received an order worth about EUR 12 mn", +1},
	{"contract win", "Acme has been commissioned to build a power plant", +1},
	{"contract win", "The customer placed an order for 20 machines", +1},
	{"contract win", "A utility has ordered three boilers from Acme", +1},
	{"supply agreement", "Acme signs supply agreement with carmaker", +1},
	{"supply agreement", "Acme will supply turbines to a wind farm in Scotland", +1},
	{"partnership", "Strategic partnership with global leader announced", +1},
	{"partnership", "Acme forms joint venture in India", +1},
	{"partnership", "Acme and a steel maker have agreed to cooperate in research", +1},
	{"expansion", "Acme announces expansion of its plant", +1},
	{"outperforms", "Acme outperforms the market", +1},
	{"selected as supplier", "Acme selected as supplier for new metro line", +1},
	{"signs agreement", "Acme enters into agreement with distributor", +1},
	{"signs agreement", "Acme signed a five-year service agreement with an operator", +1},
	{"record result", "Order intake was the highest in the company's history", +1},
	{"record result", "It is the biggest single order the company has ever received", +1},
	{"record result", "Backlog hits all-time high", +1},
	{"market leadership", "With the deal, Acme becomes the market leader in Norway", +1},
	{"market leadership", "Acme became the second largest operator in Sweden", +1},
	{"product launch", "Acme launches new smartphone", +1},
	{"patent granted", "USPTO grants Acme patent; patent issued for core technology", +1},
	{"government grant", "BioCo grant awarded by NIH", +1},
	{"insider buying", "CEO buys 100,000 shares", +1},
	{"insider selling", "Director sells stake worth $2 million", -1},
	{"index inclusion", "Acme to join the S&P 500", +1},
	{"index inclusion", "Acme added to Russell 2000 index", +1},
	{"uplisting", "XYZ approved for uplisting to Nasdaq", +1},
	{"sec investigation", "SEC opens investigation into accounting", -1},
	{"investigation", "Company faces federal probe", -1},
	{"fraud", "Short report alleges accounting fraud", -1},
	{"restatement", "Acme to restate three years of results", -1},
	{"settles litigation", "Acme settles patent lawsuit", +1},
	{"class action", "Law firm files class action against XYZ", -1},
	{"lawsuit", "Customer sues Acme", -1},
	{"fine", "Bank fined $5 million by regulator", -1},
	{"fine", "The regulator imposed a fine of EUR 3 mn", -1},
	{"short seller report", "Short seller targets XYZ", -1},
	{"cyberattack", "Data breach exposes customer records", -1},
	{"layoffs", "Company to lay off 20% of workforce", -1},
	{"layoffs", "Acme announces layoffs", -1},
	{"layoffs", "Acme to cut 300 jobs", -1},
	{"layoffs", "Acme will start personnel negotiations concerning 90 employees", -1},
	{"layoffs", "The co-operation negotiations concern 200 employees", -1},
	{"layoffs", "Acme will reduce its workforce by 120 people", -1},
	{"layoffs", "The talks may lead to the reduction of up to 45 jobs", -1},
	{"layoffs", "About 60 people will lose their jobs", -1},
	{"layoffs", "The company will temporarily lay off 230 production employees for up to two weeks", -1},
	{"restructuring", "Acme announces restructuring", -1},
	{"plant closure", "Acme to close factory in Ohio", -1},
	{"plant closure", "Acme said it would end production at its Varkaus plant", -1},
	{"cost savings", "Programme to deliver cost savings of EUR 10 mn", +1},
	{"ceo departure", "CEO resigns unexpectedly", -1},
	{"ceo departure", "CFO steps down", -1},
	{"impairment", "Acme books impairment charge", -1},
	{"impairment", "Acme writes off goodwill", -1},
	{"trading halt", "Trading halted pending news", -1},
	{"delay", "BioCo delays product launch", -1},
	{"strike", "Dock workers go on strike", -1},
	{"weighs on", "Weak demand weighed on third-quarter results", -1},
	{"oversubscribed", "IPO was heavily oversubscribed", +1},
	{"trial milestone", "First patient dosed in phase 1 study", +1},
	{"opens new sites", "Retailer opens new stores in Texas", +1},
	// Negation turns a phrase around.
	{"raises guidance", "Acme did not raise its guidance", -1},
	{"fda approval", "FDA does not approve BioCo drug", -1},
}

func TestPhrases(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range phraseCases {
		t.Run(c.phrase+"/"+c.text, func(t *testing.T) {
			p := s.Score(c.text)
			if c.sign == 0 {
				if len(p.Hits) != 0 {
					t.Errorf("hits %+v, want none", p.Hits)
				}
				return
			}
			for _, h := range p.Hits {
				if h.Phrase == c.phrase {
					if h.Weight*float64(c.sign) <= 0 {
						t.Errorf("hit %q weight %.2f, want sign %+d", h.Phrase, h.Weight, c.sign)
					}
					return
				}
			}
			t.Errorf("no hit %q in %+v", c.phrase, p.Hits)
		})
	}
}

func TestEveryPhraseHasACase(t *testing.T) {
	data, err := dataFS.ReadFile("data/finance_phrases.tsv")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range phraseCases {
		covered[c.phrase] = true
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "\t")
		names[name] = true
	}
	if len(names) < 60 {
		t.Errorf("%d phrase names, want at least 60", len(names))
	}
	for n := range names {
		if !covered[n] {
			t.Errorf("phrase %q has no row in phraseCases", n)
		}
	}
	for n := range covered {
		if !names[n] {
			t.Errorf("phraseCases names %q, which is not in the data", n)
		}
	}
}
