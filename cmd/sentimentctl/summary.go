package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// summary is a batch's outcome. Its JSON form is what --json writes as
// the last line on stderr; sent = answered + errors + unanswered.
type summary struct {
	// Items in the input; -1 when it was not counted first (stdin).
	Total int `json:"total"`
	// Items sent on the stream.
	Sent int `json:"sent"`
	// Items answered with a judgement.
	Answered int `json:"answered"`
	// Items the server rejected (an error entry each).
	Errors int `json:"errors"`
	// Items sent but never answered: the stream ended first.
	Unanswered  int            `json:"unanswered"`
	Labels      map[string]int `json:"labels"`
	Tiers       map[string]int `json:"tiers"`
	Degraded    int            `json:"degraded"`
	Prefiltered int            `json:"prefiltered"`
	CacheExact  int            `json:"cache_exact"`
	CacheNear   int            `json:"cache_near"`
	// Error entries by gRPC code name, e.g. "InvalidArgument".
	ErrorCodes     map[string]int `json:"error_codes"`
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	ItemsPerSecond float64        `json:"items_per_second"`
	// Why the stream ended early, when it did.
	StreamError string `json:"stream_error,omitempty"`
	// Why the batch moved to a new stream (another replica), once for
	// each time its server went away.
	Resumes []string `json:"resumes,omitempty"`
}

func newSummary(total int) *summary {
	return &summary{
		Total:      total,
		Labels:     map[string]int{"bullish": 0, "bearish": 0, "neutral": 0},
		Tiers:      map[string]int{},
		ErrorCodes: map[string]int{},
	}
}

// add counts one response and returns its kind for the reporter: the
// label, or "error".
func (s *summary) add(r *pb.ClassifyBatchResponse) string {
	if e := r.GetError(); e != nil {
		s.Errors++
		s.ErrorCodes[codes.Code(e.GetCode()).String()]++
		return "error"
	}
	res := r.GetResult()
	s.Answered++
	label := labelName(res.GetLabel())
	s.Labels[label]++
	pv := res.GetProvenance()
	s.Tiers[tierName(pv.GetTier())]++
	if pv.GetDegraded() {
		s.Degraded++
	}
	if pv.GetPrefiltered() {
		s.Prefiltered++
	}
	switch pv.GetCacheHit() {
	case pb.CacheHit_CACHE_HIT_EXACT:
		s.CacheExact++
	case pb.CacheHit_CACHE_HIT_NEAR:
		s.CacheNear++
	}
	return label
}

func (s *summary) finish(elapsed time.Duration) {
	s.ElapsedSeconds = elapsed.Seconds()
	if elapsed > 0 {
		s.ItemsPerSecond = float64(s.Answered+s.Errors) / elapsed.Seconds()
	}
}

// failed reports whether the batch ends with exit status 1.
func (s *summary) failed() bool {
	return s.Errors > 0 || s.Unanswered > 0 || s.StreamError != ""
}

// writeJSON writes the summary as one line of JSON.
func (s *summary) writeJSON(w io.Writer) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeText writes the summary for people:
//
//	1000 items in 1.2s (833.3 items/s): 998 answered, 2 errors, 0 unanswered
//	labels: bullish=400 bearish=300 neutral=298
//	tiers: lexicon=998
//	degraded 0, prefiltered 610, cache hits 0 (exact 0, near 0)
//	errors: InvalidArgument=2
func (s *summary) writeText(w io.Writer) {
	elapsed := time.Duration(s.ElapsedSeconds * float64(time.Second)).Round(time.Millisecond)
	fmt.Fprintf(w, "%d items in %s (%.1f items/s): %d answered, %d errors, %d unanswered\n",
		s.Sent, elapsed, s.ItemsPerSecond, s.Answered, s.Errors, s.Unanswered)
	if s.Total >= 0 && s.Sent < s.Total {
		fmt.Fprintf(w, "%d of the input's %d items were not sent\n", s.Total-s.Sent, s.Total)
	}
	fmt.Fprintf(w, "labels: bullish=%d bearish=%d neutral=%d%s\n", s.Labels["bullish"], s.Labels["bearish"], s.Labels["neutral"],
		counts(s.Labels, "bullish", "bearish", "neutral"))
	fmt.Fprintf(w, "tiers: %s\n", orDash(strings.TrimSpace(counts(s.Tiers))))
	fmt.Fprintf(w, "degraded %d, prefiltered %d, cache hits %d (exact %d, near %d)\n",
		s.Degraded, s.Prefiltered, s.CacheExact+s.CacheNear, s.CacheExact, s.CacheNear)
	if len(s.ErrorCodes) > 0 {
		fmt.Fprintf(w, "errors: %s\n", strings.TrimSpace(counts(s.ErrorCodes)))
	}
	for _, why := range s.Resumes {
		fmt.Fprintf(w, "resumed on another replica: %s\n", why)
	}
	if s.StreamError != "" {
		fmt.Fprintf(w, "the stream ended early: %s\n", s.StreamError)
	}
}

// counts writes " k=v" for each key of m but the skipped ones, in key
// order.
func counts(m map[string]int, skip ...string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(skip, k) {
			fmt.Fprintf(&b, " %s=%d", k, m[k])
		}
	}
	return b.String()
}
