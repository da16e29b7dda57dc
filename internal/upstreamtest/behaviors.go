package upstreamtest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/catalystbot/sentiment/internal/llmapi"
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
	return func(c *Call) { success(c, text, in, out, false).Write(c.W) }
}

// AnswerThinking is Answer with the format's reasoning content before the
// answer: an Anthropic thinking block first in content, a Gemini thought
// part first in parts, Ollama's message.thinking. Clients must skip it.
func AnswerThinking(text string) Behavior {
	return func(c *Call) { success(c, text, TokensIn, TokensOut, true).Write(c.W) }
}

// Error answers status with the format's error body carrying message (the
// error type or status code the real service uses for that status), plus
// the given headers as name, value pairs ("Retry-After", "7").
func Error(status int, message string, header ...string) Behavior {
	return Func(func(c *Call) { llmapi.Error(c.Format, status, message).With(header...).Write(c.W) })
}

// Raw answers status with exactly this body and content type, plus headers
// as name, value pairs: for bodies no real format sends (a proxy's HTML
// page, vLLM's older flat error) or hand-written ones.
func Raw(status int, contentType, body string, header ...string) Behavior {
	return respond(llmapi.Raw(status, contentType, body).With(header...))
}

// respond answers every call with r, whatever its format.
func respond(r llmapi.Response) Behavior {
	return Func(func(c *Call) { r.Write(c.W) })
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
	if r, ok := c.W.(llmapi.ConnResetter); ok {
		r.ResetConn()
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
	return Func(func(c *Call) { llmapi.ResetConn(c.W) })
}

// SlowBody sends the status and headers of a successful answer at once,
// then the body a few bytes every interval: the client has its response
// and waits on the body. It stops when the call ends.
func SlowBody(text string, interval time.Duration) Behavior {
	return Func(func(c *Call) {
		b := success(c, text, TokensIn, TokensOut, false).Body
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

// badKey is the format's answer to a wrong API key; it echoes the key.
func badKey(sent string) Behavior {
	return Func(func(c *Call) { llmapi.BadKey(c.Format, sent).Write(c.W) })
}

// Ollama's typical failures.

// OllamaRunnerTerminated is the 500 of a crashed runner (often a GPU fault).
func OllamaRunnerTerminated() Behavior { return respond(llmapi.OllamaCrash("exit status 2")) }

// OllamaBusy is the 503 of a full queue (more than OLLAMA_MAX_QUEUE pending).
func OllamaBusy() Behavior { return respond(llmapi.OllamaBusy()) }

// OllamaModelNotFound is the 404 of a model that was never pulled.
func OllamaModelNotFound(model string) Behavior { return respond(llmapi.OllamaModelNotFound(model)) }

// OllamaErrorLine answers 200 with an error object as the body, as Ollama
// reports a failure after it has started answering.
func OllamaErrorLine(message string) Behavior { return respond(llmapi.OllamaErrorLine(message)) }

// OpenAI-compatible servers' typical failures.

// OpenAIRateLimited is OpenAI's 429 rate_limit_exceeded; a retryAfter > 0
// is also sent as retry-after-ms and Retry-After.
func OpenAIRateLimited(retryAfter time.Duration) Behavior {
	return respond(llmapi.OpenAIRateLimited(retryAfter))
}

// OpenAIInsufficientQuota is OpenAI's 429 for an exhausted billing quota.
func OpenAIInsufficientQuota() Behavior { return respond(llmapi.OpenAIInsufficientQuota()) }

// LlamaCppLoading is llama.cpp's 503 while its model loads (int code).
func LlamaCppLoading() Behavior { return respond(llmapi.LlamaCppLoading()) }

// Gemini's typical failures.

// Quota ids of Gemini's 429 QuotaFailure details.
const (
	GeminiPerMinuteQuota = llmapi.GeminiPerMinuteQuota
	GeminiPerDayQuota    = llmapi.GeminiPerDayQuota
)

// GeminiRateLimited is Gemini's 429 RESOURCE_EXHAUSTED with a Help detail,
// a QuotaFailure naming quotaID (left out when empty) and a RetryInfo with
// retryDelay ("10s", "1.5s"; left out when empty).
func GeminiRateLimited(retryDelay, quotaID string) Behavior {
	return respond(llmapi.GeminiRateLimited(retryDelay, quotaID))
}

// GeminiUnavailable is Gemini's 503 UNAVAILABLE (overloaded).
func GeminiUnavailable() Behavior { return respond(llmapi.GeminiUnavailable()) }

// GeminiBlocked is a 200 with no candidates and promptFeedback.blockReason
// reason ("SAFETY", "PROHIBITED_CONTENT", ...).
func GeminiBlocked(reason string) Behavior {
	return Func(func(c *Call) { llmapi.GeminiBlocked(c.Model, reason, TokensIn).Write(c.W) })
}

// GeminiFinish is a 200 whose candidate stopped with finishReason (e.g.
// "SAFETY", "MAX_TOKENS") and no content.
func GeminiFinish(finishReason string) Behavior {
	return Func(func(c *Call) { llmapi.GeminiFinish(c.Model, finishReason, TokensIn).Write(c.W) })
}

// Anthropic's typical failures.

// AnthropicRateLimited is Anthropic's 429 rate_limit_error with
// retry-after in whole seconds, rounded up (left out when 0).
func AnthropicRateLimited(retryAfter time.Duration) Behavior {
	return respond(llmapi.AnthropicRateLimited(retryAfter))
}

// AnthropicOverloaded is Anthropic's 529 overloaded_error.
func AnthropicOverloaded() Behavior { return respond(llmapi.AnthropicOverloaded()) }

// AnthropicRefusal is a 200 with stop_reason "refusal" and no answer.
func AnthropicRefusal() Behavior {
	return Func(func(c *Call) { llmapi.AnthropicRefusal(c.Model, TokensIn).Write(c.W) })
}
