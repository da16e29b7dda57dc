// Package upstream is what every call to a model server has in common,
// whatever its wire format: the HTTP client tuned for one upstream, one JSON
// request with its failures classified into *Error (kind, status, whether
// to retry, the wait the server asked for), and the Signal a call gives
// about the upstream's health.
//
// The wire formats themselves live beside the code that speaks them: the
// router's providers and the ollama package. The router reads an *Error
// once, into a Signal, which the GPU queue and the GPU manager consume:
// nothing downstream matches error text.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Transport settings shared by the upstream clients.
const (
	// MaxResponseBody caps what is read of any upstream response. An answer
	// is a few KiB; a bigger body is a broken or hostile server, and reading
	// it whole would let one tie up memory.
	MaxResponseBody = 1 << 20
	// MaxErrorMessage caps the upstream's error text kept in Error.Message.
	MaxErrorMessage = 300
	dialTimeout     = 5 * time.Second
	tlsTimeout      = 5 * time.Second
	idleConnTimeout = 90 * time.Second
)

// NewHTTPClient returns the client for one upstream. Each upstream gets its
// own so that its connection pool is sized for it and one slow provider
// cannot hold the connections of another.
//
// Connections are kept alive and up to maxConnsPerHost are kept idle, so
// that a burst of calls does not pay a TCP and TLS handshake each.
// maxConnsPerHost also caps the connections open at once (0: no cap); the
// router shapes concurrency itself, the cap only backs it up. Dial and TLS
// handshake have their own short timeouts because a server that cannot even
// be reached should fail fast, while the call as a whole has no
// Client.Timeout: the request's ctx carries the attempt's deadline.
func NewHTTPClient(maxConnsPerHost int) *http.Client {
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	idle := maxConnsPerHost
	if idle <= 0 {
		idle = 16
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          max(100, idle),
			MaxIdleConnsPerHost:   idle,
			MaxConnsPerHost:       max(0, maxConnsPerHost),
			IdleConnTimeout:       idleConnTimeout,
			TLSHandshakeTimeout:   tlsTimeout,
			ExpectContinueTimeout: time.Second,
		},
	}
}

// Call is one JSON request to an upstream.
type Call struct {
	// Method is the HTTP method; empty is POST.
	Method string
	URL    string
	Header http.Header
	// Body is encoded as JSON; nil sends no body.
	Body any
	// Secrets are scrubbed from every error message, in case an upstream
	// or a proxy echoes a key back.
	Secrets []string
	// ErrorBody reads the format's error body into e: Message, and any
	// change of Retryable or RetryAfter the body justifies. It is called
	// for non-2xx responses after the status and header rules have set
	// e's defaults; body may be truncated or not JSON at all.
	ErrorBody func(e *Error, body []byte)
	// Now is the clock for an HTTP-date Retry-After; nil is time.Now.
	Now func() time.Time
}

// Do sends r and returns the 2xx response body, read through the size
// limit. Every failure is an *Error:
//
//   - the ctx's deadline passed (sending, waiting or reading): KindTimeout,
//     retryable; the ctx was canceled: KindCanceled, not retryable;
//   - any other transport failure (refused, reset, EOF, DNS, TLS):
//     KindConnection, retryable;
//   - a non-2xx status: KindHTTP, see httpError;
//   - a body over the limit: KindBadResponse, retryable.
func Do(ctx context.Context, hc *http.Client, r Call) ([]byte, error) {
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	var payload io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			// Our own request types always marshal; this is a programming error.
			return nil, &Error{Kind: KindBadResponse, Message: "encoding request", Err: err}
		}
		payload = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, payload)
	if err != nil {
		return nil, &Error{Kind: KindConnection, Message: "building request", Err: stripURL(err)}
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")

	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, err, r.Secrets)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	tooBig := len(body) > MaxResponseBody
	if tooBig {
		body = body[:MaxResponseBody]
	}
	// Scrub the whole body before any of it is cut into a message: a key
	// cut in two by a snippet would no longer match, and half a key leaks.
	for _, k := range r.Secrets {
		if k != "" {
			body = bytes.ReplaceAll(body, []byte(k), []byte("[redacted]"))
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A cut-off error body still says enough to classify the status.
		return nil, httpError(resp, body, r)
	}
	if err != nil {
		return nil, transportError(ctx, err, r.Secrets)
	}
	if tooBig {
		return nil, &Error{Kind: KindBadResponse, Retryable: true,
			Message: fmt.Sprintf("response body over %d bytes", MaxResponseBody)}
	}
	return body, nil
}

// transportError classifies a failure to send or to read. The ctx decides
// first: once it is done, whatever the transport reports is a consequence.
func transportError(ctx context.Context, err error, secrets []string) *Error {
	err = stripURL(err)
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return &Error{Kind: KindTimeout, Retryable: true, Err: ctxErr}
		}
		return &Error{Kind: KindCanceled, Err: ctxErr}
	}
	return &Error{Kind: KindConnection, Retryable: true, Err: scrubErr(err, secrets)}
}

// stripURL drops the *url.Error layer, whose message holds the full
// request URL: a key in a query string (which we never send, but a
// configured base URL might carry one) must not reach an error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// httpError builds the *Error of a non-2xx response. Retryable follows the
// official SDKs' policy: 408, 409, 429 and every 5xx (529, Anthropic's
// overload, included) are worth another try; other 4xx are the request's
// fault and would fail again. An x-should-retry header overrides the
// status rule; then the format's errorBody may refine it from the body (an
// exhausted billing quota is not retryable whatever the status says).
func httpError(resp *http.Response, body []byte, r Call) *Error {
	e := &Error{Kind: KindHTTP, Status: resp.StatusCode}
	switch s := resp.StatusCode; {
	case s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusTooManyRequests, s >= 500:
		e.Retryable = true
	}
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("x-should-retry"))) {
	case "true":
		e.Retryable = true
	case "false":
		e.Retryable = false
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	e.RetryAfter = retryAfter(resp.Header, now())
	if r.ErrorBody != nil {
		r.ErrorBody(e, body)
	}
	if e.Message == "" {
		e.Message = plainMessage(body)
	}
	e.Message = Scrub(Clip(e.Message), r.Secrets)
	return e
}

// retryAfter reads the server's requested wait: retry-after-ms first
// (milliseconds, sent by OpenAI and Anthropic), then Retry-After in
// seconds (possibly fractional) or as an HTTP-date. Missing, malformed or
// past values are 0.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("retry-after-ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < math.MaxInt64/1e6 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < math.MaxInt64/1e9 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// plainMessage is the message of an error body that no format parser
// understood (a proxy's HTML page, a plain-text 502): its first non-empty
// line.
func plainMessage(body []byte) string {
	for line := range strings.SplitSeq(string(body), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// Clip trims an error message and cuts it to MaxErrorMessage bytes on a
// rune boundary.
func Clip(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= MaxErrorMessage {
		return s
	}
	cut := MaxErrorMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Scrub replaces each secret in s.
func Scrub(s string, secrets []string) string {
	for _, k := range secrets {
		if k != "" {
			s = strings.ReplaceAll(s, k, "[redacted]")
		}
	}
	return s
}

// scrubErr returns err unchanged unless its message holds a secret, in
// which case the message is replaced by a scrubbed copy (losing the chain,
// which is the price of never leaking the key).
func scrubErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := Scrub(msg, secrets); clean != msg {
		return errors.New(clean)
	}
	return err
}

// BadResponse is the failure of a 2xx body that is not the wire format.
func BadResponse(format string, args ...any) *Error {
	return &Error{Kind: KindBadResponse, Retryable: true, Message: fmt.Sprintf(format, args...)}
}

// Decode unmarshals a 2xx body into v, or reports it as KindBadResponse.
func Decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Kind: KindBadResponse, Retryable: true,
			Message: "decoding response " + Snippet(string(body)), Err: err}
	}
	return nil
}

// FlexString decodes a JSON string or number as a string: the error
// "code" is a string at OpenAI and an int at vLLM and llama.cpp.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = FlexString(n.String())
	}
	return nil
}

// WrapOp prefixes a client's failure with the call it was making, keeping
// the *Error reachable through errors.As, and scrubs the secrets from it
// wherever it was built (an answer snippet, a decode error).
func WrapOp(op string, err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		e.Message = Scrub(e.Message, secrets)
		e.Err = scrubErr(e.Err, secrets)
	}
	return fmt.Errorf("%s: %w", op, scrubErr(err, secrets))
}

// Snippet quotes the start of a text for an error message: enough to
// recognise it in a log, never the whole of a runaway answer.
func Snippet(s string) string {
	const n = 60
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
