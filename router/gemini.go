package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/upstream"
)

// GeminiConfig is the Google Gemini API (v1beta).
type GeminiConfig struct {
	// BaseURL is the root, e.g. https://generativelanguage.googleapis.com.
	BaseURL string
	// Model is the model id ("gemini-2.5-flash"); a "models/" prefix is
	// accepted.
	Model  string
	APIKey secret.Secret
	Seed   int
}

// Gemini judges through POST /v1beta/models/{model}:generateContent.
type Gemini struct {
	cfg GeminiConfig
	hc  *http.Client
	url string
	now func() time.Time // for the daily-quota reset; time.Now
}

// geminiMaxOutputTokens is larger than maxAnswerTokens because thinking
// models (2.5 and later) spend their thinking out of the same budget: a
// small cap ends in finishReason MAX_TOKENS with no text at all.
const geminiMaxOutputTokens = 2048

// NewGemini returns the client; hc should come from NewHTTPClient. The key
// travels in the x-goog-api-key header, never in the URL, so that no URL
// in a log or an error can carry it.
func NewGemini(cfg GeminiConfig, hc *http.Client) *Gemini {
	model := strings.TrimPrefix(cfg.Model, "models/")
	u := strings.TrimRight(cfg.BaseURL, "/") + "/v1beta/models/" + url.PathEscape(model) + ":generateContent"
	return &Gemini{cfg: cfg, hc: hc, url: u, now: time.Now}
}

const geminiOp = "gemini generateContent"

type geminiPart struct {
	Text    string `json:"text,omitempty"`
	Thought bool   `json:"thought,omitempty"`
}

type geminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []geminiPart `json:"parts"`
}

type geminiRequest struct {
	Contents          []geminiContent        `json:"contents"`
	SystemInstruction geminiContent          `json:"systemInstruction"`
	GenerationConfig  geminiGenerationConfig `json:"generationConfig"`
}

type geminiGenerationConfig struct {
	Temperature      float64         `json:"temperature"`
	Seed             int             `json:"seed"`
	MaxOutputTokens  int             `json:"maxOutputTokens"`
	ResponseMimeType string          `json:"responseMimeType"`
	ResponseSchema   json.RawMessage `json:"responseSchema"`
}

type geminiResponse struct {
	Candidates []struct {
		Content      *geminiContent `json:"content"`
		FinishReason string         `json:"finishReason"`
	} `json:"candidates"`
	PromptFeedback *struct {
		BlockReason        string `json:"blockReason"`
		BlockReasonMessage string `json:"blockReasonMessage"`
	} `json:"promptFeedback"`
	UsageMetadata struct {
		PromptTokenCount     int64 `json:"promptTokenCount"`
		CandidatesTokenCount int64 `json:"candidatesTokenCount"`
		ThoughtsTokenCount   int64 `json:"thoughtsTokenCount"`
	} `json:"usageMetadata"`
}

// geminiRefused says whether a finish reason is a filter's stop: the same
// news would be stopped again, so it is not retryable.
func geminiRefused(finishReason string) bool {
	switch finishReason {
	case "SAFETY", "RECITATION", "LANGUAGE", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return true
	}
	return false
}

// Judge implements Provider. Usage counts thinking tokens as output: they
// are billed as output.
func (g *Gemini) Judge(ctx context.Context, p Prompt) (Answer, Usage, error) {
	key := g.cfg.APIKey.Reveal()
	var hdr http.Header
	if key != "" {
		hdr = http.Header{"X-Goog-Api-Key": {key}}
	}
	body, err := upstream.Do(ctx, g.hc, upstream.Call{
		URL:    g.url,
		Header: hdr,
		Body: geminiRequest{
			Contents:          []geminiContent{{Role: "user", Parts: []geminiPart{{Text: p.User}}}},
			SystemInstruction: geminiContent{Parts: []geminiPart{{Text: p.System}}},
			GenerationConfig: geminiGenerationConfig{
				Temperature:      0,
				Seed:             g.cfg.Seed,
				MaxOutputTokens:  geminiMaxOutputTokens,
				ResponseMimeType: "application/json",
				ResponseSchema:   geminiSchemaJSON,
			},
		},
		Secrets:   []string{key},
		ErrorBody: g.errorBody,
		Now:       g.now,
	})
	if err != nil {
		return Answer{}, Usage{}, upstream.WrapOp(geminiOp, err, key)
	}
	var r geminiResponse
	if err := upstream.Decode(body, &r); err != nil {
		return Answer{}, Usage{}, upstream.WrapOp(geminiOp, err, key)
	}
	m := r.UsageMetadata
	usage := Usage{TokensIn: m.PromptTokenCount, TokensOut: m.CandidatesTokenCount + m.ThoughtsTokenCount}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			msg := "prompt blocked: " + r.PromptFeedback.BlockReason
			if r.PromptFeedback.BlockReasonMessage != "" {
				msg += ": " + r.PromptFeedback.BlockReasonMessage
			}
			return Answer{}, usage, upstream.WrapOp(geminiOp, &upstream.Error{Kind: upstream.KindRefused, Message: upstream.Clip(msg)}, key)
		}
		return Answer{}, usage, upstream.WrapOp(geminiOp, upstream.BadResponse("response has no candidates"), key)
	}
	c := r.Candidates[0]
	if geminiRefused(c.FinishReason) {
		return Answer{}, usage, upstream.WrapOp(geminiOp, &upstream.Error{Kind: upstream.KindRefused, Message: "finishReason " + c.FinishReason}, key)
	}
	var text strings.Builder
	if c.Content != nil {
		for _, part := range c.Content.Parts {
			if !part.Thought {
				text.WriteString(part.Text)
			}
		}
	}
	if strings.TrimSpace(text.String()) == "" {
		return Answer{}, usage, upstream.WrapOp(geminiOp, invalidAnswer("no answer text (finishReason %s)", c.FinishReason), key)
	}
	a, err := parseAnswer(text.String())
	return a, usage, upstream.WrapOp(geminiOp, err, key)
}

// geminiSchema converts a JSON Schema into Google's OpenAPI-subset Schema:
// upper-case types, no additionalProperties, and propertyOrdering so the
// model writes the label before the score and the rationale last.
func geminiSchema(s map[string]any) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		switch k {
		case "additionalProperties":
		case "type":
			if t, ok := v.(string); ok {
				out[k] = strings.ToUpper(t)
			}
		case "properties":
			props, _ := v.(map[string]any)
			conv := make(map[string]any, len(props))
			for name, p := range props {
				if ps, ok := p.(map[string]any); ok {
					conv[name] = geminiSchema(ps)
				}
			}
			out[k] = conv
		default:
			out[k] = v
		}
	}
	if _, ok := s["properties"]; ok {
		out["propertyOrdering"] = []any{"label", "score", "confidence", "rationale"}
	}
	return out
}

// geminiErrorBody is {"error":{code,message,status,details}}.
type geminiErrorBody struct {
	Error struct {
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// errorBody reads a Gemini error. On 429 RESOURCE_EXHAUSTED the RetryInfo
// detail gives the wait; a QuotaFailure whose quotaId names a daily quota
// (…PerDay…) will not clear before midnight Pacific time, when Google
// resets daily quotas, so it is not retryable and RetryAfter says how long
// until then.
func (g *Gemini) errorBody(e *upstream.Error, body []byte) {
	var b geminiErrorBody
	if json.Unmarshal(body, &b) != nil {
		return
	}
	e.Message = b.Error.Message
	if b.Error.Status != "" {
		e.Message = b.Error.Status + ": " + b.Error.Message
	}
	daily := false
	for _, raw := range b.Error.Details {
		var d struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
			Violations []struct {
				QuotaID string `json:"quotaId"`
			} `json:"violations"`
		}
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		switch {
		case strings.HasSuffix(d.Type, "google.rpc.RetryInfo"):
			if dur, err := time.ParseDuration(d.RetryDelay); err == nil && dur > 0 {
				e.RetryAfter = dur
			}
		case strings.HasSuffix(d.Type, "google.rpc.QuotaFailure"):
			for _, v := range d.Violations {
				if strings.Contains(v.QuotaID, "PerDay") {
					daily = true
				}
			}
		}
	}
	if daily {
		e.Retryable = false
		e.RetryAfter = untilPacificMidnight(g.now())
	}
}

// untilPacificMidnight is the time from now to the next midnight in
// America/Los_Angeles. The US daylight-saving rule (since 2007) is computed
// here rather than loaded, so the answer does not depend on the host's
// zoneinfo and no library package has to embed time/tzdata: PDT (UTC-7)
// from 02:00 PST on the second Sunday of March to 02:00 PDT on the first
// Sunday of November, PST (UTC-8) otherwise.
func untilPacificMidnight(now time.Time) time.Duration {
	off := pacificOffset(now)
	wall := now.UTC().Add(off)
	y, m, d := wall.Date()
	next := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	at := next.Add(-off)
	// Midnight lies on the far side of a DST change only when the change
	// falls in between (it happens at 02:00): take the offset there.
	if off2 := pacificOffset(at); off2 != off {
		at = next.Add(-off2)
	}
	return at.Sub(now)
}

// pacificOffset is the UTC offset of US Pacific time at t.
func pacificOffset(t time.Time) time.Duration {
	t = t.UTC()
	y := t.Year()
	start := nthSunday(y, time.March, 2).Add(10 * time.Hour) // 02:00 PST
	end := nthSunday(y, time.November, 1).Add(9 * time.Hour) // 02:00 PDT
	if !t.Before(start) && t.Before(end) {
		return -7 * time.Hour
	}
	return -8 * time.Hour
}

// nthSunday is 00:00 UTC of the nth Sunday of the month.
func nthSunday(y int, m time.Month, n int) time.Time {
	first := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	d := (7 - int(first.Weekday())) % 7
	return first.AddDate(0, 0, d+7*(n-1))
}
