package notifier

import (
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Discord's message limits, in characters (runes). Going over any of them
// gets the whole message refused with 400 Invalid Form Body, so Fit cuts
// to them before anything is sent.
const (
	MaxContent     = 2000
	MaxEmbeds      = 10
	MaxTitle       = 256
	MaxDescription = 4096
	MaxFields      = 25
	MaxFieldName   = 256
	MaxFieldValue  = 1024
	MaxFooter      = 2048
	MaxAuthor      = 256
	// MaxEmbedTotal caps the sum of every title, description, field name
	// and value, footer text and author name over all embeds of a message.
	MaxEmbedTotal = 6000
)

// Ellipsis ends every text Fit had to cut, so a reader sees it was cut.
const Ellipsis = "…"

// blank stands in for an empty field name or value, which Discord refuses:
// a zero-width space is not trimmed as whitespace and shows as nothing.
const blank = "\u200b"

// Message is what a webhook posts, or what an edit replaces the message
// with.
type Message struct {
	Content string
	Embeds  []Embed
}

// Embed is one rich embed. Webhook embeds are always of type "rich".
type Embed struct {
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	// Color is 0xRRGGBB; 0 leaves Discord's default.
	Color int `json:"color,omitempty"`
	// Timestamp shows under the embed in the reader's time zone; zero
	// shows none.
	Timestamp time.Time `json:"timestamp,omitzero"`
	Fields    []Field   `json:"fields,omitempty"`
	Footer    *Footer   `json:"footer,omitempty"`
	Author    *Author   `json:"author,omitempty"`
}

// Field is a name and value pair of an embed; Inline fields sit side by
// side.
type Field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// Footer is the small text under an embed.
type Footer struct {
	Text string `json:"text"`
}

// Author is the line above an embed's title.
type Author struct {
	Name string `json:"name"`
}

// Fit cuts m to Discord's limits, so that a message is never refused for
// its size: an alert built from an unusually long headline or summary is
// still posted, shortened.
//
// Every text is counted in runes, as Discord counts, and a text over its
// limit keeps its beginning and ends with Ellipsis. Embeds past the tenth
// and fields past the 25th are dropped. When the embeds together are still
// over MaxEmbedTotal, the least important texts give way first, from the
// last embed backwards: descriptions, then footers, then field values and
// names (down to Ellipsis alone); titles and authors fit whatever remains.
//
// Fit also mends what Discord would otherwise refuse: invalid UTF-8 becomes
// U+FFFD, an empty field name or value becomes a zero-width space, and a
// footer or author with no text is dropped. It never splits a rune, and
// avoids splitting an emoji sequence or a flag.
//
// Fit works on copies of m's embeds and fields: a Message copied before
// Fit, or shared with another goroutine, keeps its own texts.
func (m *Message) Fit() {
	m.Content = cut(m.Content, MaxContent)
	if len(m.Embeds) == 0 {
		return
	}
	embeds := slices.Clone(m.Embeds[:min(len(m.Embeds), MaxEmbeds)])
	for i := range embeds {
		e := &embeds[i]
		e.Title = cut(e.Title, MaxTitle)
		e.Description = cut(e.Description, MaxDescription)
		if e.Fields != nil {
			e.Fields = slices.Clone(e.Fields[:min(len(e.Fields), MaxFields)])
		}
		for j := range e.Fields {
			f := &e.Fields[j]
			f.Name = orBlank(cut(f.Name, MaxFieldName))
			f.Value = orBlank(cut(f.Value, MaxFieldValue))
		}
		if e.Footer != nil {
			if t := cut(e.Footer.Text, MaxFooter); strings.TrimSpace(t) != "" {
				e.Footer = &Footer{Text: t}
			} else {
				e.Footer = nil
			}
		}
		if e.Author != nil {
			if n := cut(e.Author.Name, MaxAuthor); strings.TrimSpace(n) != "" {
				e.Author = &Author{Name: n}
			} else {
				e.Author = nil
			}
		}
	}
	m.Embeds = embeds
	fitTotal(embeds)
}

// embedsTotal is the count Discord holds against MaxEmbedTotal.
func embedsTotal(embeds []Embed) int {
	n := 0
	for i := range embeds {
		n += embedTotal(&embeds[i])
	}
	return n
}

func embedTotal(e *Embed) int {
	n := utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description)
	for _, f := range e.Fields {
		n += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
	}
	if e.Footer != nil {
		n += utf8.RuneCountInString(e.Footer.Text)
	}
	if e.Author != nil {
		n += utf8.RuneCountInString(e.Author.Name)
	}
	return n
}

// fitTotal shrinks embeds, already within their own limits, until they
// are within MaxEmbedTotal together. Titles and authors are never cut:
// ten of each come to 5120 runes, and field texts shrink to one rune each
// (500 in all), so the passes below always reach the limit.
func fitTotal(embeds []Embed) {
	over := embedsTotal(embeds) - MaxEmbedTotal
	if over <= 0 {
		return
	}
	// shrink cuts *s by up to over runes, keeping at least keep.
	shrink := func(s *string, keep int) {
		if over <= 0 {
			return
		}
		n := utf8.RuneCountInString(*s)
		if n <= keep {
			return
		}
		*s = cut(*s, max(keep, n-over))
		over -= n - utf8.RuneCountInString(*s)
	}
	for i := len(embeds) - 1; i >= 0; i-- {
		shrink(&embeds[i].Description, 0)
	}
	for i := len(embeds) - 1; i >= 0; i-- {
		if f := embeds[i].Footer; f != nil {
			shrink(&f.Text, 1)
		}
	}
	for i := len(embeds) - 1; i >= 0; i-- {
		for j := len(embeds[i].Fields) - 1; j >= 0; j-- {
			shrink(&embeds[i].Fields[j].Value, 1)
		}
	}
	for i := len(embeds) - 1; i >= 0; i-- {
		for j := len(embeds[i].Fields) - 1; j >= 0; j-- {
			shrink(&embeds[i].Fields[j].Name, 1)
		}
	}
}

func orBlank(s string) string {
	if strings.TrimSpace(s) == "" {
		return blank
	}
	return s
}

// cut returns s, made valid UTF-8, with at most n runes: a longer s keeps
// its beginning and ends with Ellipsis. The cut moves back, a few runes at
// most, so as not to leave a joiner dangling or split a base from its
// modifiers or a flag's two halves; spaces before the ellipsis go.
//
// Only the runes up to the cut are read, so a huge text costs no more
// than one at the limit. An invalid byte counts as a rune of its own
// until it is mended, which can only make the result shorter.
func cut(s string, n int) string {
	if len(s) <= n {
		return valid(s) // no more runes than bytes
	}
	end := -1 // byte offset of rune n: where a text of n runes ends
	count := 0
	for i := range s {
		if count == n {
			end = i
			break
		}
		count++
	}
	if end < 0 {
		return valid(s)
	}
	if n <= 0 {
		return ""
	}
	// at is where rune n-1 starts: the cut that leaves room for the
	// ellipsis. Move back while cutting there would split a sequence.
	_, size := utf8.DecodeLastRuneInString(s[:end])
	at := end - size
	for i, k := 0, at; i < lookBack && k > 0; i++ {
		r, _ := utf8.DecodeRuneInString(s[k:])
		prev, psize := utf8.DecodeLastRuneInString(s[:k])
		if !extends(r) && prev != zwj && !(isRegionalIndicator(r) && oddRegionalRun(s[:k])) {
			at = k
			break
		}
		k -= psize
	}
	return strings.TrimRightFunc(valid(s[:at]), unicode.IsSpace) + Ellipsis
}

// lookBack bounds how far cut moves back to keep a sequence whole: a text
// of combining marks must still be cut near its limit.
const lookBack = 8

func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

const zwj = '\u200d'

// extends reports whether r belongs with the rune before it: a combining
// mark, a joiner, a variation selector, a skin-tone modifier or an emoji
// tag. Cutting before it would strip it from its base.
func extends(r rune) bool {
	switch {
	case r == zwj, r >= 0xfe00 && r <= 0xfe0f, r >= 0x1f3fb && r <= 0x1f3ff, r >= 0xe0020 && r <= 0xe007f:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me)
}

func isRegionalIndicator(r rune) bool { return r >= 0x1f1e6 && r <= 0x1f1ff }

// oddRegionalRun reports whether s ends in an odd run of regional
// indicators: the next one would be the second half of a flag.
func oddRegionalRun(s string) bool {
	odd := false
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if !isRegionalIndicator(r) {
			break
		}
		odd = !odd
		s = s[:len(s)-size]
	}
	return odd
}
