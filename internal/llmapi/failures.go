package llmapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The failures each provider is known for, with the exact bodies and
// headers it sends, and the same few failures in every format for a
// caller that picks a kind of failure rather than a provider's own.

// OllamaRunnerTerminated is the start of the message of Ollama's 500
// when the model's runner process died (a GPU fault, out of memory).
const OllamaRunnerTerminated = "llama runner process has terminated"

// OllamaCrash is the 500 of a crashed runner, with the reason after the
// colon ("exit status 2", "error: out of memory").
func OllamaCrash(reason string) Response {
	return Error(Ollama, http.StatusInternalServerError, OllamaRunnerTerminated+": "+reason)
}

// OllamaBusy is the 503 of a full queue (more than OLLAMA_MAX_QUEUE
// pending), with Ollama's two spaces.
func OllamaBusy() Response {
	return Error(Ollama, http.StatusServiceUnavailable, "server busy, please try again.  maximum pending requests exceeded")
}

// OllamaModelNotFound is the 404 of a model that was never pulled.
func OllamaModelNotFound(model string) Response {
	return Error(Ollama, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", model))
}

// OllamaErrorLine is a 200 whose body is an error object, as Ollama
// reports a failure after it has started answering.
func OllamaErrorLine(message string) Response {
	return JSON(http.StatusOK, map[string]any{"error": message})
}

// OpenAIRateLimited is OpenAI's 429 rate_limit_exceeded with its
// x-ratelimit-* headers; a retryAfter > 0 is also sent as retry-after-ms
// and Retry-After, which the official SDKs read.
func OpenAIRateLimited(retryAfter time.Duration) Response {
	var h []string
	if retryAfter > 0 {
		h = []string{
			"retry-after-ms", strconv.FormatInt(retryAfter.Milliseconds(), 10),
			"Retry-After", strconv.FormatFloat(retryAfter.Seconds(), 'f', -1, 64),
		}
	}
	h = append(h, "x-ratelimit-limit-requests", "500", "x-ratelimit-remaining-requests", "0",
		"x-ratelimit-reset-requests", retryAfter.String(), "x-request-id", requestID)
	return Error(OpenAI, http.StatusTooManyRequests, fmt.Sprintf(
		"Rate limit reached for requests. Please try again in %.3fs.", retryAfter.Seconds())).With(h...)
}

// OpenAIInsufficientQuota is OpenAI's 429 for an exhausted billing quota,
// which waiting does not cure.
func OpenAIInsufficientQuota() Response {
	return Raw(http.StatusTooManyRequests, "application/json",
		`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`)
}

// LlamaCppLoading is llama.cpp's 503 while its model loads (an int code).
func LlamaCppLoading() Response {
	return Raw(http.StatusServiceUnavailable, "application/json",
		`{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}`)
}

// Quota ids of Gemini's 429 QuotaFailure details: a per-minute quota
// clears within a minute, a per-day one at midnight Pacific time.
const (
	GeminiPerMinuteQuota = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
	GeminiPerDayQuota    = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
)

// GeminiRateLimited is Gemini's 429 RESOURCE_EXHAUSTED with a Help
// detail, a QuotaFailure naming quotaID (left out when empty) and a
// RetryInfo with retryDelay, a protobuf duration such as "10s" or "1.5s"
// (left out when empty).
func GeminiRateLimited(retryDelay, quotaID string) Response {
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
	return JSON(http.StatusTooManyRequests, map[string]any{"error": map[string]any{
		"code": 429, "message": msg, "status": "RESOURCE_EXHAUSTED", "details": details,
	}})
}

// GeminiUnavailable is Gemini's 503 UNAVAILABLE (overloaded).
func GeminiUnavailable() Response {
	return Error(Gemini, http.StatusServiceUnavailable, "The model is overloaded. Please try again later.")
}

// GeminiBlocked is a 200 with no candidates and promptFeedback.blockReason
// reason ("SAFETY", "PROHIBITED_CONTENT", ...).
func GeminiBlocked(model, reason string, tokensIn int) Response {
	return JSON(http.StatusOK, map[string]any{
		"promptFeedback": map[string]any{"blockReason": reason, "safetyRatings": []any{}},
		"usageMetadata":  map[string]any{"promptTokenCount": tokensIn, "totalTokenCount": tokensIn},
		"modelVersion":   model,
	})
}

// GeminiFinish is a 200 whose candidate stopped with finishReason (e.g.
// "SAFETY", "MAX_TOKENS") and no content.
func GeminiFinish(model, finishReason string, tokensIn int) Response {
	return JSON(http.StatusOK, map[string]any{
		"candidates":    []any{map[string]any{"finishReason": finishReason, "index": 0}},
		"usageMetadata": map[string]any{"promptTokenCount": tokensIn, "totalTokenCount": tokensIn},
		"modelVersion":  model,
	})
}

// AnthropicRateLimited is Anthropic's 429 rate_limit_error with
// retry-after in whole seconds, rounded up so that a client never comes
// back early (left out when 0).
func AnthropicRateLimited(retryAfter time.Duration) Response {
	h := []string{"request-id", requestID, "anthropic-ratelimit-requests-remaining", "0"}
	if retryAfter > 0 {
		h = append(h, "retry-after", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	return Error(Anthropic, http.StatusTooManyRequests, "Number of request tokens has exceeded your per-minute rate limit").With(h...)
}

// AnthropicOverloaded is Anthropic's 529 overloaded_error: overloaded for
// everyone, not a quota of the caller's.
func AnthropicOverloaded() Response {
	return Error(Anthropic, 529, "Overloaded").With("request-id", requestID)
}

// AnthropicRefusal is a 200 with stop_reason "refusal" and no answer.
func AnthropicRefusal(model string, tokensIn int) Response {
	return JSON(http.StatusOK, anthropicMessage(model, []any{}, "refusal", tokensIn, 0))
}

// BadKey is format f's answer to a wrong API key: OpenAI 401
// invalid_api_key, Gemini 400 API_KEY_INVALID, Anthropic 401
// authentication_error. The message echoes the key that was sent, as a
// careless proxy might, so that a client's scrubbing can be tested.
func BadKey(f Format, sent string) Response {
	switch f {
	case OpenAI:
		return Error(OpenAI, http.StatusUnauthorized, "Incorrect API key provided: "+sent+". You can find your API key at https://platform.openai.com/account/api-keys.")
	case Gemini:
		return JSON(http.StatusBadRequest, map[string]any{"error": map[string]any{
			"code": 400, "message": "API key not valid. Please pass a valid API key. (got " + sent + ")", "status": "INVALID_ARGUMENT",
			"details": []any{map[string]any{
				"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
				"reason": "API_KEY_INVALID", "domain": "googleapis.com",
				"metadata": map[string]any{"service": "generativelanguage.googleapis.com"},
			}},
		}})
	}
	return Error(f, http.StatusUnauthorized, "invalid x-api-key "+sent).With("request-id", requestID)
}

// RateLimited is format f's 429 asking for retryAfter: OpenAI's
// rate_limit_exceeded, Gemini's RESOURCE_EXHAUSTED on the per-minute quota
// with a RetryInfo, Anthropic's rate_limit_error with retry-after, and for
// Ollama (whose own server never sends one; its cloud models do) an
// {"error"} body with Retry-After.
func RateLimited(f Format, retryAfter time.Duration) Response {
	switch f {
	case OpenAI:
		return OpenAIRateLimited(retryAfter)
	case Gemini:
		return GeminiRateLimited(strconv.FormatFloat(retryAfter.Seconds(), 'f', -1, 64)+"s", GeminiPerMinuteQuota)
	case Anthropic:
		return AnthropicRateLimited(retryAfter)
	}
	return Error(f, http.StatusTooManyRequests, "rate limit exceeded").
		With("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
}

// Overloaded is format f's answer when the server has no room: Ollama's
// 503 with a full queue, an OpenAI-compatible 503, Gemini's 503
// UNAVAILABLE, Anthropic's 529 overloaded_error.
func Overloaded(f Format) Response {
	switch f {
	case Ollama:
		return OllamaBusy()
	case Gemini:
		return GeminiUnavailable()
	case Anthropic:
		return AnthropicOverloaded()
	}
	return Error(f, http.StatusServiceUnavailable, "The server is overloaded or not ready yet.")
}

// ServerError is format f's 500. For Ollama it is the crashed runner,
// which is what a 500 from Ollama almost always is.
func ServerError(f Format) Response {
	switch f {
	case Ollama:
		return OllamaCrash("exit status 2")
	case Gemini:
		return Error(Gemini, http.StatusInternalServerError, "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")
	case Anthropic:
		return Error(Anthropic, http.StatusInternalServerError, "Internal server error").With("request-id", requestID)
	}
	return Error(f, http.StatusInternalServerError, "The server had an error while processing your request. Sorry about that!")
}
