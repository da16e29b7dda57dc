package usage

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Outcomes a Record carries: what the call gave back.
const (
	OutcomeOK            = "ok"
	OutcomeError         = "error"
	OutcomeInvalidAnswer = "invalid_answer"
)

// Record is one upstream model call, as one line of the usage log:
//
//	{"time":"2026-12-01T14:03:07.123456789Z","request_id":"r-1","tier":"gemini",
//	 "model":"gemini-2.5-flash","outcome":"ok","retry":0,"tokens_in":412,
//	 "tokens_out":38,"cost_usd":0.0000412,"latency_ms":812.5}
//
// (one line in the file). It deliberately has no field for the prompt, the
// answer or any credential.
type Record struct {
	// Time is when the call ended; written in UTC. Log.Write stamps a zero
	// Time with the log's clock.
	Time time.Time
	// RequestID ties the call to the request that made it.
	RequestID string
	// Tier is who was called: "local", "gemini", "anthropic". The cost
	// totals use it as the provider.
	Tier  string
	Model string
	// Outcome is OutcomeOK, OutcomeError or OutcomeInvalidAnswer.
	Outcome string
	// ErrorType is the failure's short name ("http_503", "timeout");
	// empty on success, and then left out of the line.
	ErrorType string
	// Retry is 0 for a tier's first call for an item, 1 for its first
	// retry, and so on.
	Retry     int
	TokensIn  int64
	TokensOut int64
	// CostUSD is what the call cost, by the configured prices.
	CostUSD float64
	// Latency is written as float milliseconds (latency_ms).
	Latency time.Duration
}

// MarshalJSON encodes r as one usage-log line, without the newline.
func (r Record) MarshalJSON() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, 256)), nil
}

// appendJSON appends r's line to b. It is written by hand because the
// writer goroutine encodes every call the service makes: encoding/json
// would cost it several times as much and allocate per record.
func (r Record) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendString(b, r.RequestID)
	b = append(b, `,"tier":`...)
	b = appendString(b, r.Tier)
	b = append(b, `,"model":`...)
	b = appendString(b, r.Model)
	b = append(b, `,"outcome":`...)
	b = appendString(b, r.Outcome)
	if r.ErrorType != "" {
		b = append(b, `,"error_type":`...)
		b = appendString(b, r.ErrorType)
	}
	b = append(b, `,"retry":`...)
	b = strconv.AppendInt(b, int64(r.Retry), 10)
	b = append(b, `,"tokens_in":`...)
	b = strconv.AppendInt(b, r.TokensIn, 10)
	b = append(b, `,"tokens_out":`...)
	b = strconv.AppendInt(b, r.TokensOut, 10)
	b = append(b, `,"cost_usd":`...)
	b = appendFloat(b, r.CostUSD)
	b = append(b, `,"latency_ms":`...)
	b = appendFloat(b, float64(r.Latency)/float64(time.Millisecond))
	return append(b, '}')
}

// appendFloat writes f as a JSON number; JSON has no NaN or infinity, so
// those are written as 0 rather than making the line unreadable.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does:
// control characters, quote and backslash escaped, invalid UTF-8 replaced
// by U+FFFD, and U+2028/U+2029 escaped for JavaScript readers. The usual
// HTML escaping of <, > and & is left out: the log is not HTML.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// wire is a line's layout for decoding. The time is parsed by hand:
// time.Time's own decoder costs more than the rest of the line.
type wire struct {
	Time      string  `json:"time"`
	RequestID string  `json:"request_id"`
	Tier      string  `json:"tier"`
	Model     string  `json:"model"`
	Outcome   string  `json:"outcome"`
	ErrorType string  `json:"error_type"`
	Retry     int     `json:"retry"`
	TokensIn  int64   `json:"tokens_in"`
	TokensOut int64   `json:"tokens_out"`
	CostUSD   float64 `json:"cost_usd"`
	LatencyMS float64 `json:"latency_ms"`
}

// UnmarshalJSON decodes one usage-log line. Fields it does not know are
// ignored, so that lines written by a later version still read.
func (r *Record) UnmarshalJSON(data []byte) error {
	rec, err := decode(data)
	if err != nil {
		return err
	}
	*r = rec
	return nil
}

// decode parses one line; Read calls it directly, so that a line is
// scanned once rather than once more for the UnmarshalJSON method.
func decode(data []byte) (Record, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return Record{}, fmt.Errorf("usage: decoding a record: %w", err)
	}
	var at time.Time
	if w.Time != "" {
		var err error
		if at, err = time.Parse(time.RFC3339Nano, w.Time); err != nil {
			return Record{}, fmt.Errorf("usage: decoding a record: time: %w", err)
		}
	}
	lat := w.LatencyMS * float64(time.Millisecond)
	if !(math.Abs(lat) < 9e18) { // time.Duration's range, NaN excluded
		return Record{}, fmt.Errorf("usage: decoding a record: latency_ms %g out of range", w.LatencyMS)
	}
	return Record{
		Time:      at,
		RequestID: w.RequestID,
		Tier:      w.Tier,
		Model:     w.Model,
		Outcome:   w.Outcome,
		ErrorType: w.ErrorType,
		Retry:     w.Retry,
		TokensIn:  w.TokensIn,
		TokensOut: w.TokensOut,
		CostUSD:   w.CostUSD,
		Latency:   time.Duration(math.Round(lat)),
	}, nil
}
