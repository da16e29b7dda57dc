package upstreamtest

import (
	"encoding/json"
	"net/http"
	"time"
)

// Usage the fake reports when a behaviour names none.
const (
	TokensIn  = 25
	TokensOut = 12
)

// Model texts for behaviours.
const (
	BullishJSON = `{"label":"bullish","score":0.8,"confidence":0.9,"rationale":"Raised full-year guidance."}`
	BearishJSON = `{"label":"bearish","score":-0.7,"confidence":0.85,"rationale":"Going-concern doubt."}`
	NeutralJSON = `{"label":"neutral","score":0.0,"confidence":0.7,"rationale":"Routine board appointment."}`
)

// Prose wraps a JSON answer the way chatty models do: a sentence, a
// ```json fence, a closing remark.
func Prose(jsonText string) string {
	return "Sure! Here is my judgement of the news:\n\n```json\n" + jsonText + "\n```\n\nLet me know if you need anything else."
}

// success is the format's 200 body carrying the model text, with usage.
// With thinking, the text is preceded by the format's reasoning content
// (an Anthropic thinking block, a Gemini thought part, Ollama's
// message.thinking) that a client must skip.
func success(c *Call, text string, in, out int, thinking bool) map[string]any {
	const thought = "The headline says guidance was raised; that is good news."
	switch c.Format {
	case Ollama:
		m := map[string]any{
			"model":                c.Model,
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
		if c.Request.Path == "/api/generate" {
			m["response"] = text
			if thinking {
				m["thinking"] = thought
			}
		} else {
			msg := map[string]any{"role": "assistant", "content": text}
			if thinking {
				msg["thinking"] = thought
			}
			m["message"] = msg
		}
		return m
	case OpenAI:
		return map[string]any{
			"id":                 "chatcmpl-upstreamtest",
			"object":             "chat.completion",
			"created":            time.Now().Unix(),
			"model":              c.Model,
			"system_fingerprint": "fp_upstreamtest",
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
		}
	case Gemini:
		parts := []any{}
		usage := map[string]any{"promptTokenCount": in, "candidatesTokenCount": out, "totalTokenCount": in + out}
		if thinking {
			parts = append(parts, map[string]any{"text": thought, "thought": true})
			usage["thoughtsTokenCount"] = 20
			usage["totalTokenCount"] = in + out + 20
		}
		parts = append(parts, map[string]any{"text": text})
		return map[string]any{
			"candidates": []any{map[string]any{
				"content":       map[string]any{"role": "model", "parts": parts},
				"finishReason":  "STOP",
				"index":         0,
				"safetyRatings": []any{},
			}},
			"usageMetadata": usage,
			"modelVersion":  c.Model,
			"responseId":    "upstreamtest",
		}
	case Anthropic:
		content := []any{}
		if thinking {
			content = append(content, map[string]any{"type": "thinking", "thinking": thought, "signature": "sig"})
		}
		stop := "end_turn"
		// A forced tool answers with a tool_use block whose input is the
		// JSON; a text that is not a JSON object comes back as text, as
		// from a model that ignored the tool.
		var input map[string]any
		if name := forcedTool(c.Request.Body); name != "" && json.Unmarshal([]byte(text), &input) == nil && input != nil {
			content = append(content, map[string]any{"type": "tool_use", "id": "toolu_upstreamtest", "name": name, "input": input})
			stop = "tool_use"
		} else {
			content = append(content, map[string]any{"type": "text", "text": text})
		}
		return anthropicMessage(c, content, stop, in, out)
	}
	return nil
}

func anthropicMessage(c *Call, content []any, stop string, in, out int) map[string]any {
	return map[string]any{
		"id":            "msg_upstreamtest",
		"type":          "message",
		"role":          "assistant",
		"model":         c.Model,
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

// errorBody is the format's error body for status with message, typed the
// way the real service types that status.
func errorBody(f Format, status int, message string) map[string]any {
	switch f {
	case Ollama:
		return map[string]any{"error": message}
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
			"request_id": "req_upstreamtest",
		}
	}
	return map[string]any{"error": message}
}

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
