package router

import (
	"context"

	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/upstream"
)

// Ollama is the local tier on an Ollama server: a chat call constrained by
// the answer schema (Ollama's format), through the one ollama.Client that
// the GPU manager also loads and unloads the model with.
type Ollama struct {
	c *ollama.Client
}

// NewOllama returns the provider over c.
func NewOllama(c *ollama.Client) *Ollama { return &Ollama{c: c} }

// Judge implements Provider. The answer is constrained by the schema in
// format and parsed a second time from the message's content.
func (o *Ollama) Judge(ctx context.Context, p Prompt) (Answer, Usage, error) {
	text, u, err := o.c.Chat(ctx, ollama.ChatRequest{
		System:     p.System,
		User:       p.User,
		Format:     answerSchemaJSON,
		NumPredict: maxAnswerTokens,
	})
	usage := Usage{TokensIn: u.TokensIn, TokensOut: u.TokensOut}
	if err != nil {
		return Answer{}, usage, err
	}
	a, err := parseAnswer(text)
	return a, usage, upstream.WrapOp("ollama chat", err)
}
