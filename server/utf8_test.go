package server_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// rawCodec sends and receives wire bytes as they are: the generated
// clients refuse to encode invalid UTF-8, but other clients can send it.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// rawItem encodes {item: {id, title}} by hand; field 1 is item in both
// ClassifyRequest and ClassifyBatchRequest.
func rawItem(id, title string) []byte {
	var item []byte
	item = protowire.AppendTag(item, 1, protowire.BytesType)
	item = protowire.AppendString(item, id)
	item = protowire.AppendTag(item, 3, protowire.BytesType)
	item = protowire.AppendString(item, title)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	return protowire.AppendBytes(req, item)
}

func TestInvalidUTF8IsInvalidArgument(t *testing.T) {
	ts := start(t, testConfig())
	raw := grpc.ForceCodecV2(rawCodec{})

	t.Run("unary", func(t *testing.T) {
		req, resp := rawItem("u1", "Acme \xff\xfe soars"), []byte(nil)
		err := ts.conn.Invoke(ctxT(t), "/catalyst.sentiment.v1.SentimentService/Classify", &req, &resp, raw)
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || st.Message() != "item.title: must be valid UTF-8" {
			t.Fatalf("status %v %q, want INVALID_ARGUMENT naming item.title", st.Code(), st.Message())
		}
	})

	t.Run("batch item", func(t *testing.T) {
		got := map[string]*pb.ClassifyBatchResponse{}
		for _, resp := range rawBatch(t, ts, rawItem("bad", "Acme \xc3\x28 falls"), rawItem("good", "Acme beats estimates")) {
			got[resp.GetId()] = resp
		}
		if e := got["bad"].GetError(); e.GetField() != "item.title" || e.GetCode() != int32(codes.InvalidArgument) {
			t.Errorf("bad item: %v, want INVALID_ARGUMENT on item.title", got["bad"])
		}
		if got["good"].GetResult() == nil {
			t.Errorf("good item after the bad one: %v, want a result", got["good"])
		}
	})
}

// TestMalformedProtobufIsInvalidArgument: bytes that are not the message
// at all are the caller's fault, on every method, and a bad item on a
// batch stream is an error entry for it alone.
func TestMalformedProtobufIsInvalidArgument(t *testing.T) {
	ts := start(t, testConfig())
	raw := grpc.ForceCodecV2(rawCodec{})
	truncated := rawItem("u1", "Acme beats estimates")
	truncated = truncated[:len(truncated)-5] // a length that runs past the end

	for _, method := range []string{"Classify", "Stats", "GPUStatus"} {
		t.Run(method, func(t *testing.T) {
			req, resp := truncated, []byte(nil)
			err := ts.conn.Invoke(ctxT(t), "/catalyst.sentiment.v1.SentimentService/"+method, &req, &resp, raw)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "request: is not a valid ") {
				t.Fatalf("status %v %q, want INVALID_ARGUMENT saying the request is not a valid message", st.Code(), st.Message())
			}
		})
	}

	t.Run("batch item", func(t *testing.T) {
		var errs, results int
		for _, resp := range rawBatch(t, ts, truncated, rawItem("good", "Acme beats estimates")) {
			if e := resp.GetError(); e != nil {
				errs++
				if e.GetCode() != int32(codes.InvalidArgument) || e.GetField() != "request" {
					t.Errorf("error entry %v, want INVALID_ARGUMENT on the request", e)
				}
			} else if resp.GetId() == "good" {
				results++
			}
		}
		if errs != 1 || results != 1 {
			t.Errorf("%d error entries and %d results, want one of each", errs, results)
		}
	})
}

// rawBatch sends reqs, wire bytes as they are, on one ClassifyBatch stream
// and returns every response until the stream ends.
func rawBatch(t *testing.T, ts *testServer, reqs ...[]byte) []*pb.ClassifyBatchResponse {
	t.Helper()
	desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
	stream, err := ts.conn.NewStream(ctxT(t), desc, "/catalyst.sentiment.v1.SentimentService/ClassifyBatch", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if err := stream.SendMsg(&r); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var out []*pb.ClassifyBatchResponse
	for {
		var b []byte
		if err := stream.RecvMsg(&b); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		resp := &pb.ClassifyBatchResponse{}
		if err := proto.Unmarshal(b, resp); err != nil {
			t.Fatal(err)
		}
		out = append(out, resp)
	}
}
