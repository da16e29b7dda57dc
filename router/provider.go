package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/catalystbot/sentiment/lexicon"
)

// Provider is one upstream speaking one wire format (Ollama, an
// OpenAI-compatible server, Gemini, Anthropic). It makes exactly one HTTP
// call per Judge: retries, breakers and deadlines are the router's.
type Provider interface {
	// Judge asks the model for a judgement. ctx carries the attempt's
	// deadline. A failure is returned as *Error.
	Judge(ctx context.Context, p Prompt) (Answer, Usage, error)
}

// Prompt is what a provider sends: the instructions and the news item,
// rendered from the versioned template.
type Prompt struct {
	System string
	User   string
	// Version names the template (e.g. "v1"), reported in provenance.
	Version string
}

// Answer is a model's judgement after validation and repair.
type Answer struct {
	Label      lexicon.Label
	Score      float64 // in [-1, 1], negative is bearish
	Confidence float64 // in [0, 1]
	Rationale  string
}

// Usage is what one call cost in tokens.
type Usage struct {
	TokensIn  int64
	TokensOut int64
}

// ErrorKind classifies upstream failures for retries, breakers and Stats.
type ErrorKind string

// Kinds of upstream failure.
const (
	KindHTTP          ErrorKind = "http"           // a non-2xx status; see Error.Status
	KindConnection    ErrorKind = "connection"     // refused, reset, DNS, TLS: the server is not there
	KindTimeout       ErrorKind = "timeout"        // the attempt's deadline passed
	KindCanceled      ErrorKind = "canceled"       // the caller went away
	KindInvalidAnswer ErrorKind = "invalid_answer" // 200, but no valid judgement in it
	KindRefused       ErrorKind = "refused"        // 200, but the model or a safety filter declined
	KindBadResponse   ErrorKind = "bad_response"   // 200 with a body that is not the wire format
)

// Error is an upstream failure with what the router needs to decide.
type Error struct {
	Kind ErrorKind
	// Status is the HTTP status for KindHTTP (0 otherwise).
	Status int
	// Retryable says whether the same request may succeed later.
	Retryable bool
	// RetryAfter is the server's requested wait (Retry-After,
	// retry-after-ms, Gemini RetryInfo); 0 when none was given.
	RetryAfter time.Duration
	// Message is the upstream's own error text, trimmed; never a secret.
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := string(e.Kind)
	if e.Status != 0 {
		s = fmt.Sprintf("http %d", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Type is the short name Stats counts errors by: "http_429", "timeout",
// "connection", "invalid_answer", ...
func (e *Error) Type() string {
	if e.Kind == KindHTTP {
		return fmt.Sprintf("http_%d", e.Status)
	}
	return string(e.Kind)
}

// asError returns err as *Error, wrapping anything else as a connection
// failure so that no failure escapes classification.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindConnection, Retryable: true, Err: err}
}
