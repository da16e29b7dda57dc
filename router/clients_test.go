package router

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/upstream"
)

// Tests of what the four clients share: the transport failures, the answer
// repair and the error classification, each run against the fake upstream
// of every format over real HTTP.

var testPrompt = Prompt{
	System:  "You are a financial news analyst.",
	User:    "Ticker: ACME\nHeadline: ACME raises full-year guidance",
	Version: "v1",
}

const testKey secret.Secret = "sk-test-KEY-0123456789"

var allFormats = []upstreamtest.Format{upstreamtest.Ollama, upstreamtest.OpenAI, upstreamtest.Gemini, upstreamtest.Anthropic}

// testHTTPClient is a client from NewHTTPClient whose idle connections are
// closed when the test ends, so goleak sees no connection goroutines.
func testHTTPClient(t *testing.T) *http.Client {
	hc := upstream.NewHTTPClient(4)
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// newProvider builds the client of format f for baseURL.
func newProvider(f upstreamtest.Format, baseURL string, hc *http.Client, key secret.Secret) Provider {
	switch f {
	case upstreamtest.Ollama:
		return NewOllama(ollama.New(ollama.Config{BaseURL: baseURL, Model: "mistral", KeepAlive: "30m", NumCtx: 4096, Seed: 42}, hc))
	case upstreamtest.OpenAI:
		return NewOpenAI(OpenAIConfig{BaseURL: baseURL, Model: "qwen3:8b", APIKey: key, Seed: 42}, hc)
	case upstreamtest.Gemini:
		return NewGemini(GeminiConfig{BaseURL: baseURL, Model: "gemini-2.5-flash", APIKey: key, Seed: 42}, hc)
	case upstreamtest.Anthropic:
		return NewAnthropic(AnthropicConfig{BaseURL: baseURL, Model: "claude-haiku-4-5", APIKey: key}, hc)
	}
	panic("unknown format")
}

// setup starts a fake of format f and the client pointed at it.
func setup(t *testing.T, f upstreamtest.Format) (*upstreamtest.Fake, Provider) {
	t.Helper()
	fake := upstreamtest.New(t, f)
	return fake, newProvider(f, fake.URL, testHTTPClient(t), testKey)
}

// wantError checks that err is an *upstream.Error like want (Kind, Status,
// Retryable, RetryAfter within a millisecond) whose text contains msg.
func wantError(t *testing.T, err error, want upstream.Error, msg string) {
	t.Helper()
	var e *upstream.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *upstream.Error", err, err)
	}
	if e.Kind != want.Kind || e.Status != want.Status || e.Retryable != want.Retryable {
		t.Errorf("error %q: kind %s status %d retryable %v; want kind %s status %d retryable %v",
			err, e.Kind, e.Status, e.Retryable, want.Kind, want.Status, want.Retryable)
	}
	if d := e.RetryAfter - want.RetryAfter; d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("error %q: RetryAfter %v, want %v", err, e.RetryAfter, want.RetryAfter)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
}

func wantAnswer(t *testing.T, got Answer, label lexicon.Label, score float64) {
	t.Helper()
	if got.Label != label || got.Score != score {
		t.Errorf("answer %+v, want label %s score %v", got, label, score)
	}
}

func TestClientsCommon(t *testing.T) {
	big := strings.Repeat("x", upstream.MaxResponseBody+10)
	tests := []struct {
		name    string
		b       upstreamtest.Behavior
		timeout time.Duration
		err     upstream.Error // zero Kind: success
		msg     string         // in the error text
	}{
		{name: "prose-wrapped answer is repaired", b: upstreamtest.Answer(upstreamtest.Prose(upstreamtest.BearishJSON))},
		{name: "reasoning before the answer is skipped", b: upstreamtest.AnswerThinking(upstreamtest.BullishJSON)},
		{name: "contradictory answer", b: upstreamtest.Answer(`{"label":"bullish","score":-0.6,"confidence":0.9}`),
			err: upstream.Error{Kind: upstream.KindInvalidAnswer, Retryable: true}, msg: "contradicts"},
		{name: "hang past the deadline", b: upstreamtest.Hang(), timeout: 100 * time.Millisecond,
			err: upstream.Error{Kind: upstream.KindTimeout, Retryable: true}, msg: "deadline exceeded"},
		{name: "slow body past the deadline", b: upstreamtest.SlowBody(upstreamtest.BullishJSON, 20*time.Millisecond), timeout: 150 * time.Millisecond,
			err: upstream.Error{Kind: upstream.KindTimeout, Retryable: true}, msg: "timeout"},
		{name: "connection reset", b: upstreamtest.Reset(),
			err: upstream.Error{Kind: upstream.KindConnection, Retryable: true}, msg: "connection"},
		{name: "malformed JSON", b: upstreamtest.Malformed(),
			err: upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, msg: "decoding response"},
		{name: "body over the limit", b: upstreamtest.Raw(200, "application/json", big),
			err: upstream.Error{Kind: upstream.KindBadResponse, Retryable: true}, msg: "over 1048576 bytes"},
		{name: "proxy HTML 502", b: upstreamtest.Raw(502, "text/html", "\n<html><head><title>502 Bad Gateway</title></head></html>\n"),
			err: upstream.Error{Kind: upstream.KindHTTP, Status: 502, Retryable: true}, msg: "502 Bad Gateway"},
		{name: "x-should-retry false overrides 503", b: upstreamtest.Error(503, "busy", "x-should-retry", "false"),
			err: upstream.Error{Kind: upstream.KindHTTP, Status: 503}, msg: "busy"},
		{name: "x-should-retry true overrides 400", b: upstreamtest.Error(400, "odd", "x-should-retry", "true"),
			err: upstream.Error{Kind: upstream.KindHTTP, Status: 400, Retryable: true}, msg: "odd"},
		{name: "408 is retryable", b: upstreamtest.Error(408, "timeout"), err: upstream.Error{Kind: upstream.KindHTTP, Status: 408, Retryable: true}},
		{name: "409 is retryable", b: upstreamtest.Error(409, "conflict"), err: upstream.Error{Kind: upstream.KindHTTP, Status: 409, Retryable: true}},
		{name: "422 is not", b: upstreamtest.Error(422, "bad"), err: upstream.Error{Kind: upstream.KindHTTP, Status: 422}},
		{name: "Retry-After seconds", b: upstreamtest.Error(429, "slow down", "Retry-After", "7"),
			err: upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 7 * time.Second}, msg: "slow down"},
		{name: "Retry-After float", b: upstreamtest.Error(503, "busy", "Retry-After", "1.5"),
			err: upstream.Error{Kind: upstream.KindHTTP, Status: 503, Retryable: true, RetryAfter: 1500 * time.Millisecond}},
		{name: "retry-after-ms first", b: upstreamtest.Error(429, "x", "retry-after-ms", "250", "Retry-After", "9"),
			err: upstream.Error{Kind: upstream.KindHTTP, Status: 429, Retryable: true, RetryAfter: 250 * time.Millisecond}},
	}
	for _, f := range allFormats {
		for _, tt := range tests {
			t.Run(f.String()+"/"+tt.name, func(t *testing.T) {
				fake, p := setup(t, f)
				fake.Push(tt.b)
				ctx := t.Context()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				a, u, err := p.Judge(ctx, testPrompt)
				if tt.err.Kind == "" {
					if err != nil {
						t.Fatalf("Judge: %v", err)
					}
					if a.Label == lexicon.LabelNeutral || a.Confidence == 0 || u.TokensIn != upstreamtest.TokensIn {
						t.Errorf("Judge = %+v, %+v", a, u)
					}
					return
				}
				wantError(t, err, tt.err, tt.msg)
				if !strings.HasPrefix(err.Error(), f.String()) {
					t.Errorf("error %q does not name the call", err)
				}
				if fake.Calls() != 1 {
					t.Errorf("fake got %d calls, want 1 (no hidden retry)", fake.Calls())
				}
			})
		}
	}
}

func TestClientsCanceled(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			fake, p := setup(t, f)
			fake.Push(upstreamtest.Hang())
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				if err := fake.AwaitInFlight(t.Context(), 1); err == nil {
					cancel()
				}
			}()
			_, _, err := p.Judge(ctx, testPrompt)
			wantError(t, err, upstream.Error{Kind: upstream.KindCanceled}, "canceled")
		})
	}
}

// TestClientsServerDownAndBack takes the fake down (connections refused)
// and brings it back on the same URL.
func TestClientsServerDownAndBack(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			fake, p := setup(t, f)
			fake.Close()
			_, _, err := p.Judge(t.Context(), testPrompt)
			wantError(t, err, upstream.Error{Kind: upstream.KindConnection, Retryable: true}, "refused")
			if strings.Contains(err.Error(), fake.URL) {
				t.Errorf("error %q holds the URL", err)
			}
			fake.Restart()
			if _, _, err := p.Judge(t.Context(), testPrompt); err != nil {
				t.Fatalf("Judge after restart: %v", err)
			}
		})
	}
}

// TestClientsFakeClock runs the clients against the in-memory fake inside a
// synctest bubble: a hang and a slow body end exactly at the deadline on
// the fake clock, which is what "promptly" means without a wall clock.
func TestClientsFakeClock(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := upstreamtest.NewMemory(t, f)
				p := newProvider(f, fake.URL, fake.Client(), testKey)
				for _, b := range []upstreamtest.Behavior{upstreamtest.Hang(), upstreamtest.SlowBody(upstreamtest.BullishJSON, time.Second)} {
					fake.Push(b)
					start := time.Now()
					ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
					_, _, err := p.Judge(ctx, testPrompt)
					cancel()
					wantError(t, err, upstream.Error{Kind: upstream.KindTimeout, Retryable: true}, "deadline")
					if d := time.Since(start); d != 5*time.Second {
						t.Errorf("gave up after %v, want 5s", d)
					}
				}
				fake.Push(upstreamtest.Delay(3*time.Second, upstreamtest.Answer(upstreamtest.BullishJSON)), upstreamtest.Reset())
				if _, _, err := p.Judge(t.Context(), testPrompt); err != nil {
					t.Fatalf("delayed answer: %v", err)
				}
				_, _, err := p.Judge(t.Context(), testPrompt)
				wantError(t, err, upstream.Error{Kind: upstream.KindConnection, Retryable: true}, "reset")
				fake.Close()
				_, _, err = p.Judge(t.Context(), testPrompt)
				wantError(t, err, upstream.Error{Kind: upstream.KindConnection, Retryable: true}, "refused")
			})
		})
	}
}

// TestAPIKeyNeverInErrors makes upstreams echo the key back in every place
// an error message is built from, and checks that no error text holds it.
func TestAPIKeyNeverInErrors(t *testing.T) {
	key := string(testKey.Reveal())
	behaviours := map[string]upstreamtest.Behavior{
		"error body":     upstreamtest.Error(500, "internal error for key "+key),
		"plain body":     upstreamtest.Raw(502, "text/plain", "bad gateway "+key),
		"malformed 200":  upstreamtest.Raw(200, "application/json", `{"oops `+key),
		"answer snippet": upstreamtest.Answer("I will not use " + key),
		// Keys that straddle where messages are cut (60 and 300 bytes):
		// a key cut in two before scrubbing leaks its first half.
		"straddling snippet": upstreamtest.Answer(strings.Repeat("a", 50) + key),
		"straddling 200":     upstreamtest.Raw(200, "application/json", `{"oops `+strings.Repeat("b", 45)+key),
		"straddling error":   upstreamtest.Raw(502, "text/plain", strings.Repeat("c", 290)+key),
	}
	for _, f := range []upstreamtest.Format{upstreamtest.OpenAI, upstreamtest.Gemini, upstreamtest.Anthropic} {
		t.Run(f.String()+"/bad key", func(t *testing.T) {
			fake, p := setup(t, f)
			fake.RequireKey("the-right-key")
			_, _, err := p.Judge(t.Context(), testPrompt)
			status := http.StatusUnauthorized
			if f == upstreamtest.Gemini {
				status = http.StatusBadRequest // Google reports a bad key as INVALID_ARGUMENT
			}
			wantError(t, err, upstream.Error{Kind: upstream.KindHTTP, Status: status}, "[redacted]")
			checkNoKey(t, err, key)
		})
		for name, b := range behaviours {
			t.Run(f.String()+"/"+name, func(t *testing.T) {
				fake, p := setup(t, f)
				fake.Push(b)
				_, _, err := p.Judge(t.Context(), testPrompt)
				if err == nil {
					t.Fatal("Judge succeeded")
				}
				checkNoKey(t, err, key)
			})
		}
	}
}

func checkNoKey(t *testing.T, err error, key string) {
	t.Helper()
	for _, s := range []string{err.Error(), strings.TrimSpace(errorsDump(err))} {
		if strings.Contains(s, key) || strings.Contains(s, key[:8]) {
			t.Errorf("error holds the API key: %s", s)
		}
	}
}

// errorsDump prints every error of err's chain with its fields.
func errorsDump(err error) string {
	var b strings.Builder
	for e := err; e != nil; e = errors.Unwrap(e) {
		if pe, ok := e.(*upstream.Error); ok {
			b.WriteString(pe.Message + " ")
		}
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

func errorsAs(err error, e **upstream.Error) bool { return errors.As(err, e) }

// TestKeyInBaseURL checks that a base URL carrying a key (a misconfigured
// proxy URL) never reaches an error through the transport's *url.Error.
func TestKeyInBaseURL(t *testing.T) {
	const secret = "AIzaSECRET"
	p := NewOllama(ollama.New(ollama.Config{BaseURL: "http://127.0.0.1:1/x?key=" + secret, Model: "m"}, testHTTPClient(t)))
	_, _, err := p.Judge(t.Context(), testPrompt)
	wantError(t, err, upstream.Error{Kind: upstream.KindConnection, Retryable: true}, "refused")
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "127.0.0.1:1/x") {
		t.Errorf("error %q holds the URL", err)
	}
}
