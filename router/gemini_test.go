package router

import (
	"testing"
	"time"
	_ "time/tzdata" // the reference zone for untilPacificMidnight's test

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/upstream"
)

func TestGeminiRequestAndAnswer(t *testing.T) {
	fake, p := setup(t, upstreamtest.Gemini)
	fake.Push(upstreamtest.AnswerThinking(upstreamtest.BullishJSON))
	a, u, err := p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelBullish, 0.8)
	if u != (Usage{TokensIn: upstreamtest.TokensIn, TokensOut: upstreamtest.TokensOut + 20}) {
		t.Errorf("usage %+v (thinking tokens count as output)", u)
	}
	r := fake.LastRequest()
	if r.Path != "/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("path %s", r.Path)
	}
	if r.RawQuery != "" {
		t.Errorf("query %q: the key belongs in a header", r.RawQuery)
	}
	if got := r.Header.Get("x-goog-api-key"); got != testKey.Reveal() {
		t.Errorf("x-goog-api-key %q", got)
	}
	for path, want := range map[string]any{
		"contents.0.role":                                       "user",
		"contents.0.parts.0.text":                               testPrompt.User,
		"systemInstruction.parts.0.text":                        testPrompt.System,
		"generationConfig.temperature":                          0.0,
		"generationConfig.seed":                                 42.0,
		"generationConfig.maxOutputTokens":                      float64(geminiMaxOutputTokens),
		"generationConfig.responseMimeType":                     "application/json",
		"generationConfig.responseSchema.type":                  "OBJECT",
		"generationConfig.responseSchema.properties.label.type": "STRING",
		"generationConfig.responseSchema.properties.score.type": "NUMBER",
		"generationConfig.responseSchema.propertyOrdering.0":    "label",
		"generationConfig.responseSchema.additionalProperties":  nil,
	} {
		if got := r.Field(path); got != want {
			t.Errorf("request %s = %#v, want %#v", path, got, want)
		}
	}
}

func TestGeminiModelPrefix(t *testing.T) {
	fake := upstreamtest.New(t, upstreamtest.Gemini)
	p := NewGemini(GeminiConfig{BaseURL: fake.URL, Model: "models/gemini-2.5-flash-lite", APIKey: testKey}, testHTTPClient(t))
	if _, _, err := p.Judge(t.Context(), testPrompt); err != nil {
		t.Fatalf("Judge: %v", err)
	}
	if got := fake.LastRequest().Path; got != "/v1beta/models/gemini-2.5-flash-lite:generateContent" {
		t.Errorf("path %s", got)
	}
}

func TestGeminiErrors(t *testing.T) {
	// 2026-03-07 10:00 PST: the next Pacific midnight is 14 h away.
	now := time.Date(2026, 3, 7, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		b    upstreamtest.Behavior
		err  upstream.Error
		msg  string
	}{
		{"per-minute quota", upstreamtest.GeminiRateLimited("10s", upstreamtest.GeminiPerMinuteQuota),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 10 * time.Second}, "RESOURCE_EXHAUSTED: You exceeded your current quota"},
		{"fractional delay", upstreamtest.GeminiRateLimited("1.5s", ""),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 1500 * time.Millisecond}, "retry in 1.5s"},
		{"no details", upstreamtest.Error(429, "Resource has been exhausted"),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true}, "RESOURCE_EXHAUSTED"},
		{"daily quota", upstreamtest.GeminiRateLimited("37s", upstreamtest.GeminiPerDayQuota),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, RetryAfter: 14 * time.Hour}, "quota"},
		{"overloaded", upstreamtest.GeminiUnavailable(), upstream.Error{Kind: upstream.KindHTTP, Status: 503, Retryable: true}, "UNAVAILABLE: The model is overloaded"},
		{"internal", upstreamtest.Error(500, "An internal error has occurred"), upstream.Error{Kind: upstream.KindHTTP, Status: 500, Retryable: true}, "INTERNAL"},
		{"deadline", upstreamtest.Error(504, "Deadline exceeded"), upstream.Error{Kind: upstream.KindHTTP, Status: 504, Retryable: true}, "DEADLINE_EXCEEDED"},
		{"invalid argument", upstreamtest.Error(400, "Invalid JSON payload"), upstream.Error{Kind: upstream.KindHTTP, Status: 400}, "INVALID_ARGUMENT"},
		{"permission denied", upstreamtest.Error(403, "Method doesn't allow unregistered callers"), upstream.Error{Kind: upstream.KindHTTP, Status: 403}, "PERMISSION_DENIED"},
		{"not found", upstreamtest.Error(404, "models/x is not found"), upstream.Error{Kind: upstream.KindHTTP, Status: 404}, "NOT_FOUND"},
		{"blocked prompt", upstreamtest.GeminiBlocked("PROHIBITED_CONTENT"), upstream.Error{Kind: upstream.KindRefused}, "prompt blocked: PROHIBITED_CONTENT"},
		{"safety stop", upstreamtest.GeminiFinish("SAFETY"), upstream.Error{Kind: upstream.KindRefused}, "finishReason SAFETY"},
		{"out of tokens while thinking", upstreamtest.GeminiFinish("MAX_TOKENS"), upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true}, "MAX_TOKENS"},
		{"no candidates", upstreamtest.Raw(200, "application/json", `{"usageMetadata":{}}`), upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, "no candidates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := upstreamtest.New(t, upstreamtest.Gemini)
			g := NewGemini(GeminiConfig{BaseURL: fake.URL, Model: "gemini-2.5-flash", APIKey: testKey}, testHTTPClient(t))
			g.now = func() time.Time { return now }
			fake.Push(tt.b)
			_, _, err := g.Judge(t.Context(), testPrompt)
			wantError(t, err, tt.err, tt.msg)
		})
	}
}

// TestUntilPacificMidnight compares the computed US rule with the zone
// database over two years of instants, DST changes included.
func TestUntilPacificMidnight(t *testing.T) {
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for now := start; now.Before(start.AddDate(2, 0, 0)); now = now.Add(47 * time.Minute) {
		l := now.In(la)
		want := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, la).Sub(now)
		if got := untilPacificMidnight(now); got != want {
			t.Fatalf("untilPacificMidnight(%v = %v) = %v, want %v", now, l, got, want)
		}
	}
}
