package usage_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/catalystbot/sentiment/usage"
)

func Example() {
	dir, _ := os.MkdirTemp("", "usage")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "usage.jsonl")

	l, err := usage.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	// From the router's observer, once per upstream call:
	l.Write(usage.Record{
		Time: time.Date(2026, 12, 1, 14, 3, 7, 0, time.UTC), RequestID: "r-1",
		Tier: "gemini", Model: "gemini-2.5-flash", Outcome: usage.OutcomeOK,
		TokensIn: 412, TokensOut: 38, CostUSD: 0.0000412, Latency: 812500 * time.Microsecond,
	})
	// At shutdown: what is queued is written out.
	if err := l.Close(); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", l.Stats().Written)

	b, _ := os.ReadFile(path)
	fmt.Print(string(b))
	// Output:
	// 1
	// {"time":"2026-12-01T14:03:07Z","request_id":"r-1","tier":"gemini","model":"gemini-2.5-flash","outcome":"ok","retry":0,"tokens_in":412,"tokens_out":38,"cost_usd":0.0000412,"latency_ms":812.5}
}
