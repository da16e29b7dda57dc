package notifier

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/pipeline"
)

// Embed colours: amber while the analysis is pending or timed out, then
// the final label's.
const (
	colorAmber   = 0xFFBF00
	colorBullish = 0x2ECC71
	colorBearish = 0xE74C3C
	colorNeutral = 0xF1C40F
)

// The owner's texts.
const (
	aiFieldName      = "🤖 AI Analysis"
	aiPending        = "⏳ Processing..."
	aiTimeout        = "⏱️ AI Analysis Timeout — price data above remains accurate"
	footerPending    = "Real-time alert • AI analysis pending"
	footerDone       = "Real-time alert • AI analysis complete"
	footerDegraded   = "Real-time alert • AI analysis degraded"
	footerTimedOut   = "Real-time alert • AI analysis timed out"
	headlineRunes    = 200
	rationaleRunes   = 700
	leaningThreshold = 0.1
	topKeywords      = 3
)

// preliminaryMessage is the alert posted right after the prescore: the
// headline, the price, the lexicon's leaning and keywords, and the AI
// analysis still pending.
func preliminaryMessage(it pipeline.Item, al pipeline.Alert, pre pipeline.Answer, at time.Time) Message {
	e := Embed{
		Title:       alertTitle(it.Ticker),
		Description: cut(it.Title, headlineRunes),
		Color:       colorAmber,
		Timestamp:   at.UTC(),
		Footer:      &Footer{Text: footerPending},
	}
	if strings.HasPrefix(it.URL, "https://") || strings.HasPrefix(it.URL, "http://") {
		e.URL = it.URL
	}
	if p := priceText(al.LastPrice, al.ChangePct); p != "" {
		e.Fields = append(e.Fields, Field{Name: "💵 Price", Value: p, Inline: true})
	}
	e.Fields = append(e.Fields, Field{Name: "📊 Lexicon", Value: leaningText(pre.Score), Inline: true})
	if kw := keywords(pre.Prescore.Hits, topKeywords); kw != "" {
		e.Fields = append(e.Fields, Field{Name: "🔑 Keywords", Value: kw, Inline: true})
	}
	e.Fields = append(e.Fields, Field{Name: aiFieldName, Value: aiPending})
	m := Message{Embeds: []Embed{e}}
	m.Fit()
	return m
}

// finalMessage is the preliminary alert completed with the final answer
// (or with why there is none: err).
func finalMessage(pre Message, a pipeline.Answer, err error) Message {
	m := withAI(pre, "", 0, "")
	e := &m.Embeds[0]
	if err != nil {
		e.Fields[len(e.Fields)-1].Value = "⚠️ No analysis: " + err.Error()
		e.Color, e.Footer.Text = colorAmber, footerDegraded
		m.Fit()
		return m
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s **%s** · score %+.2f · confidence %.0f%%", labelEmoji(a.Label), strings.ToUpper(a.Label.String()), a.Score, a.Confidence*100)
	if r := strings.TrimSpace(a.Rationale); r != "" {
		b.WriteString("\n" + cut(r, rationaleRunes))
	}
	p := &a.Provenance
	who := p.Tier.String()
	if p.Model != "" && p.Model != who {
		who += " · " + p.Model
	}
	switch p.CacheHit {
	case pipeline.CacheExact:
		who += " · cached"
	case pipeline.CacheNear:
		who += fmt.Sprintf(" · cached (%.0f%% alike)", p.CacheSimilarity*100)
	}
	if p.Prefiltered {
		who += " · weak signal, no model needed"
	}
	fmt.Fprintf(&b, "\n_%s_", who)
	footer := footerDone
	if p.Degraded {
		fmt.Fprintf(&b, "\n⚠️ Degraded, the lexicon's answer: %s", p.Reason)
		footer = footerDegraded
	}
	e.Fields[len(e.Fields)-1].Value = b.String()
	e.Color, e.Footer.Text = labelColor(a.Label), footer
	m.Fit()
	return m
}

// timeoutMessage is the preliminary alert saying no final answer came in
// time; the price and the lexicon's reading stay.
func timeoutMessage(pre Message) Message {
	m := withAI(pre, aiTimeout, colorAmber, footerTimedOut)
	m.Fit()
	return m
}

// withAI copies the preliminary message with the AI field, colour and
// footer replaced (left as they are where empty).
func withAI(pre Message, value string, color int, footer string) Message {
	e := pre.Embeds[0]
	e.Fields = append([]Field(nil), e.Fields...)
	f := *e.Footer
	e.Footer = &f
	if value != "" {
		e.Fields[len(e.Fields)-1].Value = value
	}
	if color != 0 {
		e.Color = color
	}
	if footer != "" {
		e.Footer.Text = footer
	}
	return Message{Content: pre.Content, Embeds: []Embed{e}}
}

func alertTitle(ticker string) string {
	if t := strings.TrimSpace(ticker); t != "" {
		return "📈 " + strings.ToUpper(t) + " Alert"
	}
	return "📈 News Alert"
}

// priceText is "$12.34 (+5.67%)": the price when given, with the change.
func priceText(price, change float64) string {
	switch {
	case price > 0 && price < 1:
		return fmt.Sprintf("$%.4f (%+.2f%%)", price, change)
	case price > 0:
		return fmt.Sprintf("$%.2f (%+.2f%%)", price, change)
	case change != 0:
		return fmt.Sprintf("%+.2f%%", change)
	}
	return ""
}

// leaningText is the lexicon's leaning with its emoji, by the owner's
// thresholds.
func leaningText(score float64) string {
	switch {
	case score > leaningThreshold:
		return fmt.Sprintf("🟢 Bullish leaning · score %+.2f", score)
	case score < -leaningThreshold:
		return fmt.Sprintf("🔴 Bearish leaning · score %+.2f", score)
	}
	return fmt.Sprintf("⚪ Neutral leaning · score %+.2f", score)
}

// keywords are the strongest distinct phrases the lexicon found.
func keywords(hits []lexicon.Hit, k int) string {
	hs := append([]lexicon.Hit(nil), hits...)
	sort.SliceStable(hs, func(i, j int) bool { return math.Abs(hs[i].Weight) > math.Abs(hs[j].Weight) })
	var out []string
	seen := make(map[string]bool, k)
	for _, h := range hs {
		if len(out) == k {
			break
		}
		if !seen[h.Phrase] {
			seen[h.Phrase] = true
			out = append(out, h.Phrase)
		}
	}
	return strings.Join(out, ", ")
}

func labelEmoji(l lexicon.Label) string {
	switch l {
	case lexicon.LabelBullish:
		return "🟢"
	case lexicon.LabelBearish:
		return "🔴"
	}
	return "🟡"
}

func labelColor(l lexicon.Label) int {
	switch l {
	case lexicon.LabelBullish:
		return colorBullish
	case lexicon.LabelBearish:
		return colorBearish
	}
	return colorNeutral
}
