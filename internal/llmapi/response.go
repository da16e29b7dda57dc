package llmapi

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// Response is one answer, built but not yet sent.
type Response struct {
	Status int
	// Header holds headers sent besides Content-Type and Content-Length;
	// nil for none.
	Header http.Header
	// ContentType is sent when not empty.
	ContentType string
	Body        []byte
}

// JSON is a response of status with v encoded as its body. v is always a
// value built in this package or by a caller from plain maps and slices;
// one that cannot be encoded is a programming error and panics.
func JSON(status int, v any) Response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("llmapi: encoding a body: %v", err))
	}
	return Response{Status: status, ContentType: "application/json", Body: b}
}

// Raw is a response of exactly this status, content type and body.
func Raw(status int, contentType, body string) Response {
	return Response{Status: status, ContentType: contentType, Body: []byte(body)}
}

// With returns r with the headers given as name, value pairs added
// ("Retry-After", "7"). An odd count is a programming error and panics.
func (r Response) With(pairs ...string) Response {
	if len(pairs)%2 != 0 {
		panic(fmt.Sprintf("llmapi: header pairs %q: odd count", pairs))
	}
	if len(pairs) == 0 {
		return r
	}
	h := r.Header.Clone()
	if h == nil {
		h = make(http.Header, len(pairs)/2)
	}
	for i := 0; i < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	r.Header = h
	return r
}

// Truncated is r with its body cut in the middle, as from a server that
// died while it answered: the status and headers promise a whole body,
// the JSON ends mid-value.
func (r Response) Truncated() Response {
	r.Body = r.Body[:len(r.Body)/2]
	return r
}

// Write sends r.
func (r Response) Write(w http.ResponseWriter) {
	h := w.Header()
	for k, vs := range r.Header {
		h[k] = append([]string(nil), vs...)
	}
	if r.ContentType != "" {
		h.Set("Content-Type", r.ContentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	w.WriteHeader(r.Status)
	_, _ = w.Write(r.Body)
}

// ConnResetter is a ResponseWriter that can drop its connection itself:
// an in-memory transport that has no socket to close.
type ConnResetter interface{ ResetConn() }

// ResetConn drops w's connection without an answer, with a TCP RST
// (SO_LINGER 0), so that the client sees "connection reset by peer", as
// from a server process that died. A writer that cannot be hijacked, and
// is no ConnResetter, has its handler aborted the way net/http provides
// (the connection is closed).
func ResetConn(w http.ResponseWriter) {
	if r, ok := w.(ConnResetter); ok {
		r.ResetConn()
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
