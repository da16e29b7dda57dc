package usage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// line is a valid usage line for a record at t with cost usd.
func line(t time.Time, tier string, usd float64) string {
	return string(Record{Time: t, RequestID: "r", Tier: tier, Model: "m", Outcome: OutcomeOK, CostUSD: usd}.appendJSON(nil)) + "\n"
}

var day = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestRead(t *testing.T) {
	good := line(day, "gemini", 0.25)
	tests := []struct {
		name          string
		in            string
		wantRecords   int
		wantMalformed int
		wantTorn      bool
	}{
		{"empty", "", 0, 0, false},
		{"good lines", good + good + good, 3, 0, false},
		{"last line without newline still parses", good + strings.TrimSuffix(good, "\n"), 2, 0, false},
		{"torn last line", good + good + good[:40], 2, 0, true},
		{"malformed line in the middle", good + "{not json}\n" + good, 2, 1, false},
		{"a torn fragment followed by a good line", good[:30] + "\n" + good, 1, 1, false},
		{"blank lines are not counted", good + "\n  \n" + good, 2, 0, false},
		{"CRLF line ends", strings.ReplaceAll(good+good, "\n", "\r\n"), 2, 0, false},
		{"overlong line", good + "{\"x\":\"" + strings.Repeat("a", maxLine+10) + "\"}\n" + good, 2, 1, false},
		{"overlong last line", good + strings.Repeat("a", maxLine*2), 1, 1, false},
		{"wrong field types", good + `{"time":"2026-12-01T00:00:00Z","cost_usd":"free"}` + "\n", 1, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Record
			st, err := Read(strings.NewReader(tc.in), func(r Record) error {
				got = append(got, r)
				return nil
			})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := ReadStats{Records: tc.wantRecords, Malformed: tc.wantMalformed, Torn: tc.wantTorn}
			if st != want || len(got) != tc.wantRecords {
				t.Fatalf("stats %+v with %d records, want %+v", st, len(got), want)
			}
			for _, r := range got {
				if r.Tier != "gemini" || r.CostUSD != 0.25 || !r.Time.Equal(day) {
					t.Fatalf("record %+v", r)
				}
			}
		})
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	st, err := Read(strings.NewReader(line(day, "gemini", 1)+line(day, "gemini", 1)), func(Record) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 || st.Records != 1 {
		t.Fatalf("err %v after %d calls, stats %+v", err, n, st)
	}
}

func TestReadFileSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	monthStart := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	body := line(monthStart.Add(-time.Nanosecond), "gemini", 100) + // last month
		line(monthStart, "gemini", 1) +
		`{"request_id":"old layout, no leading time","time":"2026-11-15T00:00:00Z","cost_usd":50}` + "\n" +
		line(monthStart.Add(36*time.Hour), "anthropic", 2) +
		line(monthStart.Add(48*time.Hour), "gemini", 4)[:50]
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var sum float64
	st, err := ReadFile(path, monthStart, func(r Record) error {
		sum += r.CostUSD
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum != 3 || st != (ReadStats{Records: 2, Torn: true}) {
		t.Fatalf("sum %v, stats %+v; want 3 from 2 records and a torn line", sum, st)
	}

	st, err = ReadFile(filepath.Join(t.TempDir(), "missing.jsonl"), time.Time{}, func(Record) error { return nil })
	if err != nil || st != (ReadStats{}) {
		t.Fatalf("missing file: %+v, %v; want nothing and no error", st, err)
	}
}

// FuzzRead feeds arbitrary bytes to Read: it must never fail or panic, and
// never count more than there are lines.
func FuzzRead(f *testing.F) {
	good := line(day, "gemini", 0.25)
	for _, s := range []string{"", good, good + good[:20], "{}\n{]\n", "\n\n\n", `{"time":"2026-12-01T00:00:00Z"`, `{"latency_ms":1e309}` + "\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := Read(strings.NewReader(string(in)), func(Record) error { return nil })
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		lines := strings.Count(string(in), "\n") + 1
		if st.Records+st.Malformed > lines {
			t.Fatalf("%+v from %d lines", st, lines)
		}
	})
}
