package router

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/upstream"
)

func TestParseAnswer(t *testing.T) {
	const ok = `{"label":"bullish","score":0.8,"confidence":0.9,"rationale":"Raised guidance."}`
	long := strings.Repeat("é", 700)
	tests := []struct {
		name string
		in   string
		want Answer
		fail string // substring of the error message; "" when it must succeed
	}{
		{name: "valid", in: ok, want: Answer{lexicon.LabelBullish, 0.8, 0.9, "Raised guidance."}},
		{name: "fenced", in: "```json\n" + ok + "\n```", want: Answer{lexicon.LabelBullish, 0.8, 0.9, "Raised guidance."}},
		{name: "prose", in: "Sure! Here it is: " + ok + " Hope this helps {really}.", want: Answer{lexicon.LabelBullish, 0.8, 0.9, "Raised guidance."}},
		{name: "braces in strings", in: `{"label":"bearish","score":-0.5,"confidence":0.6,"rationale":"Costs {rose} \"sharply}\""}`,
			want: Answer{lexicon.LabelBearish, -0.5, 0.6, `Costs {rose} "sharply}"`}},
		{name: "first brace not JSON", in: `Answer {below}: {"label":"neutral","score":0,"confidence":0.7,"rationale":"x"}`,
			want: Answer{lexicon.LabelNeutral, 0, 0.7, "x"}},
		{name: "label case and space", in: `{"label":"  BULLISH\n","score":0.4,"confidence":0.5,"rationale":""}`, want: Answer{lexicon.LabelBullish, 0.4, 0.5, ""}},
		{name: "key case", in: `{"Label":"Bearish","Score":-0.4,"Confidence":0.5}`, want: Answer{lexicon.LabelBearish, -0.4, 0.5, ""}},
		{name: "positive", in: `{"label":"positive","score":0.6,"confidence":0.7}`, want: Answer{lexicon.LabelBullish, 0.6, 0.7, ""}},
		{name: "negative", in: `{"label":"Negative","score":-0.6,"confidence":0.7}`, want: Answer{lexicon.LabelBearish, -0.6, 0.7, ""}},
		{name: "score slightly over, same sign", in: `{"label":"bullish","score":1.3,"confidence":0.9}`, want: Answer{lexicon.LabelBullish, 1, 0.9, ""}},
		{name: "score slightly under, same sign", in: `{"label":"bearish","score":-1.2,"confidence":0.9}`, want: Answer{lexicon.LabelBearish, -1, 0.9, ""}},
		{name: "score over, other sign", in: `{"label":"bearish","score":1.3,"confidence":0.9}`, fail: "contradicts"},
		{name: "score far out", in: `{"label":"bullish","score":7,"confidence":0.9}`, fail: "out of range"},
		{name: "sign contradicts label", in: `{"label":"bullish","score":-0.6,"confidence":0.9}`, fail: "contradicts label bullish"},
		{name: "zero score with bullish", in: `{"label":"bullish","score":0,"confidence":0.9}`, want: Answer{lexicon.LabelBullish, 0, 0.9, ""}},
		{name: "neutral slightly out", in: `{"label":"neutral","score":-0.3,"confidence":0.6}`, want: Answer{lexicon.LabelNeutral, -0.2, 0.6, ""}},
		{name: "neutral far out", in: `{"label":"neutral","score":0.6,"confidence":0.6}`, fail: "contradicts label neutral"},
		{name: "missing score bullish", in: `{"label":"bullish","confidence":0.8}`, want: Answer{lexicon.LabelBullish, 0.8, 0.8, ""}},
		{name: "missing score bearish", in: `{"label":"bearish","confidence":0.8}`, want: Answer{lexicon.LabelBearish, -0.8, 0.8, ""}},
		{name: "missing score neutral", in: `{"label":"neutral","confidence":0.8}`, want: Answer{lexicon.LabelNeutral, 0, 0.8, ""}},
		{name: "null score", in: `{"label":"bearish","score":null}`, want: Answer{lexicon.LabelBearish, -0.5, 0.5, ""}},
		{name: "confidence percent", in: `{"label":"bullish","score":0.5,"confidence":85}`, want: Answer{lexicon.LabelBullish, 0.5, 0.85, ""}},
		{name: "confidence percent string", in: `{"label":"bullish","score":"0.5","confidence":"85%"}`, want: Answer{lexicon.LabelBullish, 0.5, 0.85, ""}},
		{name: "missing confidence", in: `{"label":"bullish","score":0.5}`, want: Answer{lexicon.LabelBullish, 0.5, 0.5, ""}},
		{name: "confidence over 100", in: `{"label":"bullish","score":0.5,"confidence":150}`, fail: "confidence"},
		{name: "negative confidence", in: `{"label":"bullish","score":0.5,"confidence":-0.1}`, fail: "confidence"},
		{name: "NaN string", in: `{"label":"bullish","score":"NaN","confidence":0.5}`, fail: "finite"},
		{name: "Inf string", in: `{"label":"bullish","score":0.5,"confidence":"+Inf"}`, fail: "finite"},
		{name: "number overflow", in: `{"label":"bullish","score":1e400}`, fail: "score"},
		{name: "score not a number", in: `{"label":"bullish","score":[1]}`, fail: "score"},
		{name: "rationale trimmed", in: `{"label":"neutral","score":0,"confidence":0.5,"rationale":"  Board change.\n "}`, want: Answer{lexicon.LabelNeutral, 0, 0.5, "Board change."}},
		{name: "rationale capped", in: `{"label":"neutral","score":0,"confidence":0.5,"rationale":"` + long + `"}`, want: Answer{lexicon.LabelNeutral, 0, 0.5, long[:2*maxRationale]}},
		{name: "rationale not a string", in: `{"label":"neutral","score":0,"confidence":0.5,"rationale":["a"]}`, want: Answer{lexicon.LabelNeutral, 0, 0.5, ""}},
		{name: "unknown label", in: `{"label":"mixed","score":0,"confidence":0.5}`, fail: "unknown label"},
		{name: "label not a string", in: `{"label":1,"score":0,"confidence":0.5}`, fail: "label is not a string"},
		{name: "no label", in: `{"score":0.5,"confidence":0.5}`, fail: "no label"},
		{name: "conflicting keys", in: `{"label":"bullish","Label":"bearish","score":0}`, fail: "conflicting"},
		{name: "no object", in: "The news is bullish.", fail: "no JSON object"},
		{name: "empty", in: "", fail: "no JSON object"},
		{name: "unbalanced", in: `{"label":"bullish"`, fail: "no JSON object"},
		{name: "array", in: `[{"label":"bullish"}]`, want: Answer{lexicon.LabelBullish, 0.5, 0.5, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAnswer(tt.in)
			if tt.fail != "" {
				var e *upstream.Error
				if !errors.As(err, &e) || e.Kind != upstream.KindInvalidAnswer || !e.Retryable {
					t.Fatalf("parseAnswer(%q) = %+v, %v; want a retryable invalid_answer", tt.in, got, err)
				}
				if !strings.Contains(err.Error(), tt.fail) {
					t.Errorf("error %q does not mention %q", err, tt.fail)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAnswer(%q): %v", tt.in, err)
			}
			if got.Label != tt.want.Label || math.Abs(got.Score-tt.want.Score) > 1e-9 ||
				math.Abs(got.Confidence-tt.want.Confidence) > 1e-9 || got.Rationale != tt.want.Rationale {
				t.Errorf("parseAnswer(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseAnswer checks that no model text panics the parser and that
// whatever it accepts keeps the Answer's invariants.
func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{
		`{"label":"bullish","score":0.8,"confidence":0.9,"rationale":"ok"}`,
		"```json\n{\"label\":\"neutral\"}\n```",
		`{"label":"bearish","score":"-1.4","confidence":"99%"}`,
		`x {"a":{"b":"}"}} {"label":"positive"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		a, err := parseAnswer(text)
		if err != nil {
			var e *upstream.Error
			if !errors.As(err, &e) || e.Kind != upstream.KindInvalidAnswer || !e.Retryable {
				t.Fatalf("error %v is not a retryable invalid_answer", err)
			}
			return
		}
		switch a.Label {
		case lexicon.LabelBullish:
			if a.Score < 0 {
				t.Errorf("bullish with score %v", a.Score)
			}
		case lexicon.LabelBearish:
			if a.Score > 0 {
				t.Errorf("bearish with score %v", a.Score)
			}
		case lexicon.LabelNeutral:
			if math.Abs(a.Score) > lexicon.NeutralBand {
				t.Errorf("neutral with score %v", a.Score)
			}
		default:
			t.Errorf("label %v", a.Label)
		}
		if !(a.Score >= -1 && a.Score <= 1) {
			t.Errorf("score %v out of [-1,1]", a.Score)
		}
		if !(a.Confidence >= 0 && a.Confidence <= 1) {
			t.Errorf("confidence %v out of [0,1]", a.Confidence)
		}
		if utf8.RuneCountInString(a.Rationale) > maxRationale || !utf8.ValidString(a.Rationale) {
			t.Errorf("rationale %q too long or not UTF-8", a.Rationale)
		}
	})
}
