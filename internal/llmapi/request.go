package llmapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Format is a model API's wire format.
type Format int

// The wire formats.
const (
	Ollama    Format = iota + 1 // POST /api/chat (and /api/generate)
	OpenAI                      // POST /v1/chat/completions
	Gemini                      // POST /v1beta/models/{model}:generateContent
	Anthropic                   // POST /v1/messages
)

// Formats lists every format, in the router's tier order.
var Formats = [...]Format{Ollama, OpenAI, Gemini, Anthropic}

func (f Format) String() string {
	switch f {
	case Ollama:
		return "ollama"
	case OpenAI:
		return "openai"
	case Gemini:
		return "gemini"
	case Anthropic:
		return "anthropic"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// Endpoint is one route of the model APIs.
type Endpoint int

// The routes served. Only the model calls judge anything; the others are
// Ollama's housekeeping and the model lists.
const (
	NoEndpoint        Endpoint = iota
	OllamaChat                 // POST /api/chat
	OllamaGenerate             // POST /api/generate
	OllamaEmbed                // POST /api/embed
	OllamaPS                   // GET /api/ps
	OllamaTags                 // GET /api/tags
	OllamaVersion              // GET /api/version
	OpenAIChat                 // POST /v1/chat/completions
	OpenAIModels               // GET /v1/models
	GeminiGenerate             // POST /v1beta/models/{model}:generateContent
	AnthropicMessages          // POST /v1/messages
)

// Format is the wire format the endpoint belongs to; 0 for NoEndpoint.
func (e Endpoint) Format() Format {
	switch e {
	case OllamaChat, OllamaGenerate, OllamaEmbed, OllamaPS, OllamaTags, OllamaVersion:
		return Ollama
	case OpenAIChat, OpenAIModels:
		return OpenAI
	case GeminiGenerate:
		return Gemini
	case AnthropicMessages:
		return Anthropic
	}
	return 0
}

// ModelCall reports whether the endpoint asks a model for text: the calls
// the router makes, and the ones a simulated GPU spends time on.
func (e Endpoint) ModelCall() bool {
	switch e {
	case OllamaChat, OllamaGenerate, OpenAIChat, GeminiGenerate, AnthropicMessages:
		return true
	}
	return false
}

var geminiPath = regexp.MustCompile(`^/v1beta/models/([^/:]+):generateContent$`)

// Identify says which endpoint r reached and the model it names: in the
// path for Gemini, in the body's "model" for the others. A method the
// route does not take is NoEndpoint, as a wrong path is.
func Identify(r Request) (Endpoint, string) {
	model, _ := r.Body["model"].(string)
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case post && r.Path == "/api/chat":
		return OllamaChat, model
	case post && r.Path == "/api/generate":
		return OllamaGenerate, model
	case post && r.Path == "/api/embed":
		return OllamaEmbed, model
	case get && r.Path == "/api/ps":
		return OllamaPS, ""
	case get && r.Path == "/api/tags":
		return OllamaTags, ""
	case get && r.Path == "/api/version":
		return OllamaVersion, ""
	case post && r.Path == "/v1/chat/completions":
		return OpenAIChat, model
	case get && r.Path == "/v1/models":
		return OpenAIModels, ""
	case post && r.Path == "/v1/messages":
		return AnthropicMessages, model
	case post:
		if m := geminiPath.FindStringSubmatch(r.Path); m != nil {
			return GeminiGenerate, m[1]
		}
	}
	return NoEndpoint, ""
}

// Request is one request as a model API server received it.
type Request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	// Raw is the body as sent; Body is it decoded, nil when not a JSON
	// object.
	Raw  []byte
	Body map[string]any
}

// MaxRequestBody bounds how much of a request body is read: far more than
// a prompt of the service's, far less than would hurt the server.
const MaxRequestBody = 16 << 20

// ReadRequest reads r's body (up to MaxRequestBody) and decodes it.
func ReadRequest(r *http.Request) Request {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, MaxRequestBody))
	rec := Request{
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Raw:      raw,
	}
	_ = json.Unmarshal(raw, &rec.Body)
	return rec
}

// Field walks Body along a dot path, with numbers indexing arrays:
// "generationConfig.temperature", "messages.0.role". It returns nil where
// the path leads nowhere.
func (r Request) Field(path string) any {
	var v any = r.Body
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// APIKey is the key r carries where format f sends it: a bearer token
// (OpenAI), x-goog-api-key or ?key= (Gemini), x-api-key (Anthropic).
// Ollama takes none.
func APIKey(f Format, r Request) string {
	switch f {
	case OpenAI:
		return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	case Gemini:
		if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
			return k
		}
		if q, err := url.ParseQuery(r.RawQuery); err == nil {
			return q.Get("key")
		}
	case Anthropic:
		return r.Header.Get("X-Api-Key")
	}
	return ""
}

// Prompt returns the instructions and the last user turn of a model call,
// read the way format f carries them: Ollama's and OpenAI's system and
// user messages (or /api/generate's system and prompt), Gemini's
// systemInstruction and user contents, Anthropic's system and user
// message. Content given as a list of parts or blocks is joined.
func Prompt(f Format, r Request) (system, user string) {
	b := r.Body
	switch f {
	case Ollama, OpenAI:
		if r.Path == "/api/generate" {
			system, _ = b["system"].(string)
			user, _ = b["prompt"].(string)
			return system, user
		}
		msgs, _ := b["messages"].([]any)
		for _, m := range msgs {
			mm, _ := m.(map[string]any)
			switch mm["role"] {
			case "system":
				system = text(mm["content"])
			case "user":
				user = text(mm["content"])
			}
		}
	case Gemini:
		si, ok := b["systemInstruction"]
		if !ok {
			si = b["system_instruction"]
		}
		system = geminiText(si)
		contents, _ := b["contents"].([]any)
		for _, c := range contents {
			cm, _ := c.(map[string]any)
			if role, _ := cm["role"].(string); role == "" || role == "user" {
				user = geminiText(cm)
			}
		}
	case Anthropic:
		system = text(b["system"])
		msgs, _ := b["messages"].([]any)
		for _, m := range msgs {
			mm, _ := m.(map[string]any)
			if mm["role"] == "user" {
				user = text(mm["content"])
			}
		}
	}
	return system, user
}

// text is a message content: a string, or the text of a list of parts
// ({"type":"text","text":...}) joined by newlines.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var parts []string
		for _, p := range x {
			pm, _ := p.(map[string]any)
			if s, ok := pm["text"].(string); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "\n")
	}
	return ""
}

// geminiText joins the text parts of a Gemini content object.
func geminiText(v any) string {
	m, _ := v.(map[string]any)
	return text(m["parts"])
}
