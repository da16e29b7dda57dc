package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// OllamaConfig is a local Ollama server spoken to in its native API.
type OllamaConfig struct {
	// BaseURL is the server root, e.g. http://localhost:11434.
	BaseURL string
	Model   string
	// KeepAlive is how long Ollama keeps the model loaded after a call
	// ("30m"; a negative duration pins it). Empty leaves the server's
	// default. The GPU manager's preloads must send the same NumCtx or
	// Ollama reloads the model.
	KeepAlive string
	// NumCtx is the context window; 0 leaves the server's default. A
	// runner option: a value different from the loaded instance's makes
	// Ollama reload the model, so keep it fixed.
	NumCtx int
	Seed   int
}

// Ollama judges with a model on an Ollama server through POST /api/chat.
type Ollama struct {
	cfg OllamaConfig
	hc  *http.Client
	url string
}

// NewOllama returns the client; hc should come from NewHTTPClient.
func NewOllama(cfg OllamaConfig, hc *http.Client) *Ollama {
	return &Ollama{cfg: cfg, hc: hc, url: strings.TrimRight(cfg.BaseURL, "/") + "/api/chat"}
}

const ollamaOp = "ollama chat"

type ollamaMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type ollamaOptions struct {
	Temperature float64 `json:"temperature"`
	Seed        int     `json:"seed"`
	NumCtx      int     `json:"num_ctx,omitempty"`
	NumPredict  int     `json:"num_predict,omitempty"`
}

type ollamaRequest struct {
	Model     string          `json:"model"`
	Messages  []ollamaMessage `json:"messages"`
	Stream    bool            `json:"stream"`
	Format    any             `json:"format"`
	KeepAlive string          `json:"keep_alive,omitempty"`
	Options   ollamaOptions   `json:"options"`
}

// ollamaResponse is one object of a reply: the whole reply with
// stream:false, or one NDJSON line of a streamed one.
type ollamaResponse struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int64  `json:"prompt_eval_count"`
	EvalCount       int64  `json:"eval_count"`
	Error           string `json:"error"`
}

// Judge implements Provider. The answer is constrained by the schema in
// format and parsed a second time from message.content.
func (o *Ollama) Judge(ctx context.Context, p Prompt) (Answer, Usage, error) {
	body, err := postJSON(ctx, o.hc, httpCall{
		url: o.url,
		body: ollamaRequest{
			Model: o.cfg.Model,
			Messages: []ollamaMessage{
				{Role: "system", Content: p.System},
				{Role: "user", Content: p.User},
			},
			Stream:    false,
			Format:    answerSchema(),
			KeepAlive: o.cfg.KeepAlive,
			Options: ollamaOptions{
				Temperature: 0,
				Seed:        o.cfg.Seed,
				NumCtx:      o.cfg.NumCtx,
				NumPredict:  maxAnswerTokens,
			},
		},
		errorBody: ollamaErrorBody,
	})
	if err != nil {
		return Answer{}, Usage{}, wrapOp(ollamaOp, err)
	}
	text, usage, err := readOllama(body)
	if err != nil {
		return Answer{}, usage, wrapOp(ollamaOp, err)
	}
	a, err := parseAnswer(text)
	return a, usage, wrapOp(ollamaOp, err)
}

// readOllama reads a reply that is one object (stream:false) or, from a
// server or proxy that streamed anyway, NDJSON whose contents are joined.
// An {"error": ...} object with status 200 is how Ollama reports a failure
// after it has started answering; it is a KindBadResponse carrying
// Ollama's message (e.g. "llama runner process has terminated"), retryable
// like the 500 it stands for.
func readOllama(body []byte) (string, Usage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var text strings.Builder
	var usage Usage
	n := 0
	for {
		var r ollamaResponse
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", usage, &Error{Kind: KindBadResponse, Retryable: true,
				Message: "decoding response " + snippet(string(body)), Err: err}
		}
		n++
		if r.Error != "" {
			return "", usage, badResponse("%s", clip(r.Error))
		}
		text.WriteString(r.Message.Content)
		usage.TokensIn += r.PromptEvalCount
		usage.TokensOut += r.EvalCount
	}
	if n == 0 {
		return "", usage, badResponse("empty response body")
	}
	return text.String(), usage, nil
}

// ollamaErrorBody reads {"error": "..."}. Status decides retrying: 500
// (runner crashed, often a GPU fault) and 503 (queue full) are retryable
// by the shared rule, 400 and 404 are not.
func ollamaErrorBody(e *Error, body []byte) {
	var b struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || b.Error == nil {
		return
	}
	// Ollama sends a string; its /v1 layer and proxies in front of it may
	// send an OpenAI-style object.
	var s string
	if json.Unmarshal(b.Error, &s) == nil {
		e.Message = s
		return
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b.Error, &o) == nil {
		e.Message = o.Message
	}
}
