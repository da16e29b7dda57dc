package upstreamtest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Behavior answers one model call. The constructors below cover what real
// upstreams do; Func makes any other.
type Behavior func(c *Call)

// Func is a custom behaviour. It must return once c.R.Context() is done or
// c.Stopped() is closed.
func Func(fn func(c *Call)) Behavior { return fn }

// Answer answers 200 with the model text in the format's success envelope,
// with TokensIn/TokensOut usage. For Anthropic, a text that is a JSON object
// becomes the input of the forced tool's tool_use block.
func Answer(text string) Behavior {
	return AnswerUsage(text, TokensIn, TokensOut)
}

// AnswerUsage is Answer with the given token counts.
func AnswerUsage(text string, in, out int) Behavior {
	return func(c *Call) { writeJSON(c.W, http.StatusOK, success(c, text, in, out, false)) }
}

// AnswerThinking is Answer with the format's reasoning content before the
// answer: an Anthropic thinking block first in content, a Gemini thought
// part first in parts, Ollama's message.thinking. Clients must skip it.
func AnswerThinking(text string) Behavior {
	return func(c *Call) { writeJSON(c.W, http.StatusOK, success(c, text, TokensIn, TokensOut, true)) }
}

// Error answers status with the format's error body carrying message (the
// error type or status code the real service uses for that status), plus
// the given headers as name, value pairs ("Retry-After", "7").
func Error(status int, message string, header ...string) Behavior {
	return Func(func(c *Call) {
		setHeaders(c.W, header)
		writeJSON(c.W, status, errorBody(c.Format, status, message))
	})
}

// Raw answers status with exactly this body and content type, plus headers
// as name, value pairs: for bodies no real format sends (a proxy's HTML
// page, vLLM's older flat error) or hand-written ones.
func Raw(status int, contentType, body string, header ...string) Behavior {
	return Func(func(c *Call) {
		setHeaders(c.W, header)
		writeRaw(c.W, status, contentType, []byte(body))
	})
}

// Malformed answers 200 with a body cut off in the middle of the JSON.
func Malformed() Behavior {
	return Raw(http.StatusOK, "application/json", `{"model":"m","message":{"role":"assistant","content":"{\"lab`)
}

// Hang never answers: it returns when the request's context ends (the
// client gave up) or the fake is closed.
func Hang() Behavior {
	return Func(func(c *Call) {
		select {
		case <-c.R.Context().Done():
		case <-c.stop:
			abort(c)
		}
	})
}

// abort ends a call without an answer when the fake is closed under it, so
// the client sees its connection drop rather than an empty 200.
func abort(c *Call) {
	if r, ok := c.W.(resetter); ok {
		r.resetConn()
		return
	}
	panic(http.ErrAbortHandler) // net/http closes the connection quietly
}

// Delay waits d (or until the call ends) and then behaves as b. Under
// synctest d passes on the fake clock.
func Delay(d time.Duration, b Behavior) Behavior {
	return Func(func(c *Call) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			b(c)
		case <-c.R.Context().Done():
		case <-c.stop:
			abort(c)
		}
	})
}

// Reset drops the connection without an answer, with a TCP RST (SO_LINGER
// 0): the client sees "connection reset by peer". As a default behaviour it
// stands for a server that is down while keeping its URL.
func Reset() Behavior {
	return Func(func(c *Call) {
		if r, ok := c.W.(resetter); ok {
			r.resetConn()
			return
		}
		hj, ok := c.W.(http.Hijacker)
		if !ok {
			panic("upstreamtest: Reset needs a hijackable connection")
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	})
}

// resetter is the in-memory transport's stand-in for a hijacked conn.
type resetter interface{ resetConn() }

// SlowBody sends the status and headers of a successful answer at once,
// then the body a few bytes every interval: the client has its response
// and waits on the body. It stops when the call ends.
func SlowBody(text string, interval time.Duration) Behavior {
	return Func(func(c *Call) {
		b, _ := json.Marshal(success(c, text, TokensIn, TokensOut, false))
		c.W.Header().Set("Content-Type", "application/json")
		c.W.Header().Set("Content-Length", strconv.Itoa(len(b)))
		c.W.WriteHeader(http.StatusOK)
		flush(c.W)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; i < len(b); i += 4 {
			select {
			case <-t.C:
			case <-c.R.Context().Done():
				return
			case <-c.stop:
				abort(c)
				return
			}
			if _, err := c.W.Write(b[i:min(i+4, len(b))]); err != nil {
				return
			}
			flush(c.W)
		}
	})
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func setHeaders(w http.ResponseWriter, pairs []string) {
	if len(pairs)%2 != 0 {
		panic(fmt.Sprintf("upstreamtest: header pairs %q: odd count", pairs))
	}
	for i := 0; i < len(pairs); i += 2 {
		w.Header().Set(pairs[i], pairs[i+1])
	}
}

// badKey is the format's answer to a wrong API key; it echoes the key.
func badKey(sent string) Behavior {
	return Func(func(c *Call) {
		switch c.Format {
		case OpenAI:
			Error(http.StatusUnauthorized, "Incorrect API key provided: "+sent+". You can find your API key at https://platform.openai.com/account/api-keys.")(c)
		case Gemini:
			writeJSON(c.W, http.StatusBadRequest, map[string]any{"error": map[string]any{
				"code": 400, "message": "API key not valid. Please pass a valid API key. (got " + sent + ")", "status": "INVALID_ARGUMENT",
				"details": []any{map[string]any{
					"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
					"reason": "API_KEY_INVALID", "domain": "googleapis.com",
					"metadata": map[string]any{"service": "generativelanguage.googleapis.com"},
				}},
			}})
		default:
			Error(http.StatusUnauthorized, "invalid x-api-key "+sent, "request-id", "req_upstreamtest")(c)
		}
	})
}

// Ollama's typical failures.

// OllamaRunnerTerminated is the 500 of a crashed runner (often a GPU fault).
func OllamaRunnerTerminated() Behavior {
	return Error(http.StatusInternalServerError, "llama runner process has terminated: exit status 2")
}

// OllamaBusy is the 503 of a full queue (more than OLLAMA_MAX_QUEUE pending).
func OllamaBusy() Behavior {
	return Error(http.StatusServiceUnavailable, "server busy, please try again.  maximum pending requests exceeded")
}

// OllamaModelNotFound is the 404 of a model that was never pulled.
func OllamaModelNotFound(model string) Behavior {
	return Error(http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", model))
}

// OllamaErrorLine answers 200 with an error object as the body, as Ollama
// reports a failure after it has started answering.
func OllamaErrorLine(message string) Behavior {
	return Func(func(c *Call) { writeJSON(c.W, http.StatusOK, map[string]any{"error": message}) })
}

// OpenAI-compatible servers' typical failures.

// OpenAIRateLimited is OpenAI's 429 rate_limit_exceeded; a retryAfter > 0
// is also sent as retry-after-ms and Retry-After.
func OpenAIRateLimited(retryAfter time.Duration) Behavior {
	var h []string
	if retryAfter > 0 {
		h = []string{
			"retry-after-ms", strconv.FormatInt(retryAfter.Milliseconds(), 10),
			"Retry-After", strconv.FormatFloat(retryAfter.Seconds(), 'f', -1, 64),
		}
	}
	h = append(h, "x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "0",
		"x-ratelimit-reset-requests", retryAfter.String(), "x-request-id", "req_upstreamtest")
	return Error(http.StatusTooManyRequests, fmt.Sprintf(
		"Rate limit reached for requests. Please try again in %.3fs.", retryAfter.Seconds()), h...)
}

// OpenAIInsufficientQuota is OpenAI's 429 for an exhausted billing quota.
func OpenAIInsufficientQuota() Behavior {
	return Raw(http.StatusTooManyRequests, "application/json",
		`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`)
}

// LlamaCppLoading is llama.cpp's 503 while its model loads (int code).
func LlamaCppLoading() Behavior {
	return Raw(http.StatusServiceUnavailable, "application/json",
		`{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
}

// Gemini's typical failures.

// Quota ids of Gemini's 429 QuotaFailure details.
const (
	GeminiPerMinuteQuota = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
	GeminiPerDayQuota    = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
)

// GeminiRateLimited is Gemini's 429 RESOURCE_EXHAUSTED with a Help detail,
// a QuotaFailure naming quotaID (left out when empty) and a RetryInfo with
// retryDelay ("10s", "1.5s"; left out when empty).
func GeminiRateLimited(retryDelay, quotaID string) Behavior {
	details := []any{map[string]any{
		"@type": "type.googleapis.com/google.rpc.Help",
		"links": []any{map[string]any{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}},
	}}
	if quotaID != "" {
		details = append(details, map[string]any{
			"@type": "type.googleapis.com/google.rpc.QuotaFailure",
			"violations": []any{map[string]any{
				"quotaMetric":     "generativelanguage.googleapis.com/generate_content_free_tier_requests",
				"quotaId":         quotaID,
				"quotaDimensions": map[string]any{"location": "global", "model": "gemini-2.5-flash"},
			}},
		})
	}
	msg := "You exceeded your current quota, please check your plan and billing details."
	if retryDelay != "" {
		details = append(details, map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retryDelay})
		msg += " Please retry in " + retryDelay + "."
	}
	return Func(func(c *Call) {
		writeJSON(c.W, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
			"code": 429, "message": msg, "status": "RESOURCE_EXHAUSTED", "details": details,
		}})
	})
}

// GeminiUnavailable is Gemini's 503 UNAVAILABLE (overloaded).
func GeminiUnavailable() Behavior {
	return Func(func(c *Call) {
		writeJSON(c.W, http.StatusServiceUnavailable, errorBody(Gemini, 503, "The model is overloaded. Please try again later."))
	})
}

// GeminiBlocked is a 200 with no candidates and promptFeedback.blockReason
// reason ("SAFETY", "PROHIBITED_CONTENT", ...).
func GeminiBlocked(reason string) Behavior {
	return Func(func(c *Call) {
		writeJSON(c.W, http.StatusOK, map[string]any{
			"promptFeedback": map[string]any{"blockReason": reason, "safetyRatings": []any{}},
			"usageMetadata":  map[string]any{"promptTokenCount": TokensIn, "totalTokenCount": TokensIn},
			"modelVersion":   c.Model,
		})
	})
}

// GeminiFinish is a 200 whose candidate stopped with finishReason (e.g.
// "SAFETY", "MAX_TOKENS") and no content.
func GeminiFinish(finishReason string) Behavior {
	return Func(func(c *Call) {
		writeJSON(c.W, http.StatusOK, map[string]any{
			"candidates":    []any{map[string]any{"finishReason": finishReason, "index": 0}},
			"usageMetadata": map[string]any{"promptTokenCount": TokensIn, "totalTokenCount": TokensIn},
			"modelVersion":  c.Model,
		})
	})
}

// Anthropic's typical failures.

// AnthropicRateLimited is Anthropic's 429 rate_limit_error with
// retry-after in whole seconds (left out when 0).
func AnthropicRateLimited(retryAfter time.Duration) Behavior {
	h := []string{"request-id", "req_upstreamtest", "anthropic-ratelimit-requests-remaining", "0"}
	if retryAfter > 0 {
		h = append(h, "retry-after", strconv.Itoa(int(retryAfter.Seconds())))
	}
	return Error(http.StatusTooManyRequests, "Number of request tokens has exceeded your per-minute rate limit", h...)
}

// AnthropicOverloaded is Anthropic's 529 overloaded_error.
func AnthropicOverloaded() Behavior {
	return Error(529, "Overloaded", "request-id", "req_upstreamtest")
}

// AnthropicRefusal is a 200 with stop_reason "refusal" and no answer.
func AnthropicRefusal() Behavior {
	return Func(func(c *Call) {
		writeJSON(c.W, http.StatusOK, anthropicMessage(c, []any{}, "refusal", TokensIn, 0))
	})
}
