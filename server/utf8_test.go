package server_test

import (
	"errors"
	"io"
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
		desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
		stream, err := ts.conn.NewStream(ctxT(t), desc, "/catalyst.sentiment.v1.SentimentService/ClassifyBatch", raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range [][]byte{rawItem("bad", "Acme \xc3\x28 falls"), rawItem("good", "Acme beats estimates")} {
			if err := stream.SendMsg(&r); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		got := map[string]*pb.ClassifyBatchResponse{}
		for {
			var b []byte
			if err := stream.RecvMsg(&b); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			var resp pb.ClassifyBatchResponse
			if err := proto.Unmarshal(b, &resp); err != nil {
				t.Fatal(err)
			}
			got[resp.GetId()] = &resp
		}
		if e := got["bad"].GetError(); e.GetField() != "item.title" || e.GetCode() != int32(codes.InvalidArgument) {
			t.Errorf("bad item: %v, want INVALID_ARGUMENT on item.title", got["bad"])
		}
		if got["good"].GetResult() == nil {
			t.Errorf("good item after the bad one: %v, want a result", got["good"])
		}
	})
}
