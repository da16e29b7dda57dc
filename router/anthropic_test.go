package router

import (
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/upstream"
)

func TestAnthropicRequestAndAnswer(t *testing.T) {
	fake, p := setup(t, upstreamtest.Anthropic)
	fake.Push(upstreamtest.AnswerUsage(upstreamtest.BearishJSON, 250, 40))
	a, u, err := p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelBearish, -0.7)
	if u != (Usage{TokensIn: 250, TokensOut: 40}) {
		t.Errorf("usage %+v", u)
	}
	r := fake.LastRequest()
	if r.Path != "/v1/messages" {
		t.Errorf("path %s", r.Path)
	}
	if got := r.Header.Get("x-api-key"); got != testKey.Reveal() {
		t.Errorf("x-api-key %q", got)
	}
	if got := r.Header.Get("anthropic-version"); got != "2023-06-01" {
		t.Errorf("anthropic-version %q", got)
	}
	for path, want := range map[string]any{
		"model":                     "claude-haiku-4-5",
		"max_tokens":                float64(maxAnswerTokens),
		"temperature":               0.0,
		"system":                    testPrompt.System,
		"messages.0.role":           "user",
		"messages.0.content":        testPrompt.User,
		"tools.0.name":              answerToolName,
		"tools.0.input_schema.type": "object",
		"tool_choice.type":          "tool",
		"tool_choice.name":          answerToolName,
	} {
		if got := r.Field(path); got != want {
			t.Errorf("request %s = %#v, want %#v", path, got, want)
		}
	}
}

// TestAnthropicBlocks picks the answer by block type: a thinking block may
// come first, and a model that ignored the tool may answer in text.
func TestAnthropicBlocks(t *testing.T) {
	fake, p := setup(t, upstreamtest.Anthropic)
	fake.Push(
		upstreamtest.AnswerThinking(upstreamtest.BullishJSON),
		upstreamtest.Answer(upstreamtest.Prose(upstreamtest.NeutralJSON)),
		upstreamtest.Raw(200, "application/json", `{"type":"message","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"I judge it bullish."}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":5}}`),
		upstreamtest.Raw(200, "application/json", `{"type":"message","content":[{"type":"tool_use","id":"t","name":"record_judgement","input":{"label":"bearish","score":0.5}}],"stop_reason":"tool_use"}`),
	)
	a, _, err := p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("thinking first: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelBullish, 0.8)
	a, _, err = p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("text answer: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelNeutral, 0)
	_, _, err = p.Judge(t.Context(), testPrompt)
	wantError(t, err, upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true}, "no JSON object")
	_, _, err = p.Judge(t.Context(), testPrompt)
	wantError(t, err, upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true}, "contradicts")
}

func TestAnthropicErrors(t *testing.T) {
	tests := []struct {
		name string
		b    upstreamtest.Behavior
		err  upstream.Error
		msg  string
	}{
		{"rate limited", upstreamtest.AnthropicRateLimited(7 * time.Second),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 7 * time.Second}, "rate_limit_error: Number of request tokens"},
		{"overloaded", upstreamtest.AnthropicOverloaded(), upstream.Error{Kind: upstream.KindHTTP, Status: 529, Retryable: true}, "overloaded_error: Overloaded"},
		{"api error", upstreamtest.Error(500, "Internal server error"), upstream.Error{Kind: upstream.KindHTTP, Status: 500, Retryable: true}, "api_error"},
		{"timeout error", upstreamtest.Error(504, "Request timed out"), upstream.Error{Kind: upstream.KindHTTP, Status: 504, Retryable: true}, "timeout_error"},
		{"invalid request", upstreamtest.Error(400, "temperature: not supported"), upstream.Error{Kind: upstream.KindHTTP, Status: 400}, "invalid_request_error"},
		{"authentication", upstreamtest.Error(401, "invalid x-api-key"), upstream.Error{Kind: upstream.KindHTTP, Status: 401}, "authentication_error"},
		{"billing", upstreamtest.Error(402, "credit balance too low"), upstream.Error{Kind: upstream.KindHTTP, Status: 402}, "billing_error"},
		{"permission", upstreamtest.Error(403, "no access"), upstream.Error{Kind: upstream.KindHTTP, Status: 403}, "permission_error"},
		{"not found", upstreamtest.Error(404, "model: claude-x"), upstream.Error{Kind: upstream.KindHTTP, Status: 404}, "not_found_error"},
		{"too large from Cloudflare", upstreamtest.Raw(413, "text/html", "<html>413 Request Entity Too Large</html>"), upstream.Error{Kind: upstream.KindHTTP, Status: 413}, "413 Request Entity"},
		{"refusal", upstreamtest.AnthropicRefusal(), upstream.Error{Kind: upstream.KindRefused}, "refusal"},
		{"max tokens without tool", upstreamtest.Raw(200, "application/json", `{"type":"message","content":[],"stop_reason":"max_tokens"}`),
			upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true}, "max_tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, p := setup(t, upstreamtest.Anthropic)
			fake.Push(tt.b)
			_, _, err := p.Judge(t.Context(), testPrompt)
			wantError(t, err, tt.err, tt.msg)
		})
	}
}
