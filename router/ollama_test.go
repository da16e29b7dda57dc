package router

import (
	"testing"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/upstream"
)

func TestOllamaRequestAndAnswer(t *testing.T) {
	fake, p := setup(t, upstreamtest.Ollama)
	fake.Push(upstreamtest.AnswerUsage(upstreamtest.BearishJSON, 34, 12))
	a, u, err := p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelBearish, -0.7)
	if a.Confidence != 0.85 || a.Rationale != "Going-concern doubt." {
		t.Errorf("answer %+v", a)
	}
	if u != (Usage{TokensIn: 34, TokensOut: 12}) {
		t.Errorf("usage %+v", u)
	}
	r := fake.LastRequest()
	if r.Path != "/api/chat" {
		t.Errorf("path %s", r.Path)
	}
	for path, want := range map[string]any{
		"model":                          "mistral",
		"stream":                         false,
		"keep_alive":                     "30m",
		"format.type":                    "object",
		"format.properties.label.enum.0": "bullish",
		"options.temperature":            0.0,
		"options.seed":                   42.0,
		"options.num_ctx":                4096.0,
		"options.num_predict":            float64(maxAnswerTokens),
		"messages.0.role":                "system",
		"messages.0.content":             testPrompt.System,
		"messages.1.role":                "user",
		"messages.1.content":             testPrompt.User,
	} {
		if got := r.Field(path); got != want {
			t.Errorf("request %s = %#v, want %#v", path, got, want)
		}
	}
}

// TestOllamaOptionalFields checks that unset options are left to the
// server: an explicit num_ctx would make Ollama reload the model.
func TestOllamaOptionalFields(t *testing.T) {
	fake := upstreamtest.New(t, upstreamtest.Ollama)
	p := NewOllama(ollama.New(ollama.Config{BaseURL: fake.URL + "/", Model: "mistral"}, testHTTPClient(t)))
	if _, _, err := p.Judge(t.Context(), testPrompt); err != nil {
		t.Fatalf("Judge: %v", err)
	}
	r := fake.LastRequest()
	if r.Path != "/api/chat" {
		t.Errorf("path %s", r.Path)
	}
	for _, k := range []string{"keep_alive", "options.num_ctx"} {
		if v := r.Field(k); v != nil {
			t.Errorf("%s sent as %v", k, v)
		}
	}
}

func TestOllamaErrors(t *testing.T) {
	tests := []struct {
		name string
		b    upstreamtest.Behavior
		err  upstream.Error
		msg  string
	}{
		{"runner terminated", upstreamtest.OllamaRunnerTerminated(), upstream.Error{Kind: upstream.KindHTTP, Status: 500, Retryable: true}, "llama runner process has terminated"},
		{"queue full", upstreamtest.OllamaBusy(), upstream.Error{Kind: upstream.KindHTTP, Status: 503, Retryable: true}, "server busy"},
		{"model not found", upstreamtest.OllamaModelNotFound("mistral"), upstream.Error{Kind: upstream.KindHTTP, Status: 404}, `model "mistral" not found`},
		{"bad request", upstreamtest.Error(400, "model is required"), upstream.Error{Kind: upstream.KindHTTP, Status: 400}, "model is required"},
		{"error line with 200", upstreamtest.OllamaErrorLine("llama runner process has terminated: signal: killed"),
			upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, "llama runner process has terminated"},
		{"cloud 429", upstreamtest.Error(429, "too many requests", "Retry-After", "3"),
			upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 3e9}, "too many requests"},
		{"empty body", upstreamtest.Raw(200, "application/json", ""), upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, "empty"},
		{"openai-style body", upstreamtest.Raw(503, "application/json", `{"error":{"message":"queue full","type":"api_error"}}`),
			upstream.Error{Kind: upstream.KindHTTP, Status: 503, Retryable: true}, "queue full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, p := setup(t, upstreamtest.Ollama)
			fake.Push(tt.b)
			_, _, err := p.Judge(t.Context(), testPrompt)
			wantError(t, err, tt.err, tt.msg)
		})
	}
}

// TestOllamaStreamedAnyway reads an NDJSON reply, as from a server or proxy
// that ignored stream:false: the contents are joined and the final line's
// counts kept.
func TestOllamaStreamedAnyway(t *testing.T) {
	fake, p := setup(t, upstreamtest.Ollama)
	fake.Push(upstreamtest.Raw(200, "application/x-ndjson",
		`{"message":{"role":"assistant","content":"{\"label\":\"bull"},"done":false}`+"\n"+
			`{"message":{"role":"assistant","content":"ish\",\"score\":0.6,\"confidence\":0.7}"},"done":false}`+"\n"+
			`{"message":{"role":"assistant","content":""},"done":true,"prompt_eval_count":30,"eval_count":9}`+"\n"))
	a, u, err := p.Judge(t.Context(), testPrompt)
	if err != nil {
		t.Fatalf("Judge: %v", err)
	}
	wantAnswer(t, a, lexicon.LabelBullish, 0.6)
	if u != (Usage{30, 9}) {
		t.Errorf("usage %+v", u)
	}

	fake.Push(upstreamtest.Raw(200, "application/x-ndjson",
		`{"message":{"content":"{"},"done":false}`+"\n"+`{"error":"llama runner process has terminated"}`+"\n"))
	_, _, err = p.Judge(t.Context(), testPrompt)
	wantError(t, err, upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, "runner process")
}
