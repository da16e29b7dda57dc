package upstreamtest

import "github.com/catalystbot/sentiment/internal/llmapi"

// Usage the fake reports when a behaviour names none.
const (
	TokensIn  = 25
	TokensOut = 12
)

// Model texts for behaviours.
const (
	BullishJSON = `{"label":"bullish","score":0.8,"confidence":0.9,"rationale":"Raised full-year guidance."}`
	BearishJSON = `{"label":"bearish","score":-0.7,"confidence":0.85,"rationale":"Going-concern doubt."}`
	NeutralJSON = `{"label":"neutral","score":0.0,"confidence":0.7,"rationale":"Routine board appointment."}`
)

// Prose wraps a JSON answer the way chatty models do: a sentence, a
// ```json fence, a closing remark.
func Prose(jsonText string) string { return llmapi.Prose(jsonText) }

// success is the format's 200 answer to c carrying the model text, with
// usage; with thinking, the format's reasoning content comes first.
func success(c *Call, text string, in, out int, thinking bool) llmapi.Response {
	return llmapi.Success(c.Format, c.Model, c.Request, llmapi.Answer{Text: text, TokensIn: in, TokensOut: out, Thinking: thinking})
}
