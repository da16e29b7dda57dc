package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
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

// withRequestID takes the caller's x-request-id (when sane) or makes one,
// and echoes it in the response header.
func withRequestID(ctx context.Context) context.Context {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDHeader); len(v) > 0 && len(v[0]) <= 128 && pipeline.CheckText("", v[0], 128, true) == nil {
			id = v[0]
		}
	}
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	return context.WithValue(ctx, callInfoKey{}, &callInfo{id: id})
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

// logOptions log one line per RPC when it finishes (info, or warn/error by
// code), with the request id. Fields that are the same on every line of a
// gRPC-only server are left out: each costs time on every call.
func logOptions() []logging.Option {
	return []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithDisableLoggingFields(logging.SystemTag[0], logging.ComponentFieldKey),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			ci, ok := ctx.Value(callInfoKey{}).(*callInfo)
			if !ok {
				return nil
			}
			f := logging.Fields{"request_id", ci.id}
			if ci.tier != "" {
				f = append(f, "tier", ci.tier)
			}
			if ci.cache != "" {
				f = append(f, "cache", ci.cache)
			}
			return f
		}),
	}
}

// slogAdapter lets the middleware log through our slog.Logger. A quiet
// adapter logs at debug what would be info.
func slogAdapter(l *slog.Logger, quiet bool) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		level := slog.Level(lvl)
		if quiet && level == slog.LevelInfo {
			level = slog.LevelDebug
		}
		l.Log(ctx, level, msg, fields...)
	})
}

// quietMethod is a call logged at debug when it succeeds: reflection
// (grpcurl asks for descriptors before every call) and health probes (a
// supervisor asks every few seconds) would otherwise drown the calls that
// matter.
func quietMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.reflection.") || strings.HasPrefix(fullMethod, "/grpc.health.")
}

func unaryLogging(l *slog.Logger) grpc.UnaryServerInterceptor {
	loud := logging.UnaryServerInterceptor(slogAdapter(l, false), logOptions()...)
	quiet := logging.UnaryServerInterceptor(slogAdapter(l, true), logOptions()...)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if quietMethod(info.FullMethod) {
			return quiet(ctx, req, info, h)
		}
		return loud(ctx, req, info, h)
	}
}

func streamLogging(l *slog.Logger) grpc.StreamServerInterceptor {
	loud := logging.StreamServerInterceptor(slogAdapter(l, false), logOptions()...)
	quiet := logging.StreamServerInterceptor(slogAdapter(l, true), logOptions()...)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if quietMethod(info.FullMethod) {
			return quiet(srv, ss, info, h)
		}
		return loud(srv, ss, info, h)
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
