package notifier

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/internal/discordtest"
)

func TestCut(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "ACME", 10, "ACME"},
		{"exactly the limit", a(256), 256, a(256)},
		{"one over", a(257), 256, a(255) + "…"},
		{"emoji at the cut", strings.Repeat("🚀", 300), 256, strings.Repeat("🚀", 255) + "…"},
		{"CJK at the cut", strings.Repeat("株価", 150), 256, strings.Repeat("株価", 127) + "株…"},
		{"emoji within the limit", strings.Repeat("📈", 256), 256, strings.Repeat("📈", 256)},
		{"ZWJ family kept whole or dropped", a(254) + "👨\u200d👩\u200d👧" + a(10), 256, a(254) + "…"},
		{"skin tone not split from its hand", a(254) + "👍🏽" + a(10), 256, a(254) + "…"},
		{"variation selector kept with its base", a(254) + "❤\ufe0f" + a(10), 256, a(254) + "…"},
		{"flag not split", a(255) + "🇯🇵" + a(10), 257, a(255) + "…"},
		{"whole flag kept", a(254) + "🇯🇵" + a(10), 257, a(254) + "🇯🇵…"},
		{"combining accent stays", a(254) + "e\u0301" + a(10), 256, a(254) + "…"},
		{"spaces before the ellipsis go", "guidance raised " + a(300), 17, "guidance raised…"},
		{"invalid UTF-8 mended", "ab\xffcd", 10, "ab\uFFFDcd"},
		{"invalid UTF-8 cut", strings.Repeat("a\xff", 300), 3, "a\uFFFD…"},
		{"limit of one", "ACME", 1, "…"},
		{"limit of zero", "ACME", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cut(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("cut to %d: %q, want %q", tt.n, got, tt.want)
			}
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > tt.n {
				t.Errorf("cut to %d: %d runes, valid %v", tt.n, utf8.RuneCountInString(got), utf8.ValidString(got))
			}
		})
	}
}

// fields makes n fields with names and values of the given rune counts.
func fields(n, name, value int) []Field {
	out := make([]Field, n)
	for i := range out {
		out[i] = Field{Name: strings.Repeat("名", name), Value: strings.Repeat("💹", value)}
	}
	return out
}

// full is an embed with every text at twice its limit.
func full() Embed {
	return Embed{
		Title:       strings.Repeat("T", 2*MaxTitle),
		Description: strings.Repeat("D", 2*MaxDescription),
		Fields:      fields(2*MaxFields, 2*MaxFieldName, 2*MaxFieldValue),
		Footer:      &Footer{Text: strings.Repeat("F", 2*MaxFooter)},
		Author:      &Author{Name: strings.Repeat("A", 2*MaxAuthor)},
	}
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func TestFit(t *testing.T) {
	tests := []struct {
		name  string
		in    Message
		check func(t *testing.T, m Message)
	}{
		{"content cut at 2000 runes", Message{Content: strings.Repeat("🚀", 2001)}, func(t *testing.T, m Message) {
			if m.Content != strings.Repeat("🚀", 1999)+"…" {
				t.Errorf("content of %d runes", runes(m.Content))
			}
		}},
		{"content at 2000 kept", Message{Content: strings.Repeat("株", 2000)}, func(t *testing.T, m Message) {
			if m.Content != strings.Repeat("株", 2000) {
				t.Errorf("content of %d runes", runes(m.Content))
			}
		}},
		{"ten embeds kept", Message{Embeds: make([]Embed, 11)}, func(t *testing.T, m Message) {
			if len(m.Embeds) != MaxEmbeds {
				t.Errorf("%d embeds", len(m.Embeds))
			}
		}},
		{"25 fields kept", Message{Embeds: []Embed{{Fields: fields(30, 1, 1)}}}, func(t *testing.T, m Message) {
			if len(m.Embeds[0].Fields) != MaxFields {
				t.Errorf("%d fields", len(m.Embeds[0].Fields))
			}
		}},
		{"each text at its limit", Message{Embeds: []Embed{{
			Title: strings.Repeat("📉", 300), Description: strings.Repeat("d", 5000),
			Fields: fields(1, 300, 1100), Footer: &Footer{Text: strings.Repeat("f", 2100)}, Author: &Author{Name: strings.Repeat("a", 300)},
		}}}, func(t *testing.T, m Message) {
			e := m.Embeds[0]
			got := []int{runes(e.Title), runes(e.Description), runes(e.Fields[0].Name), runes(e.Fields[0].Value), runes(e.Footer.Text), runes(e.Author.Name)}
			// The total of 6000 then cuts the description, the last
			// text before it.
			want := []int{MaxTitle, 6000 - MaxTitle - MaxFieldName - MaxFieldValue - MaxFooter - MaxAuthor, MaxFieldName, MaxFieldValue, MaxFooter, MaxAuthor}
			if fmt.Sprint(got) != fmt.Sprint(want) || !strings.HasSuffix(e.Title, "📉…") {
				t.Errorf("rune counts %v, want %v", got, want)
			}
		}},
		{"descriptions give way from the last embed", Message{Embeds: []Embed{
			{Description: strings.Repeat("a", 4096)}, {Description: strings.Repeat("b", 4096)}, {Description: strings.Repeat("c", 4096)},
		}}, func(t *testing.T, m Message) {
			got := []int{runes(m.Embeds[0].Description), runes(m.Embeds[1].Description), runes(m.Embeds[2].Description)}
			if fmt.Sprint(got) != "[4096 1904 0]" || !strings.HasSuffix(m.Embeds[1].Description, "b…") {
				t.Errorf("descriptions of %v runes", got)
			}
		}},
		{"everything at twice its limit", Message{Content: strings.Repeat("c", 5000), Embeds: []Embed{
			full(), full(), full(), full(), full(), full(), full(), full(), full(), full(), full(), full(),
		}}, func(t *testing.T, m Message) {
			if n := embedsTotal(m.Embeds); n > MaxEmbedTotal || len(m.Embeds) != MaxEmbeds {
				t.Errorf("%d embeds totalling %d runes", len(m.Embeds), n)
			}
			for i, e := range m.Embeds {
				if runes(e.Title) != MaxTitle || runes(e.Author.Name) != MaxAuthor || len(e.Fields) != MaxFields {
					t.Errorf("embed %d lost its title, author or fields: %d %d %d", i, runes(e.Title), runes(e.Author.Name), len(e.Fields))
				}
			}
		}},
		{"empty field texts and footers mended", Message{Embeds: []Embed{{
			Title: "t", Fields: []Field{{Name: "", Value: "  "}}, Footer: &Footer{Text: " "}, Author: &Author{},
		}}}, func(t *testing.T, m Message) {
			e := m.Embeds[0]
			if e.Fields[0].Name != blank || e.Fields[0].Value != blank || e.Footer != nil || e.Author != nil {
				t.Errorf("embed %+v", e)
			}
		}},
		{"invalid UTF-8 mended", Message{Content: "ACME \xff up", Embeds: []Embed{{Title: "\xc3"}}}, func(t *testing.T, m Message) {
			if m.Content != "ACME \uFFFD up" || m.Embeds[0].Title != "\uFFFD" {
				t.Errorf("%q %q", m.Content, m.Embeds[0].Title)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.in
			m.Fit()
			tt.check(t, m)
			if tree := discordtest.FormErrors(payload(t, m)); tree != nil {
				t.Errorf("the fake refuses the fitted message: %v", tree)
			}
		})
	}
}

// payload is m as the fake reads it from the wire.
func payload(t testing.TB, m Message) discordtest.Payload {
	b, err := json.Marshal(executeBody{Content: m.Content, Embeds: m.Embeds, AllowedMentions: noMentions})
	if err != nil {
		t.Fatal(err)
	}
	var p discordtest.Payload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFitLeavesTheCallerAlone: Fit and Execute work on copies, so a
// message kept by the caller (to be edited later) keeps its texts.
func TestFitLeavesTheCallerAlone(t *testing.T) {
	orig := Message{Embeds: []Embed{{Title: strings.Repeat("T", 300), Fields: fields(30, 300, 1), Footer: &Footer{Text: ""}}}}
	m := orig
	m.Fit()
	if runes(orig.Embeds[0].Title) != 300 || len(orig.Embeds[0].Fields) != 30 || runes(orig.Embeds[0].Fields[0].Name) != 300 || orig.Embeds[0].Footer == nil {
		t.Errorf("Fit changed the caller's embeds")
	}
}

// TestFittedMessagesPosted sends messages over every limit through the
// client to the fake, which enforces the limits: each is posted, cut.
func TestFittedMessagesPosted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		for _, m := range []Message{
			{Content: strings.Repeat("📈", 2500)},
			{Content: "x", Embeds: []Embed{full(), full(), full(), full(), full(), full(), full(), full(), full(), full(), full()}},
			{Embeds: []Embed{{Title: "ACME", Description: strings.Repeat("株式会社🚀", 1500), Fields: []Field{{Name: "", Value: "pending"}}}}},
		} {
			if tree := discordtest.FormErrors(payload(t, m)); tree == nil {
				t.Fatal("the unfitted message is within the limits: the case tests nothing")
			}
			id, err := h.c.Execute(t.Context(), w, m)
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			got, _ := h.d.Message(id)
			if !utf8.ValidString(got.Content) || runes(got.Content) > MaxContent {
				t.Errorf("posted content of %d runes", runes(got.Content))
			}
			if err := h.c.Edit(t.Context(), w, id, m); err != nil {
				t.Errorf("Edit: %v", err)
			}
		}
	})
}

func FuzzFit(f *testing.F) {
	f.Add("ACME 🚀 up", "title", "desc", "name", "value", "foot", uint8(1), uint8(1), uint16(1))
	f.Add("\xff", "👨\u200d👩", "🇯🇵", "", " ", "e\u0301", uint8(12), uint8(30), uint16(400))
	f.Fuzz(func(t *testing.T, content, title, desc, name, value, footer string, nEmbeds, nFields uint8, repeat uint16) {
		// rep repeats s up to 8 KiB, cutting where it may: a cut rune
		// tests the mending of invalid UTF-8 too.
		rep := func(s string) string {
			const most = 8 << 10
			if s == "" {
				return ""
			}
			s = strings.Repeat(s, min(int(repeat%600)+1, most/len(s)+1))
			return s[:min(len(s), most)]
		}
		e := Embed{
			Title: rep(title), Description: rep(desc),
			Footer: &Footer{Text: rep(footer)}, Author: &Author{Name: title},
		}
		for range int(nFields % 40) {
			e.Fields = append(e.Fields, Field{Name: rep(name), Value: rep(value)})
		}
		m := Message{Content: rep(content)}
		for range int(nEmbeds % 14) {
			m.Embeds = append(m.Embeds, e)
		}
		m.Fit()
		p := payload(t, m)
		if tree := discordtest.FormErrors(p); tree != nil {
			t.Fatalf("fitted message refused: %v", tree)
		}
		texts := []string{m.Content}
		for _, e := range m.Embeds {
			texts = append(texts, e.Title, e.Description)
			for _, f := range e.Fields {
				texts = append(texts, f.Name, f.Value)
			}
		}
		for _, s := range texts {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q", s)
			}
		}
	})
}

// BenchmarkFit measures Fit on a typical alert, within every limit, and
// on a message over all of them.
func BenchmarkFit(b *testing.B) {
	alert := Message{Content: "**ACME** guidance raised", Embeds: []Embed{{
		Title: "ACME raises full-year guidance", Description: strings.Repeat("Summary text. ", 20),
		Fields: []Field{{Name: "Verdict", Value: "bullish 0.82", Inline: true}, {Name: "Price", Value: "$12.30 (+4.1%)", Inline: true}},
		Footer: &Footer{Text: "lexicon"},
	}}}
	over := Message{Content: strings.Repeat("🚀", 3000), Embeds: []Embed{full(), full(), full(), full(), full(), full(), full(), full(), full(), full(), full()}}
	for _, bc := range []struct {
		name string
		m    Message
	}{{"alert", alert}, {"over every limit", over}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m := bc.m
				m.Fit()
			}
		})
	}
}
