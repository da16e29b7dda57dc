package upstream

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

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

// Error is an upstream failure with what a caller needs to decide.
type Error struct {
	Kind ErrorKind
	// Status is the HTTP status for KindHTTP (0 otherwise).
	Status int
	// Retryable says whether the same request may succeed later.
	Retryable bool
	// RetryAfter is the server's requested wait (Retry-After,
	// retry-after-ms, Gemini RetryInfo); 0 when none was given.
	RetryAfter time.Duration
	// Crash is set by the wire format that can tell, when the failure
	// says the model's runner process died (Ollama's "llama runner
	// process has terminated"): on a local GPU, a fault that needs the
	// model unloaded, not just a retry.
	Crash bool
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

// ConnectionRefused reports whether nothing listened where the upstream
// should be: the server is not running, as opposed to a connection that
// broke mid-call.
func (e *Error) ConnectionRefused() bool {
	return e.Kind == KindConnection && errors.Is(e.Err, syscall.ECONNREFUSED)
}

// AsError returns err as *Error, wrapping anything else as a connection
// failure so that no failure escapes classification.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindConnection, Retryable: true, Err: err}
}
