package upstreamtest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// memTransport serves a request with the fake's handler on a goroutine and
// streams the response through a pipe: headers reach the client as soon as
// the handler writes them, the body as it is written, so a slow body or a
// hang behaves as over TCP. Everything waits on channels and the request's
// context, which synctest counts as durably blocking.
type memTransport struct{ f *Fake }

func (m *memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	m.f.mu.Lock()
	down := m.f.down
	m.f.mu.Unlock()
	if down {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, opError("dial", syscall.ECONNREFUSED)
	}

	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	sreq := req.Clone(ctx)
	sreq.Body = io.NopCloser(bytes.NewReader(body))
	sreq.ContentLength = int64(len(body))
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "192.0.2.1:40000"
	sreq.Host = req.URL.Host

	pr, pw := io.Pipe()
	w := &memWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			// net/http's way to drop a connection from a handler.
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panic(v)
				}
				w.ResetConn()
			}
			w.finish(ctx)
		}()
		m.f.ServeHTTP(w, sreq)
	}()

	select {
	case <-w.ready:
	case <-ctx.Done():
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	w.mu.Lock()
	status, hdr, reset := w.status, w.sent, w.reset
	w.mu.Unlock()
	if reset && status == 0 {
		pr.Close()
		return nil, opError("read", syscall.ECONNRESET)
	}
	// A canceled context ends a body read at once, as the real transport
	// does, even if the handler keeps still.
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	cl := int64(-1)
	if v, err := strconv.ParseInt(hdr.Get("Content-Length"), 10, 64); err == nil {
		cl = v
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hdr,
		Body:          &memBody{pr: pr, ctx: ctx, stop: stop},
		ContentLength: cl,
		Request:       req,
	}, nil
}

func opError(op string, errno syscall.Errno) error {
	call := "read"
	if op == "dial" {
		call = "connect"
	}
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(call, errno)}
}

// memBody is the client's end of the pipe.
type memBody struct {
	pr   *io.PipeReader
	ctx  context.Context
	stop func() bool
}

func (b *memBody) Read(p []byte) (int, error) {
	n, err := b.pr.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

func (b *memBody) Close() error {
	b.stop()
	return b.pr.Close()
}

// memWriter is the handler's http.ResponseWriter.
type memWriter struct {
	mu     sync.Mutex
	header http.Header
	sent   http.Header // header as of WriteHeader
	status int
	reset  bool
	ready  chan struct{} // closed once the client can have its response (or error)
	pw     *io.PipeWriter
}

func (w *memWriter) Header() http.Header { return w.header }

func (w *memWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status != 0 || w.reset {
		return
	}
	w.status = code
	w.sent = w.header.Clone()
	close(w.ready)
}

func (w *memWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.mu.Lock()
	reset := w.reset
	w.mu.Unlock()
	if reset {
		return 0, io.ErrClosedPipe
	}
	return w.pw.Write(p)
}

// Flush implements http.Flusher; writes reach the client unbuffered.
func (w *memWriter) Flush() {}

// ResetConn drops the connection: before the headers, RoundTrip fails with
// ECONNRESET; after them, the body read does.
func (w *memWriter) ResetConn() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reset {
		return
	}
	w.reset = true
	if w.status == 0 {
		close(w.ready)
		return
	}
	w.pw.CloseWithError(opError("read", syscall.ECONNRESET))
}

// finish ends the response when the handler returns: an untouched response
// is a 200 with no body, as net/http sends; the body ends in EOF, or in the
// context's error if the client gave up.
func (w *memWriter) finish(ctx context.Context) {
	w.WriteHeader(http.StatusOK)
	if err := ctx.Err(); err != nil {
		w.pw.CloseWithError(err)
		return
	}
	w.pw.Close()
}
