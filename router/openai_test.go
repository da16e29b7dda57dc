package router

import (
	"net/http"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/upstream"
)

func TestOpenAIRequestAndAnswer(t *testing.T) {
	fake, p := setup(t, upstreamtest.OpenAI)
	fake.Push(upstreamtest.AnswerUsage(upstreamtest.NeutralJSON, 13, 5))
	a, u, err := p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelNeutral, 0)
	if u != (Usage{TokensIn: 13, TokensOut: 5}) {
		t.Errorf("usage %+v", u)
	}
	r := fake.LastRequest()
	if r.Path != "/v1/chat/completions" {
		t.Errorf("path %s", r.Path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+testKey.Reveal() {
		t.Errorf("Authorization %q", got)
	}
	for path, want := range map[string]any{
		"model":                              "qwen3:8b",
		"temperature":                        0.0,
		"seed":                               42.0,
		"max_tokens":                         float64(maxAnswerTokens),
		"stream":                             false,
		"response_format.type":               "json_schema",
		"response_format.json_schema.name":   answerToolName,
		"response_format.json_schema.strict": true,
		"response_format.json_schema.schema.type":                 "object",
		"response_format.json_schema.schema.additionalProperties": false,
		"messages.0.role":    "system",
		"messages.1.content": testPrompt.User,
	} {
		if got := r.Field(path); got != want {
			t.Errorf("request %s = %#v, want %#v", path, got, want)
		}
	}
}

// TestOpenAINoKey checks that a local server without a key gets no
// Authorization header, and that a base URL ending in /v1 is accepted.
func TestOpenAINoKey(t *testing.T) {
	fake := upstreamtest.New(t, upstreamtest.OpenAI)
	p := NewOpenAI(OpenAIConfig{BaseURL: fake.URL + "/v1/", Model: "m"}, testHTTPClient(t))
	if _, _, err := p.Judge(t.Context(), testPrompt); err != nil {
		t.Fatalf("Judge: %v", err)
	}
	r := fake.LastRequest()
	if _, ok := r.Header["Authorization"]; ok {
		t.Errorf("Authorization sent without a key: %q", r.Header.Get("Authorization"))
	}
	if r.Path != "/v1/chat/completions" {
		t.Errorf("path %s", r.Path)
	}
}

func TestOpenAIErrors(t *testing.T) {
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name string
		b    upstreamtest.Behavior
		err  upstream.Error
		msg  string
	}{
		{"rate limited", upstreamtest.OpenAIRateLimited(1500 * time.Millisecond),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 1500 * time.Millisecond}, "rate_limit_exceeded: Rate limit reached"},
		{"insufficient quota", upstreamtest.OpenAIInsufficientQuota(), upstream.Error{Kind: upstream.KindHTTP, Status: 429}, "insufficient_quota"},
		{"llama.cpp loading, int code", upstreamtest.LlamaCppLoading(), upstream.Error{Kind: upstream.KindHTTP, Status: 503, Retryable: true}, "Loading model"},
		{"vLLM nested int code", upstreamtest.Raw(400, "application/json", `{"error":{"message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}}`),
			upstream.Error{Kind: upstream.KindHTTP, Status: 400}, "max_tokens too large"},
		{"vLLM flat", upstreamtest.Raw(400, "application/json", `{"object":"error","message":"model not served","type":"NotFoundError","param":null,"code":404}`),
			upstream.Error{Kind: upstream.KindHTTP, Status: 400}, "model not served"},
		{"bare error string", upstreamtest.Raw(500, "application/json", `{"error":"boom"}`), upstream.Error{Kind: upstream.KindHTTP, Status: 500, Retryable: true}, "boom"},
		{"unauthorized", upstreamtest.Error(401, "Incorrect API key provided"), upstream.Error{Kind: upstream.KindHTTP, Status: 401}, "invalid_api_key"},
		{"forbidden", upstreamtest.Error(403, "Country not supported"), upstream.Error{Kind: upstream.KindHTTP, Status: 403}, "Country"},
		{"not found", upstreamtest.Error(404, "The model does not exist"), upstream.Error{Kind: upstream.KindHTTP, Status: 404}, "model_not_found"},
		{"server error", upstreamtest.Error(500, "The server had an error"), upstream.Error{Kind: upstream.KindHTTP, Status: 500, Retryable: true}, "server had an error"},
		{"Retry-After date", upstreamtest.Error(429, "slow", "Retry-After", date),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true}, "slow"},
		{"refusal", upstreamtest.Raw(200, "application/json", `{"choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3}}`),
			upstream.Error{Kind: upstream.KindRefused}, "can't help"},
		{"content filter", upstreamtest.Raw(200, "application/json", `{"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}`),
			upstream.Error{Kind: upstream.KindRefused}, "content_filter"},
		{"no choices", upstreamtest.Raw(200, "application/json", `{"choices":[]}`), upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, "no choices"},
		{"length, no content", upstreamtest.Raw(200, "application/json", `{"choices":[{"message":{"content":""},"finish_reason":"length"}]}`),
			upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true}, "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, p := setup(t, upstreamtest.OpenAI)
			fake.Push(tt.b)
			_, _, err := p.Judge(t.Context(), testPrompt)
			if tt.name == "Retry-After date" {
				var e *upstream.Error
				if !errorsAs(err, &e) {
					t.Fatalf("error %v is not an *upstream.Error", err)
				}
				if e.RetryAfter < 28*time.Second || e.RetryAfter > 31*time.Second {
					t.Errorf("RetryAfter %v from an HTTP-date 30s ahead", e.RetryAfter)
				}
				tt.err.RetryAfter = e.RetryAfter
			}
			wantError(t, err, tt.err, tt.msg)
		})
	}
}
