package usage

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestRecordLine(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 3, 7, 123456789, time.FixedZone("EST", -5*3600))
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{
			name: "success leaves error_type out and writes UTC",
			rec: Record{Time: at, RequestID: "r-1", Tier: "gemini", Model: "gemini-2.5-flash", Outcome: OutcomeOK,
				TokensIn: 412, TokensOut: 38, CostUSD: 0.0000412, Latency: 812500 * time.Microsecond},
			want: `{"time":"2026-12-01T14:03:07.123456789Z","request_id":"r-1","tier":"gemini","model":"gemini-2.5-flash","outcome":"ok","retry":0,"tokens_in":412,"tokens_out":38,"cost_usd":0.0000412,"latency_ms":812.5}`,
		},
		{
			name: "failure carries its error type and retry",
			rec: Record{Time: at, RequestID: "r-2", Tier: "anthropic", Model: "claude", Outcome: OutcomeError,
				ErrorType: "http_529", Retry: 2, Latency: 3 * time.Second},
			want: `{"time":"2026-12-01T14:03:07.123456789Z","request_id":"r-2","tier":"anthropic","model":"claude","outcome":"error","error_type":"http_529","retry":2,"tokens_in":0,"tokens_out":0,"cost_usd":0,"latency_ms":3000}`,
		},
		{
			name: "strings are escaped",
			rec:  Record{Time: at, RequestID: "a\"b\\c\nd\te\x01\u2028", Tier: "local", Model: "mistral:7b <q4>", Outcome: OutcomeInvalidAnswer, ErrorType: "invalid_answer"},
			want: `{"time":"2026-12-01T14:03:07.123456789Z","request_id":"a\"b\\c\nd\te\u0001\u2028","tier":"local","model":"mistral:7b <q4>","outcome":"invalid_answer","error_type":"invalid_answer","retry":0,"tokens_in":0,"tokens_out":0,"cost_usd":0,"latency_ms":0}`,
		},
		{
			name: "a cost that is not a number is written as 0",
			rec:  Record{Time: at, Tier: "gemini", Outcome: OutcomeOK, CostUSD: nan()},
			want: `{"time":"2026-12-01T14:03:07.123456789Z","request_id":"","tier":"gemini","model":"","outcome":"ok","retry":0,"tokens_in":0,"tokens_out":0,"cost_usd":0,"latency_ms":0}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The file gets appendJSON's bytes; json.Marshal would add
			// HTML escaping on top.
			got := tc.rec.appendJSON(nil)
			if string(got) != tc.want {
				t.Fatalf("line\n got %s\nwant %s", got, tc.want)
			}
			var back Record
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("decoding the line: %v", err)
			}
			want := tc.rec
			want.Time = want.Time.UTC()
			if math.IsNaN(want.CostUSD) {
				want.CostUSD = 0
			}
			if back != want {
				t.Fatalf("round trip\n got %+v\nwant %+v", back, want)
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestRecordDecodeErrors(t *testing.T) {
	tests := []struct{ name, line string }{
		{"not JSON", `hello`},
		{"wrong type", `{"time":"2026-12-01T00:00:00Z","retry":"two"}`},
		{"bad time", `{"time":"yesterday"}`},
		{"latency out of range", `{"latency_ms":1e300}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Record
			if err := json.Unmarshal([]byte(tc.line), &r); err == nil {
				t.Fatalf("decoded %+v, want an error", r)
			}
		})
	}
}

// FuzzRecordStrings checks the hand-written string encoder against
// encoding/json byte for byte, and that every line decodes back.
func FuzzRecordStrings(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x1f\x7f", "bad utf8 \xff\xfe", "\u2028\u2029", "é中🙂", "<&>", "\b\f\n\r\t"} {
		f.Add(s, int64(1), 0.5, int64(1500))
	}
	f.Fuzz(func(t *testing.T, s string, tokens int64, cost float64, latUS int64) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("appendString(%q) = %s, encoding/json says %s", s, got, want.Bytes())
		}
		latUS %= 1e11 // within float64's exact range once in nanoseconds
		rec := Record{Time: time.Unix(0, latUS).UTC(), RequestID: s, Tier: s, Model: s, Outcome: s, ErrorType: s,
			TokensIn: tokens, TokensOut: -tokens, CostUSD: cost, Latency: time.Duration(latUS) * time.Microsecond}
		line := rec.appendJSON(nil)
		if !json.Valid(line) {
			t.Fatalf("invalid JSON line %s", line)
		}
		var back Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("decoding %s: %v", line, err)
		}
		if back.TokensIn != tokens || back.Latency != rec.Latency || !back.Time.Equal(rec.Time) {
			t.Fatalf("round trip of %s gave %+v", line, back)
		}
	})
}
