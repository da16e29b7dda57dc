package router

import (
	"context"

	"github.com/catalystbot/sentiment/lexicon"
)

// Provider is one upstream speaking one wire format (Ollama, an
// OpenAI-compatible server, Gemini, Anthropic). It makes exactly one HTTP
// call per Judge: retries, breakers and deadlines are the router's.
type Provider interface {
	// Judge asks the model for a judgement. ctx carries the attempt's
	// deadline. A failure is returned as *upstream.Error.
	Judge(ctx context.Context, p Prompt) (Answer, Usage, error)
}

// Prompt is what a provider sends: the instructions and the news item,
// rendered from the versioned template.
type Prompt struct {
	System string
	User   string
	// Version names the template (e.g. "v1"), reported in provenance.
	Version string
}

// Answer is a model's judgement after validation and repair.
type Answer struct {
	Label      lexicon.Label
	Score      float64 // in [-1, 1], negative is bearish
	Confidence float64 // in [0, 1]
	Rationale  string
}

// Usage is what one call cost in tokens.
type Usage struct {
	TokensIn  int64
	TokensOut int64
}
