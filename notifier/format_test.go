package notifier

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
)

func fieldNamed(t *testing.T, m Message, prefix string) (Field, bool) {
	t.Helper()
	for _, f := range m.Embeds[0].Fields {
		if strings.HasPrefix(f.Name, prefix) {
			return f, true
		}
	}
	return Field{}, false
}

func TestPreliminaryMessage(t *testing.T) {
	at := time.Date(2026, 12, 1, 14, 30, 0, 0, time.FixedZone("x", 3600))
	hits := []lexicon.Hit{{Phrase: "beats estimates", Weight: 0.7}, {Phrase: "record revenue", Weight: 0.5}, {Phrase: "beats estimates", Weight: 0.7}, {Phrase: "lawsuit", Weight: -0.9}, {Phrase: "new product", Weight: 0.2}}
	tests := []struct {
		name      string
		ticker    string
		title     string
		alert     pipeline.Alert
		score     float64
		hits      []lexicon.Hit
		wantTitle string
		price     string // "" when no price field
		leaning   string
		keywords  string // "" when no keywords field
	}{
		{"owner's example", "acme", "ACME beats estimates", pipeline.Alert{LastPrice: 12.34, ChangePct: 5.67}, 0.42, hits,
			"📈 ACME Alert", "$12.34 (+5.67%)", "🟢 Bullish leaning · score +0.42", "lawsuit, beats estimates, record revenue"},
		{"falling penny stock", "PNY", "PNY halts trading", pipeline.Alert{LastPrice: 0.0123, ChangePct: -12.5}, -0.35, nil,
			"📈 PNY Alert", "$0.0123 (-12.50%)", "🔴 Bearish leaning · score -0.35", ""},
		{"at the threshold", "", "Markets open", pipeline.Alert{}, 0.1, nil,
			"📈 News Alert", "", "⚪ Neutral leaning · score +0.10", ""},
		{"change alone", "XYZ", "XYZ moves", pipeline.Alert{ChangePct: 3}, -0.1, nil,
			"📈 XYZ Alert", "+3.00%", "⚪ Neutral leaning · score -0.10", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pre := pipeline.Answer{Score: tt.score, Prescore: lexicon.Prescore{Score: tt.score, Hits: tt.hits}}
			m := preliminaryMessage(pipeline.Item{Ticker: tt.ticker, Title: tt.title, URL: "https://news.example/a"}, tt.alert, pre, at)
			e := m.Embeds[0]
			if e.Title != tt.wantTitle || e.Description != tt.title || e.Color != colorAmber || e.URL != "https://news.example/a" {
				t.Errorf("embed %+v", e)
			}
			if e.Footer.Text != "Real-time alert • AI analysis pending" || !e.Timestamp.Equal(at) {
				t.Errorf("footer %q, timestamp %v", e.Footer.Text, e.Timestamp)
			}
			if f, ok := fieldNamed(t, m, "💵 Price"); (tt.price == "") == ok || f.Value != tt.price {
				t.Errorf("price field %q (present %v), want %q", f.Value, ok, tt.price)
			}
			if f, _ := fieldNamed(t, m, "📊 Lexicon"); f.Value != tt.leaning {
				t.Errorf("leaning %q, want %q", f.Value, tt.leaning)
			}
			if f, ok := fieldNamed(t, m, "🔑 Keywords"); (tt.keywords == "") == ok || f.Value != tt.keywords {
				t.Errorf("keywords %q (present %v), want %q", f.Value, ok, tt.keywords)
			}
			last := e.Fields[len(e.Fields)-1]
			if last.Name != "🤖 AI Analysis" || last.Value != "⏳ Processing..." {
				t.Errorf("last field %+v, want the pending analysis", last)
			}
		})
	}
}

func TestPreliminaryMessageCutsTheHeadline(t *testing.T) {
	for _, unit := range []string{"株", "📈", "é"} {
		title := strings.Repeat(unit, 500)
		m := preliminaryMessage(pipeline.Item{Ticker: "7203", Title: title, URL: "javascript:alert(1)"}, pipeline.Alert{}, pipeline.Answer{}, time.Now())
		d := m.Embeds[0].Description
		if n := utf8.RuneCountInString(d); n != 200 || !strings.HasSuffix(d, "…") || !strings.HasPrefix(d, unit) {
			t.Errorf("%s headline cut to %d runes (%q...), want 200 ending in an ellipsis", unit, n, d[:12])
		}
		if m.Embeds[0].URL != "" {
			t.Errorf("a non-http URL was linked: %q", m.Embeds[0].URL)
		}
	}
}

func TestFinalAndTimeoutMessages(t *testing.T) {
	pre := preliminaryMessage(pipeline.Item{Ticker: "ACME", Title: "ACME beats"}, pipeline.Alert{LastPrice: 10, ChangePct: 1}, pipeline.Answer{Score: 0.3}, time.Now())
	model := pipeline.Answer{Label: lexicon.LabelBearish, Score: -0.8, Confidence: 0.91, Rationale: "Guidance cut.",
		Provenance: pipeline.Provenance{Tier: router.TierGemini, Model: "gemini-2.5-flash"}}
	near := model
	near.Provenance.CacheHit, near.Provenance.CacheSimilarity = pipeline.CacheNear, 0.93
	degraded := pipeline.Answer{Label: lexicon.LabelNeutral, Score: 0.05, Confidence: 0.3,
		Provenance: pipeline.Provenance{Tier: router.TierLexicon, Model: "lexicon", Degraded: true, Reason: "local: breaker open"}}
	tests := []struct {
		name   string
		msg    Message
		ai     []string
		color  int
		footer string
	}{
		{"model", finalMessage(pre, model, nil), []string{"🔴 **BEARISH** · score -0.80 · confidence 91%", "Guidance cut.", "_gemini · gemini-2.5-flash_"}, colorBearish, footerDone},
		{"near cache hit", finalMessage(pre, near, nil), []string{"cached (93% alike)"}, colorBearish, footerDone},
		{"degraded", finalMessage(pre, degraded, nil), []string{"🟡 **NEUTRAL**", "⚠️ Degraded, the lexicon's answer: local: breaker open"}, colorNeutral, footerDegraded},
		{"no answer", finalMessage(pre, pipeline.Answer{}, errors.New("require_llm: every tier failed")), []string{"⚠️ No analysis: require_llm: every tier failed"}, colorAmber, footerDegraded},
		{"timeout", timeoutMessage(pre), []string{"⏱️ AI Analysis Timeout — price data above remains accurate"}, colorAmber, footerTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.msg.Embeds[0]
			ai := e.Fields[len(e.Fields)-1].Value
			for _, want := range tt.ai {
				if !strings.Contains(ai, want) {
					t.Errorf("AI field %q lacks %q", ai, want)
				}
			}
			if e.Color != tt.color || e.Footer.Text != tt.footer {
				t.Errorf("colour %#x footer %q, want %#x %q", e.Color, e.Footer.Text, tt.color, tt.footer)
			}
			if f, ok := fieldNamed(t, tt.msg, "💵 Price"); !ok || f.Value != "$10.00 (+1.00%)" {
				t.Errorf("the price field did not stay: %+v", f)
			}
		})
	}
	// The preliminary message is untouched by the edits made from it.
	if ai := pre.Embeds[0].Fields[len(pre.Embeds[0].Fields)-1].Value; ai != aiPending || pre.Embeds[0].Footer.Text != footerPending {
		t.Errorf("the preliminary message changed: %q", ai)
	}
}

func TestLedger(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLedger(3, time.Hour, func() time.Time { return now })
	if first, _ := l.claim("a"); !first {
		t.Fatal("a new key was not first")
	}
	if first, id := l.claim("a"); first || id != "" {
		t.Errorf("a repeat while the post is on its way: first %v id %q", first, id)
	}
	l.record("a", "m1")
	if _, id := l.claim("a"); id != "m1" {
		t.Errorf("repeat id %q, want m1", id)
	}
	l.release("a")
	if first, _ := l.claim("a"); !first {
		t.Error("a released key (failed post) is not free again")
	}
	l.claim("b")
	l.claim("c")
	l.claim("d") // over the bound of 3: the oldest, a, goes
	if first, _ := l.claim("a"); !first {
		t.Error("the bound kept the oldest key")
	}
	l = newLedger(3, time.Hour, func() time.Time { return now })
	l.claim("x")
	now = now.Add(time.Hour - time.Second)
	if first, _ := l.claim("x"); first {
		t.Error("x was forgotten within its TTL")
	}
	now = now.Add(time.Second)
	if first, _ := l.claim("x"); !first {
		t.Error("x outlived its TTL")
	}
}
