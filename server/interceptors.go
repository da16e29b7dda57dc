package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/pipeline"
)

// requestIDHeader carries a caller's request id in, and ours back out in
// the response header, so one id ties the bot's log to ours.
const requestIDHeader = "x-request-id"

type callInfoKey struct{}

// callInfo is what the per-RPC log line says of a call besides gRPC's own
// fields: its request id, and for a Classify call who answered and from
// what cache. The handler fills in the answer's part on the call's own
// goroutine, before the logging interceptor reads it.
type callInfo struct {
	id, tier, cache string
}

// callCtx is a call's context carrying its callInfo: one allocation for
// both, where context.WithValue and the info were two on every call.
type callCtx struct {
	context.Context
	info callInfo
}

func (c *callCtx) Value(key any) any {
	if _, ok := key.(callInfoKey); ok {
		return &c.info
	}
	return c.Context.Value(key)
}

// withRequestID takes the caller's x-request-id (when sane) or makes one,
// and echoes it in the response header.
func withRequestID(ctx context.Context) context.Context {
	id := ""
	// ValueFromIncomingContext reads the one key; FromIncomingContext
	// would copy every header of every call.
	if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) > 0 && len(v[0]) <= 128 && pipeline.CheckText("", v[0], 128, true) == nil {
		id = v[0]
	}
	if id == "" {
		id = newRequestID()
	}
	// requestIDHeader is lower case already: no need for Pairs' copy.
	_ = grpc.SetHeader(ctx, metadata.MD{requestIDHeader: {id}})
	return &callCtx{Context: ctx, info: callInfo{id: id}}
}

// newRequestID is 16 hex digits. An id ties log lines together and
// guards nothing, so it comes from the runtime's per-thread generator
// (seeded from the system's entropy), not from a system call for
// cryptographic bytes on every call; one allocation, the string.
func newRequestID() string {
	const digits = "0123456789abcdef"
	var b [16]byte
	v := rand.Uint64()
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// RequestID is the id of the RPC ctx belongs to (the caller's
// x-request-id, or one made for it); empty outside an RPC. The usage log
// records it with every model call.
func RequestID(ctx context.Context) string {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		return ci.id
	}
	return ""
}

func requestID(ctx context.Context) string { return RequestID(ctx) }

// noteAnswer puts who answered a unary call in its log line.
func noteAnswer(ctx context.Context, a *pipeline.Answer) {
	ci, ok := ctx.Value(callInfoKey{}).(*callInfo)
	if !ok {
		return
	}
	ci.tier = a.Provenance.Tier.String()
	switch a.Provenance.CacheHit {
	case pipeline.CacheExact:
		ci.cache = "exact"
	case pipeline.CacheNear:
		ci.cache = "near"
	case pipeline.CacheMiss:
		ci.cache = "miss"
	}
}

func unaryRequestID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(withRequestID(ctx), req)
}

func streamRequestID(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &ctxStream{ServerStream: ss, ctx: withRequestID(ss.Context())})
}

// ctxStream gives a handler a stream whose Context carries more values.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }

// The per-RPC log line. It was go-grpc-middleware's logging interceptor;
// a profile of the lexicon path showed that interceptor at a tenth of the
// server's CPU (fields built twice, a context per call, a slice merge per
// line), so the line is now written here, once, with slog's attributes,
// keeping the middleware's field names and levels.

// codeLevel is the level of a call's line by its code, as the middleware
// chose: the caller's mistakes and normal ends at info, what the operator
// should look at at warn, the server's faults at error.
func codeLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition,
		codes.Aborted, codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// quietMethod is a call logged at debug when it succeeds: reflection
// (grpcurl asks for descriptors before every call) and health probes (a
// supervisor asks every few seconds) would otherwise drown the calls that
// matter.
func quietMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.reflection.") || strings.HasPrefix(fullMethod, "/grpc.health.")
}

// logCall writes the call's one line when it has finished.
func logCall(ctx context.Context, l *slog.Logger, fullMethod, kind string, start time.Time, err error) {
	code := status.Code(err)
	level := codeLevel(code)
	if level == slog.LevelInfo && quietMethod(fullMethod) {
		level = slog.LevelDebug
	}
	if !l.Enabled(ctx, level) {
		return
	}
	service, method := splitMethod(fullMethod)
	attrs := make([]slog.Attr, 0, 12)
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		attrs = append(attrs, slog.String("request_id", ci.id))
		if ci.tier != "" {
			attrs = append(attrs, slog.String("tier", ci.tier))
		}
		if ci.cache != "" {
			attrs = append(attrs, slog.String("cache", ci.cache))
		}
	}
	attrs = append(attrs,
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", kind),
	)
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.Time("grpc.request.deadline", d))
	}
	attrs = append(attrs, slog.String("grpc.code", code.String()))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	attrs = append(attrs, slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000))
	l.LogAttrs(ctx, level, "finished call", attrs...)
}

// splitMethod splits "/pkg.Service/Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func unaryLogging(l *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		logCall(ctx, l, info.FullMethod, "unary", start, err)
		return resp, err
	}
}

func streamLogging(l *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		kind := "bidi_stream"
		switch {
		case info.IsClientStream && !info.IsServerStream:
			kind = "client_stream"
		case info.IsServerStream && !info.IsClientStream:
			kind = "server_stream"
		}
		logCall(ss.Context(), l, info.FullMethod, kind, start, err)
		return err
	}
}

// unaryValidation refuses a request whose bytes the codec could not take
// as sent (not protobuf at all, invalid UTF-8 in a field) before any
// handler runs. Classify converts and checks the rest itself.
func (s *Server) unaryValidation(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if ferr := codecError(m); ferr != nil {
			s.stats.invalid.Add(1)
			return nil, ferr.status().Err()
		}
	}
	return h(ctx, req)
}

// streamValidation refuses a message the codec could not decode on the
// streams that have no per-item error entries (reflection, health watch).
// ClassifyBatch checks each of its items itself.
func streamValidation(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if info.FullMethod == pb.SentimentService_ClassifyBatch_FullMethodName {
		return h(srv, ss)
	}
	return h(srv, validatingStream{ss})
}

type validatingStream struct{ grpc.ServerStream }

func (s validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		if ferr := codecError(pm); ferr != nil {
			return ferr.status().Err()
		}
	}
	return nil
}

func stack() []byte { return debug.Stack() }
