package llmapi

import (
	"encoding/json"
	"net/http"
	"time"
)

// Answer is what a model says to one call, for Success to wrap.
type Answer struct {
	// Text is the model's text: the JSON judgement, or prose.
	Text string
	// TokensIn and TokensOut are the usage reported.
	TokensIn, TokensOut int
	// Thinking puts the format's reasoning content before the answer (an
	// Anthropic thinking block, a Gemini thought part, Ollama's
	// message.thinking), which a client must skip.
	Thinking bool
}

// thought is the reasoning text of an Answer with Thinking.
const thought = "The headline says guidance was raised; that is good news."

// Success is format f's 200 answer to req, for model, carrying a:
// Ollama's chat or generate object (by req's path) with its durations and
// counts; OpenAI's chat.completion; Gemini's candidates with
// usageMetadata; Anthropic's message. For Anthropic, a request that forces
// a tool gets a text that is a JSON object back as that tool's tool_use
// input (stop_reason "tool_use"), as Claude answers a forced tool; any
// other text comes back as a text block, as from a model that ignored it.
func Success(f Format, model string, req Request, a Answer) Response {
	in, out, text := a.TokensIn, a.TokensOut, a.Text
	switch f {
	case Ollama:
		m := map[string]any{
			"model":                model,
			"created_at":           time.Now().UTC().Format(time.RFC3339Nano),
			"done":                 true,
			"done_reason":          "stop",
			"total_duration":       2254970291,
			"load_duration":        574751416,
			"prompt_eval_count":    in,
			"prompt_eval_duration": 1502000000,
			"eval_count":           out,
			"eval_duration":        175000000,
		}
		if req.Path == "/api/generate" {
			m["response"] = text
			if a.Thinking {
				m["thinking"] = thought
			}
		} else {
			msg := map[string]any{"role": "assistant", "content": text}
			if a.Thinking {
				msg["thinking"] = thought
			}
			m["message"] = msg
		}
		return JSON(http.StatusOK, m)
	case OpenAI:
		return JSON(http.StatusOK, map[string]any{
			"id":                 "chatcmpl-llmapi",
			"object":             "chat.completion",
			"created":            time.Now().Unix(),
			"model":              model,
			"system_fingerprint": "fp_llmapi",
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": text, "refusal": nil},
				"logprobs":      nil,
				"finish_reason": "stop",
			}},
			"usage": map[string]any{
				"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out,
				"prompt_tokens_details":     map[string]any{"cached_tokens": 0},
				"completion_tokens_details": map[string]any{"reasoning_tokens": 0},
			},
		})
	case Gemini:
		parts := []any{}
		usage := map[string]any{"promptTokenCount": in, "candidatesTokenCount": out, "totalTokenCount": in + out}
		if a.Thinking {
			parts = append(parts, map[string]any{"text": thought, "thought": true})
			usage["thoughtsTokenCount"] = 20
			usage["totalTokenCount"] = in + out + 20
		}
		parts = append(parts, map[string]any{"text": text})
		return JSON(http.StatusOK, map[string]any{
			"candidates": []any{map[string]any{
				"content":       map[string]any{"role": "model", "parts": parts},
				"finishReason":  "STOP",
				"index":         0,
				"safetyRatings": []any{},
			}},
			"usageMetadata": usage,
			"modelVersion":  model,
			"responseId":    "llmapi",
		})
	case Anthropic:
		content := []any{}
		if a.Thinking {
			content = append(content, map[string]any{"type": "thinking", "thinking": thought, "signature": "sig"})
		}
		stop := "end_turn"
		var input map[string]any
		if name := forcedTool(req.Body); name != "" && json.Unmarshal([]byte(text), &input) == nil && input != nil {
			content = append(content, map[string]any{"type": "tool_use", "id": "toolu_llmapi", "name": name, "input": input})
			stop = "tool_use"
		} else {
			content = append(content, map[string]any{"type": "text", "text": text})
		}
		return JSON(http.StatusOK, anthropicMessage(model, content, stop, in, out))
	}
	return JSON(http.StatusOK, map[string]any{"text": text})
}

func anthropicMessage(model string, content []any, stop string, in, out int) map[string]any {
	return map[string]any{
		"id":            "msg_llmapi",
		"type":          "message",
		"role":          "assistant",
		"model":         model,
		"content":       content,
		"stop_reason":   stop,
		"stop_sequence": nil,
		"usage": map[string]any{
			"input_tokens": in, "output_tokens": out,
			"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
			"service_tier": "standard",
		},
	}
}

// forcedTool is the tool name of a request's tool_choice {"type":"tool"}.
func forcedTool(body map[string]any) string {
	tc, _ := body["tool_choice"].(map[string]any)
	if tc["type"] != "tool" {
		return ""
	}
	name, _ := tc["name"].(string)
	return name
}

// Prose wraps a JSON answer the way chatty models do: a sentence, a
// ```json fence, a closing remark. A client must dig the object out.
func Prose(jsonText string) string {
	return "Sure! Here is my judgement of the news:\n\n```json\n" + jsonText + "\n```\n\nLet me know if you need anything else."
}

// ErrorBody is format f's error body for status with message, typed the
// way the real service types that status: Ollama's {"error": message};
// OpenAI's {"error":{message,type,param,code}}; Google's
// {"error":{code,message,status}}; Anthropic's
// {"type":"error","error":{type,message},"request_id"}.
func ErrorBody(f Format, status int, message string) map[string]any {
	switch f {
	case OpenAI:
		typ, code := "invalid_request_error", any(nil)
		switch {
		case status == http.StatusUnauthorized:
			code = "invalid_api_key"
		case status == http.StatusNotFound:
			code = "model_not_found"
		case status == http.StatusTooManyRequests:
			typ, code = "requests", "rate_limit_exceeded"
		case status >= 500:
			typ = "server_error"
		}
		return map[string]any{"error": map[string]any{"message": message, "type": typ, "param": nil, "code": code}}
	case Gemini:
		return map[string]any{"error": map[string]any{"code": status, "message": message, "status": googleStatus(status)}}
	case Anthropic:
		return map[string]any{
			"type":       "error",
			"error":      map[string]any{"type": anthropicType(status), "message": message},
			"request_id": requestID,
		}
	}
	return map[string]any{"error": message}
}

// Error is format f's error response: status with ErrorBody.
func Error(f Format, status int, message string) Response {
	return JSON(status, ErrorBody(f, status, message))
}

// requestID is the request id Anthropic's and OpenAI's answers carry.
const requestID = "req_llmapi"

// googleStatus is the canonical code Google sends with an HTTP status.
func googleStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 500:
		return "INTERNAL"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "UNKNOWN"
}

// anthropicType is Anthropic's error type for an HTTP status.
func anthropicType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}
