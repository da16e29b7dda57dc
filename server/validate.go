package server

import (
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/pipeline"
)

// fieldError is bad input in one field, found by the pipeline's rules or
// by the conversion from the wire. It becomes INVALID_ARGUMENT with a
// BadRequest detail naming the field, or an ItemError on a batch stream.
type fieldError struct{ *pipeline.FieldError }

func newFieldError(field, msg string) *fieldError {
	return &fieldError{&pipeline.FieldError{Field: field, Msg: msg}}
}

// status converts the error for the wire.
func (e *fieldError) status() *status.Status {
	st := status.New(codes.InvalidArgument, e.Error())
	if d, err := st.WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: e.Field, Description: e.Msg}},
	}); err == nil {
		return d
	}
	return st
}

func (e *fieldError) itemError() *pb.ItemError {
	return &pb.ItemError{Code: int32(codes.InvalidArgument), Message: e.Error(), Field: e.Field}
}
