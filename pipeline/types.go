package pipeline

import (
	"fmt"
	"time"

	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/router"
)

// Item is one news item to judge.
type Item struct {
	// ID ties the answer to the item; required on a batch stream.
	ID     string
	Ticker string
	// Title is the headline; required.
	Title       string
	Summary     string
	Source      string
	URL         string
	PublishedAt time.Time
}

// Text is what the lexicon and the cache read: the title, then the
// summary.
func (it Item) Text() string {
	if it.Summary == "" {
		return it.Title
	}
	return it.Title + ". " + it.Summary
}

// Options shape how one item is judged. The zero value is the defaults.
type Options struct {
	Priority router.Priority
	// SkipCache asks for a fresh judgement.
	SkipCache bool
	// MinPrescore overrides the prefilter threshold when set (0 sends
	// every item to a model).
	MinPrescore *float64
	// AllowedTiers limits who may answer; empty allows every tier.
	// router.TierLexicon alone allows no model tier.
	AllowedTiers []router.Tier
	// RequireLLM makes the call fail (an *UnavailableError) rather than
	// take a degraded lexicon answer, and exempts the item from the
	// prefilter.
	RequireLLM bool
	// Alert, when set, asks for a progressive alert on a channel.
	Alert *Alert
}

// Alert is where and with what market context an alert is posted.
type Alert struct {
	Channel   string
	LastPrice float64
	ChangePct float64
}

// Request is one item with its options.
type Request struct {
	Item    Item
	Options Options
}

// Phase tells a preliminary answer (the lexicon's, at once) from the
// final one.
type Phase int

// Phases of an answer.
const (
	PhaseFinal Phase = iota
	PhasePreliminary
)

func (p Phase) String() string {
	switch p {
	case PhaseFinal:
		return "final"
	case PhasePreliminary:
		return "preliminary"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// CacheHit is what the cache did for an answer.
type CacheHit int

// Cache outcomes; the zero value is a cache not consulted (no cache,
// skip_cache, a prefiltered item).
const (
	CacheNotConsulted CacheHit = iota
	CacheMiss
	CacheExact
	CacheNear
)

// Answer is a judgement of one item.
type Answer struct {
	ID         string
	Label      lexicon.Label
	Score      float64
	Confidence float64
	Rationale  string
	// Prescore is the lexicon's reading, computed once per item.
	Prescore   lexicon.Prescore
	Phase      Phase
	Provenance Provenance
}

// Provenance says who answered and how.
type Provenance struct {
	Tier     router.Tier
	Model    string
	CacheHit CacheHit
	// CacheSimilarity and CacheSourceID say, on a cache hit, how alike
	// the item is to the one whose answer was reused (1 for an exact
	// hit), and that item's id.
	CacheSimilarity float64
	CacheSourceID   string
	// Attempts counts upstream calls, every tier together.
	Attempts int
	// Tiers is each tier considered, in order, with its outcome; a
	// lexicon answer ends with the lexicon's own entry.
	Tiers    []router.Attempt
	Degraded bool
	// Reason says why an answer is degraded.
	Reason string
	// Prefiltered is set when the lexicon answered because the item's
	// |prescore| was under the threshold: skipped, or shed under load.
	Prefiltered bool
	// Prefilter is what the prefilter decided.
	Prefilter     PrefilterDecision
	Latency       time.Duration
	TokensIn      int64
	TokensOut     int64
	CostUSD       float64
	PromptVersion string
}

// PrefilterDecision is what the prefilter did with an item.
type PrefilterDecision int

// Prefilter decisions; the zero value is none (a preliminary answer).
const (
	PrefilterNone PrefilterDecision = iota
	// PrefilterAbove: |prescore| at or above the threshold.
	PrefilterAbove
	// PrefilterSentOnBelow: below it, sent to the local model because
	// the GPU had room.
	PrefilterSentOnBelow
	// PrefilterShed: below it, and the GPU could not take it in time.
	PrefilterShed
	// PrefilterSkipped: below it, answered without asking (fixed mode,
	// or no local tier).
	PrefilterSkipped
	// PrefilterExempt: require_llm.
	PrefilterExempt
)

// Event is an answer as it becomes known, for whoever listens: the
// preliminary answer at prescore time, then the final one (or the error
// the call ended with).
type Event struct {
	Request *Request
	// Prefilter is what the prefilter decided for the item, known from
	// the preliminary event on: a batch stream lets an item sent on below
	// the threshold wait for the GPU without holding a place the stream
	// needs to read stronger ones.
	Prefilter PrefilterDecision
	// Answer is the preliminary or final answer; for a final event with
	// Err set it is the zero Answer.
	Answer Answer
	Err    error
}
