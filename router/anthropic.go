package router

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/upstream"
)

// AnthropicConfig is the Anthropic Messages API.
type AnthropicConfig struct {
	// BaseURL is the root, e.g. https://api.anthropic.com.
	BaseURL string
	Model   string
	APIKey  secret.Secret
	// MaxTokens caps the output; 0 means 400, plenty for the answer.
	MaxTokens int
}

// Anthropic judges through POST /v1/messages with a forced tool whose input
// schema is the answer schema: the tool's input is the answer.
type Anthropic struct {
	cfg AnthropicConfig
	hc  *http.Client
	url string
}

// claude5 matches the Claude 5-generation model ids (claude-haiku-5-5,
// claude-sonnet-5, claude-opus-5-5, ...), which answer 400 to a forced
// tool_choice or a non-default temperature.
var claude5 = regexp.MustCompile(`^claude-[a-z]+-5([-.]|$)`)

// CheckAnthropicModel refuses, at start, a model this client cannot drive:
// the Claude 5 generation rejects the forced tool use and temperature 0
// that every request sends, so each call would fail with a 400.
func CheckAnthropicModel(model string) error {
	if claude5.MatchString(model) {
		return claude5Error{}
	}
	return nil
}

// claude5Error says why a Claude 5 model is refused; its text is the
// second half of the start-up error line, so it starts with the model's
// name.
type claude5Error struct{}

func (claude5Error) Error() string {
	return "Claude 5-generation models reject the forced tool use and temperature 0 this service sends; use claude-haiku-4-5 or another 4.x model"
}

// NewAnthropic returns the client; hc should come from
// upstream.NewHTTPClient. Check the model with CheckAnthropicModel first.
func NewAnthropic(cfg AnthropicConfig, hc *http.Client) *Anthropic {
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = maxAnswerTokens
	}
	return &Anthropic{cfg: cfg, hc: hc, url: strings.TrimRight(cfg.BaseURL, "/") + "/v1/messages"}
}

const (
	anthropicOp      = "anthropic messages"
	anthropicVersion = "2023-06-01"
)

type anthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anthropicToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

type anthropicRequest struct {
	Model       string              `json:"model"`
	MaxTokens   int                 `json:"max_tokens"`
	System      string              `json:"system"`
	Messages    []chatMessage       `json:"messages"`
	Temperature float64             `json:"temperature"`
	Tools       []anthropicTool     `json:"tools"`
	ToolChoice  anthropicToolChoice `json:"tool_choice"`
}

type anthropicResponse struct {
	Content []struct {
		Type  string          `json:"type"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
		Text  string          `json:"text"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
}

// Judge implements Provider. The answer is the input of the tool_use block,
// chosen by type and name, never by position: models that think put a
// thinking block first. Without one (a model that ignored the forced tool)
// the text blocks are tried as a model text.
func (a *Anthropic) Judge(ctx context.Context, p Prompt) (Answer, Usage, error) {
	key := a.cfg.APIKey.Reveal()
	hdr := http.Header{"Anthropic-Version": {anthropicVersion}}
	if key != "" {
		hdr.Set("X-Api-Key", key)
	}
	body, err := upstream.Do(ctx, a.hc, upstream.Call{
		URL:    a.url,
		Header: hdr,
		Body: anthropicRequest{
			Model:       a.cfg.Model,
			MaxTokens:   a.cfg.MaxTokens,
			System:      p.System,
			Messages:    []chatMessage{{Role: "user", Content: p.User}},
			Temperature: 0,
			Tools: []anthropicTool{{
				Name:        answerToolName,
				Description: "Record the judgement of the news item.",
				InputSchema: answerSchemaJSON,
			}},
			ToolChoice: anthropicToolChoice{Type: "tool", Name: answerToolName},
		},
		Secrets:   []string{key},
		ErrorBody: anthropicErrorBody,
	})
	if err != nil {
		return Answer{}, Usage{}, upstream.WrapOp(anthropicOp, err, key)
	}
	var r anthropicResponse
	if err := upstream.Decode(body, &r); err != nil {
		return Answer{}, Usage{}, upstream.WrapOp(anthropicOp, err, key)
	}
	usage := Usage{TokensIn: r.Usage.InputTokens, TokensOut: r.Usage.OutputTokens}
	if r.StopReason == "refusal" {
		return Answer{}, usage, upstream.WrapOp(anthropicOp, &upstream.Error{Kind: upstream.KindRefused, Message: "stop_reason refusal"}, key)
	}
	var text strings.Builder
	for _, b := range r.Content {
		switch {
		case b.Type == "tool_use" && b.Name == answerToolName:
			ans, err := parseAnswer(string(b.Input))
			return ans, usage, upstream.WrapOp(anthropicOp, err, key)
		case b.Type == "text":
			text.WriteString(b.Text)
		}
	}
	if strings.TrimSpace(text.String()) == "" {
		return Answer{}, usage, upstream.WrapOp(anthropicOp, invalidAnswer("no tool_use block (stop_reason %s)", r.StopReason), key)
	}
	ans, err := parseAnswer(text.String())
	return ans, usage, upstream.WrapOp(anthropicOp, err, key)
}

// anthropicErrorBody reads {"type":"error","error":{type,message}}. The
// status decides retrying (429, 500, 529 overloaded: yes; 4xx: no) and the
// retry-after header the wait; the body adds the error type to the message.
func anthropicErrorBody(e *upstream.Error, body []byte) {
	var b struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || (b.Error.Type == "" && b.Error.Message == "") {
		return
	}
	e.Message = b.Error.Message
	if b.Error.Type != "" {
		e.Message = b.Error.Type + ": " + b.Error.Message
	}
}
