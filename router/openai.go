package router

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/upstream"
)

// OpenAIConfig is a server speaking OpenAI's chat completions: OpenAI
// itself, Ollama's /v1, vLLM, the llama.cpp server, LM Studio.
// chatMessage is one message of a chat request, in the shape OpenAI's and
// Anthropic's formats share.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type OpenAIConfig struct {
	// BaseURL is the root without /v1, e.g. http://localhost:8000.
	BaseURL string
	Model   string
	// APIKey is sent as a bearer token when set; local servers mostly
	// need none.
	APIKey secret.Secret
	Seed   int
}

// OpenAI judges through POST /v1/chat/completions.
type OpenAI struct {
	cfg OpenAIConfig
	hc  *http.Client
	url string
}

// NewOpenAI returns the client; hc should come from NewHTTPClient. A
// BaseURL that already ends in /v1 is accepted.
func NewOpenAI(cfg OpenAIConfig, hc *http.Client) *OpenAI {
	base := strings.TrimSuffix(strings.TrimRight(cfg.BaseURL, "/"), "/v1")
	return &OpenAI{cfg: cfg, hc: hc, url: base + "/v1/chat/completions"}
}

const openaiOp = "openai chat completions"

type openaiRequest struct {
	Model          string               `json:"model"`
	Messages       []chatMessage        `json:"messages"`
	Temperature    float64              `json:"temperature"`
	Seed           int                  `json:"seed"`
	MaxTokens      int                  `json:"max_tokens"`
	Stream         bool                 `json:"stream"`
	ResponseFormat openaiResponseFormat `json:"response_format"`
}

type openaiResponseFormat struct {
	Type       string           `json:"type"`
	JSONSchema openaiJSONSchema `json:"json_schema"`
}

type openaiJSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

type openaiResponse struct {
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
}

// Judge implements Provider. max_tokens, not max_completion_tokens, because
// Ollama's /v1 knows only the older name.
func (o *OpenAI) Judge(ctx context.Context, p Prompt) (Answer, Usage, error) {
	key := o.cfg.APIKey.Reveal()
	var hdr http.Header
	if key != "" {
		hdr = http.Header{"Authorization": {"Bearer " + key}}
	}
	body, err := upstream.Do(ctx, o.hc, upstream.Call{
		URL:    o.url,
		Header: hdr,
		Body: openaiRequest{
			Model: o.cfg.Model,
			Messages: []chatMessage{
				{Role: "system", Content: p.System},
				{Role: "user", Content: p.User},
			},
			Temperature: 0,
			Seed:        o.cfg.Seed,
			MaxTokens:   maxAnswerTokens,
			ResponseFormat: openaiResponseFormat{
				Type: "json_schema",
				JSONSchema: openaiJSONSchema{
					Name:   answerToolName,
					Schema: answerSchemaJSON,
					Strict: true,
				},
			},
		},
		Secrets:   []string{key},
		ErrorBody: openaiErrorBody,
	})
	if err != nil {
		return Answer{}, Usage{}, upstream.WrapOp(openaiOp, err, key)
	}
	var r openaiResponse
	if err := upstream.Decode(body, &r); err != nil {
		return Answer{}, Usage{}, upstream.WrapOp(openaiOp, err, key)
	}
	usage := Usage{TokensIn: r.Usage.PromptTokens, TokensOut: r.Usage.CompletionTokens}
	if len(r.Choices) == 0 {
		return Answer{}, usage, upstream.WrapOp(openaiOp, upstream.BadResponse("response has no choices"), key)
	}
	c := r.Choices[0]
	if c.Message.Refusal != nil && *c.Message.Refusal != "" {
		return Answer{}, usage, upstream.WrapOp(openaiOp, &upstream.Error{Kind: upstream.KindRefused, Message: upstream.Clip(*c.Message.Refusal)}, key)
	}
	if c.FinishReason == "content_filter" {
		return Answer{}, usage, upstream.WrapOp(openaiOp, &upstream.Error{Kind: upstream.KindRefused, Message: "finish_reason content_filter"}, key)
	}
	if c.Message.Content == nil || strings.TrimSpace(*c.Message.Content) == "" {
		return Answer{}, usage, upstream.WrapOp(openaiOp, invalidAnswer("empty content (finish_reason %s)", c.FinishReason), key)
	}
	a, err := parseAnswer(*c.Message.Content)
	return a, usage, upstream.WrapOp(openaiOp, err, key)
}

// openaiError is the error object of every OpenAI-compatible server.
type openaiError struct {
	Message string              `json:"message"`
	Type    string              `json:"type"`
	Code    upstream.FlexString `json:"code"`
}

// openaiErrorBody reads the error shapes of section 2.3: nested
// {"error":{message,type,param,code}} with code a string (OpenAI, Ollama)
// or an int (vLLM, llama.cpp), vLLM's older flat {"object":"error",...},
// and a bare {"error":"..."}. An exhausted billing quota (429
// insufficient_quota) is not retryable: it will not clear by waiting.
func openaiErrorBody(e *upstream.Error, body []byte) {
	var nested struct {
		Error json.RawMessage `json:"error"`
	}
	var oe openaiError
	if json.Unmarshal(body, &nested) != nil {
		return
	}
	switch {
	case nested.Error == nil:
		if json.Unmarshal(body, &oe) != nil {
			return
		}
	case json.Unmarshal(nested.Error, &oe) == nil:
	default:
		var s string
		if json.Unmarshal(nested.Error, &s) == nil {
			e.Message = s
		}
		return
	}
	e.Message = oe.Message
	code := string(oe.Code)
	if code != "" && !isDigits(code) && !strings.Contains(oe.Message, code) {
		e.Message = code + ": " + oe.Message
	}
	if code == "insufficient_quota" || oe.Type == "insufficient_quota" {
		e.Retryable = false
	}
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
