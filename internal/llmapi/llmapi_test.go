package llmapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		method, path, body string
		ep                 Endpoint
		model              string
	}{
		{"POST", "/api/chat", `{"model":"mistral"}`, OllamaChat, "mistral"},
		{"POST", "/api/generate", `{"model":"llama3:8b"}`, OllamaGenerate, "llama3:8b"},
		{"POST", "/api/embed", `{"model":"nomic"}`, OllamaEmbed, "nomic"},
		{"GET", "/api/ps", ``, OllamaPS, ""},
		{"GET", "/api/tags", ``, OllamaTags, ""},
		{"GET", "/api/version", ``, OllamaVersion, ""},
		{"POST", "/v1/chat/completions", `{"model":"qwen3:8b"}`, OpenAIChat, "qwen3:8b"},
		{"GET", "/v1/models", ``, OpenAIModels, ""},
		{"POST", "/v1beta/models/gemini-2.5-flash:generateContent", `{"model":"ignored"}`, GeminiGenerate, "gemini-2.5-flash"},
		{"POST", "/v1/messages", `{"model":"claude-haiku-4-5"}`, AnthropicMessages, "claude-haiku-4-5"},
		{"GET", "/api/chat", ``, NoEndpoint, ""},
		{"POST", "/api/ps", ``, NoEndpoint, ""},
		{"POST", "/v1beta/models/x:streamGenerateContent", `{}`, NoEndpoint, ""},
		{"POST", "/nowhere", `{}`, NoEndpoint, ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := Request{Method: tc.method, Path: tc.path}
			_ = json.Unmarshal([]byte(tc.body), &r.Body)
			ep, model := Identify(r)
			if ep != tc.ep || model != tc.model {
				t.Errorf("Identify = %v %q, want %v %q", ep, model, tc.ep, tc.model)
			}
		})
	}
}

// TestPrompt reads the instructions and the user turn out of each
// format's request, in the shapes clients send them.
func TestPrompt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      Format
		path   string
		body   string
		system string
		user   string
	}{
		{"ollama chat", Ollama, "/api/chat", `{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"}]}`, "S", "U"},
		{"ollama generate", Ollama, "/api/generate", `{"system":"S","prompt":"U"}`, "S", "U"},
		{"openai parts", OpenAI, "/v1/chat/completions", `{"messages":[{"role":"system","content":"S"},{"role":"assistant","content":"A"},{"role":"user","content":[{"type":"text","text":"U1"},{"type":"text","text":"U2"}]}]}`, "S", "U1\nU2"},
		{"gemini", Gemini, "/v1beta/models/m:generateContent", `{"systemInstruction":{"parts":[{"text":"S"}]},"contents":[{"role":"user","parts":[{"text":"U"}]}]}`, "S", "U"},
		{"gemini snake case", Gemini, "/v1beta/models/m:generateContent", `{"system_instruction":{"parts":[{"text":"S"}]},"contents":[{"parts":[{"text":"U"}]}]}`, "S", "U"},
		{"anthropic blocks", Anthropic, "/v1/messages", `{"system":[{"type":"text","text":"S"}],"messages":[{"role":"user","content":[{"type":"text","text":"U"}]}]}`, "S", "U"},
		{"anthropic string", Anthropic, "/v1/messages", `{"system":"S","messages":[{"role":"user","content":"U"}]}`, "S", "U"},
		{"nothing", OpenAI, "/v1/chat/completions", `{}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Request{Path: tc.path}
			if err := json.Unmarshal([]byte(tc.body), &r.Body); err != nil {
				t.Fatal(err)
			}
			if s, u := Prompt(tc.f, r); s != tc.system || u != tc.user {
				t.Errorf("Prompt = %q, %q; want %q, %q", s, u, tc.system, tc.user)
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Duration
	}{
		{nil, DefaultKeepAlive},
		{"10m", 10 * time.Minute},
		{3600.0, time.Hour},
		{0.0, 0},
		{"0", 0},
		{"0s", 0},
		{-1.0, forever},
		{"-1m", forever},
		{"soon", DefaultKeepAlive},
	} {
		if got := KeepAlive(tc.in); got != tc.want {
			t.Errorf("KeepAlive(%#v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestRateLimited checks each format's 429 carries the wait where that
// provider's clients look for it.
func TestRateLimited(t *testing.T) {
	for _, tc := range []struct {
		f      Format
		header string
		value  string
		body   string
	}{
		{Ollama, "Retry-After", "3", `"error":"rate limit exceeded"`},
		{OpenAI, "Retry-After-Ms", "2500", `"code":"rate_limit_exceeded"`},
		{Gemini, "", "", `"retryDelay":"2.5s"`},
		{Anthropic, "Retry-After", "3", `"type":"rate_limit_error"`},
	} {
		t.Run(tc.f.String(), func(t *testing.T) {
			r := RateLimited(tc.f, 2500*time.Millisecond)
			if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), tc.body) {
				t.Errorf("%d %s, want 429 with %s", r.Status, r.Body, tc.body)
			}
			if tc.header != "" && r.Header.Get(tc.header) != tc.value {
				t.Errorf("%s: %q, want %q", tc.header, r.Header.Get(tc.header), tc.value)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	r := Success(OpenAI, "m", Request{}, Answer{Text: `{"label":"bullish"}`})
	cut := r.Truncated()
	if json.Valid(cut.Body) || len(cut.Body) != len(r.Body)/2 || cut.Status != 200 || !json.Valid(r.Body) {
		t.Errorf("truncated body %q of %q", cut.Body, r.Body)
	}
}
