package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/upstream"
)

// Limits of answer validation and repair.
const (
	// maxAnswerText bounds the model text parseAnswer looks at. A real
	// answer is a few hundred bytes; the cap keeps the search for a JSON
	// object in prose linear in practice even for a runaway model.
	maxAnswerText = 64 << 10
	// maxObjectTries bounds how many '{' positions are tried as the start
	// of the answer object.
	maxObjectTries = 16
	// maxRationale is the rationale's length cap in runes: the rationale is
	// shown to traders and stored in the cache, not read as an essay.
	maxRationale = 500
	// scoreSlack is how far past ±1 a score may be and still be clamped:
	// 1.3 with a bullish label is a sloppy 1, while 7 is a different scale
	// whose meaning we would only be guessing.
	scoreSlack = 0.5
	// neutralSlack is how far past the neutral band (lexicon.NeutralBand)
	// the score of a neutral answer may be and still be clamped into it.
	neutralSlack = 0.15
	// defaultConfidence stands in for a missing confidence: the model gave
	// no view of its certainty, so it is taken as neither sure nor unsure.
	defaultConfidence = 0.5
	// maxAnswerTokens caps the model's output in every wire format. The
	// answer is a small object with a one-sentence rationale (~150 tokens);
	// the cap stops a broken model from generating until its context ends.
	maxAnswerTokens = 400
	// answerToolName names the answer schema where a wire format needs a
	// name (OpenAI's json_schema.name, Anthropic's forced tool).
	answerToolName = "record_judgement"
)

// answerSchema is the JSON Schema of the answer object, given to each
// upstream so that constrained decoding produces it (Ollama's format,
// OpenAI's response_format, Gemini's responseSchema after conversion,
// Anthropic's tool input_schema). It is a function, not a variable, so that
// no caller can change the schema another client sends: every call builds a
// fresh value.
//
// All four fields are required and no others are allowed because OpenAI's
// strict mode demands exactly that. The ranges are in the schema for the
// servers that enforce them; parseAnswer checks them anyway.
// The schema as each format sends it, encoded once: building and encoding
// the map on every call was a tenth of the model path's CPU in a profile.
var (
	answerSchemaJSON = mustJSON(answerSchema())
	geminiSchemaJSON = mustJSON(geminiSchema(answerSchema()))
)

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("router: encoding the answer schema: " + err.Error())
	}
	return b
}

func answerSchema() map[string]any {
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"label": map[string]any{
				"type": "string",
				"enum": []any{"bullish", "neutral", "bearish"},
			},
			"score": map[string]any{
				"type":        "number",
				"minimum":     -1,
				"maximum":     1,
				"description": "from -1 (strongly bearish) to 1 (strongly bullish); its sign agrees with the label",
			},
			"confidence": map[string]any{
				"type":        "number",
				"minimum":     0,
				"maximum":     1,
				"description": "from 0 to 1",
			},
			"rationale": map[string]any{
				"type":        "string",
				"description": "one short sentence",
			},
		},
		"required":             []any{"label", "score", "confidence", "rationale"},
		"additionalProperties": false,
	}
}

// invalidAnswer is the failure of a model text that holds no valid
// judgement. It is retryable: the same model may answer well next time, and
// the router counts it against the tier.
func invalidAnswer(format string, args ...any) *upstream.Error {
	return &upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true, Message: fmt.Sprintf(format, args...)}
}

// parseAnswer validates a model's text against the answer schema and
// repairs what has one reading only:
//
//   - JSON wrapped in prose or in ``` fences: the first balanced JSON object
//     in the text is the answer;
//   - key case and surrounding whitespace ("Label");
//   - label case and whitespace, and the synonyms positive (bullish) and
//     negative (bearish);
//   - numbers sent as strings ("0.8", "85%");
//   - a score up to 0.5 past ±1 whose sign agrees with the label: clamped;
//   - a neutral answer whose score is at most 0.15 outside the neutral band
//     (|score| <= 0.35): clamped into ±0.2, the band the prompt asks for.
//     Further out, label and score tell different stories and we cannot
//     know which one the model meant, so the answer fails;
//   - a missing score: the label's sign times the confidence (0 for
//     neutral);
//   - a confidence in percent (1 < c <= 100): divided by 100;
//   - a missing confidence: 0.5;
//   - the rationale: trimmed and cut to 500 runes; a missing or non-string
//     rationale is empty.
//
// Everything else fails with *upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable:
// true}: no object, no label or an unknown one, a score whose sign
// contradicts the label (bullish with -0.6), a score or confidence far out
// of range or not a finite number. A zero score is taken as agreeing with
// any label.
func parseAnswer(text string) (Answer, error) {
	if len(text) > maxAnswerText {
		text = text[:maxAnswerText]
	}
	obj, ok := firstObject(text)
	if !ok {
		return Answer{}, invalidAnswer("no JSON object in model text %s", upstream.Snippet(text))
	}
	fields := make(map[string]json.RawMessage, len(obj))
	for k, v := range obj {
		nk := strings.ToLower(strings.TrimSpace(k))
		if prev, dup := fields[nk]; dup && !bytes.Equal(prev, v) {
			return Answer{}, invalidAnswer("answer has conflicting %q fields", nk)
		}
		fields[nk] = v
	}

	label, err := parseLabel(fields["label"])
	if err != nil {
		return Answer{}, err
	}

	conf, present, err := parseNumber(fields["confidence"], true)
	switch {
	case err != nil:
		return Answer{}, invalidAnswer("confidence: %v", err)
	case !present:
		conf = defaultConfidence
	case conf < 0 || conf > 100:
		return Answer{}, invalidAnswer("confidence %g out of range [0,1]", conf)
	case conf > 1:
		conf /= 100
	}

	score, present, err := parseNumber(fields["score"], false)
	if err != nil {
		return Answer{}, invalidAnswer("score: %v", err)
	}
	if !present {
		score = labelSign(label) * conf
	}
	if score, err = fitScore(label, score); err != nil {
		return Answer{}, err
	}

	return Answer{
		Label:      label,
		Score:      score,
		Confidence: conf,
		Rationale:  parseRationale(fields["rationale"]),
	}, nil
}

// firstObject returns the first JSON object in text: the whole text when it
// is one, else the first balanced {...} span that decodes as an object.
func firstObject(text string) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	start := 0
	for range maxObjectTries {
		i := strings.IndexByte(text[start:], '{')
		if i < 0 {
			return nil, false
		}
		i += start
		end, ok := balancedEnd(text, i)
		if ok {
			obj = nil
			if json.Unmarshal([]byte(text[i:end]), &obj) == nil && obj != nil {
				return obj, true
			}
		}
		start = i + 1
	}
	return nil, false
}

// balancedEnd returns the index just past the '}' that closes the '{' at
// text[open], skipping braces inside JSON strings.
func balancedEnd(text string, open int) (int, bool) {
	depth, inString, escaped := 0, false, false
	for i := open; i < len(text); i++ {
		c := text[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// parseLabel reads the label, accepting case, whitespace and the synonyms
// positive and negative.
func parseLabel(raw json.RawMessage) (lexicon.Label, error) {
	if raw == nil {
		return 0, invalidAnswer("answer has no label")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, invalidAnswer("label is not a string: %s", upstream.Snippet(string(raw)))
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bullish", "positive":
		return lexicon.LabelBullish, nil
	case "bearish", "negative":
		return lexicon.LabelBearish, nil
	case "neutral":
		return lexicon.LabelNeutral, nil
	}
	return 0, invalidAnswer("unknown label %s", upstream.Snippet(s))
}

// parseNumber reads a JSON number, or a string holding one ("0.8", and with
// allowPercent also "85%", which is returned as 85 for the caller's percent
// rule). present is false for a missing field or null.
func parseNumber(raw json.RawMessage, allowPercent bool) (v float64, present bool, err error) {
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err == nil {
		return v, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, false, fmt.Errorf("not a number: %s", upstream.Snippet(string(raw)))
	}
	s = strings.TrimSpace(s)
	if allowPercent {
		s = strings.TrimSpace(strings.TrimSuffix(s, "%"))
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("not a finite number: %s", upstream.Snippet(s))
	}
	return v, true, nil
}

// labelSign is +1 for bullish, -1 for bearish and 0 for neutral.
func labelSign(l lexicon.Label) float64 {
	switch l {
	case lexicon.LabelBullish:
		return 1
	case lexicon.LabelBearish:
		return -1
	}
	return 0
}

// fitScore checks the score against the label and clamps the near misses
// described at parseAnswer.
func fitScore(label lexicon.Label, score float64) (float64, error) {
	if math.Abs(score) > 1+scoreSlack {
		return 0, invalidAnswer("score %g out of range [-1,1]", score)
	}
	if label == lexicon.LabelNeutral {
		band := lexicon.NeutralBand
		if math.Abs(score) > band+neutralSlack {
			return 0, invalidAnswer("score %g contradicts label neutral (|score| <= %g)", score, band)
		}
		return max(-band, min(band, score)), nil
	}
	if score*labelSign(label) < 0 {
		return 0, invalidAnswer("score %g contradicts label %s", score, label)
	}
	return max(-1, min(1, score)), nil
}

// parseRationale trims the rationale and caps it at maxRationale runes.
func parseRationale(raw json.RawMessage) string {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if utf8.RuneCountInString(s) > maxRationale {
		s = strings.TrimSpace(string([]rune(s)[:maxRationale]))
	}
	return s
}
