package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/pipeline"
)

// maxReasonChars bounds a cleanup's reason: it goes to the log and to
// GPUStatus.
const maxReasonChars = 200

// CleanupGPU asks the GPU manager for an unload and reload of the local
// model now: an admin call, authenticated like the rest, refused while a
// cleanup runs and within a minute of the last one asked for.
func (s *Server) CleanupGPU(ctx context.Context, req *pb.CleanupGPURequest) (*pb.CleanupGPUResponse, error) {
	if ferr := codecError(req); ferr != nil {
		return nil, ferr.status().Err()
	}
	reason := req.GetReason()
	if reason == "" {
		reason = "no reason given"
	}
	if ferr := pipeline.CheckText("reason", reason, maxReasonChars, false); ferr != nil {
		return nil, (&fieldError{ferr}).status().Err()
	}
	if s.gpu == nil {
		return nil, status.Error(codes.FailedPrecondition, "no GPU manager runs: it needs the local Ollama tier (LLM_LOCAL_ENABLED=1, SENTIMENT_LOCAL_API=ollama)")
	}
	err := s.gpu.RequestCleanup(reason + " (request " + requestID(ctx) + ")")
	var busy *gpu.CleanupBusyError
	var soon *gpu.CleanupTooSoonError
	switch {
	case errors.Is(err, gpu.ErrNoModelServer):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &busy):
		return nil, status.Error(codes.Aborted, err.Error())
	case errors.As(err, &soon):
		st := status.New(codes.ResourceExhausted, err.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(soon.RetryAfter.Round(time.Second))}); derr == nil {
			st = d
		}
		return nil, st.Err()
	case err != nil:
		return nil, status.Error(codes.Internal, "internal error")
	}
	s.log.InfoContext(ctx, "GPU cleanup asked for", "reason", reason)
	return &pb.CleanupGPUResponse{Phase: s.gpu.Status().Phase}, nil
}
