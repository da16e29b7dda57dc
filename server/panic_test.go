package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/logtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/pipeline"
	"github.com/catalystbot/sentiment/router"
)

// faultyScorer panics, as a bug in the request path would.
type faultyScorer struct{}

func (faultyScorer) Score(string) lexicon.Prescore { panic("scorer fault") }

// TestPanicsBecomeInternal makes judging panic and checks
// that the caller gets INTERNAL with no trace of our insides, the batch
// stream goes on, and the stack reaches our log.
func TestPanicsBecomeInternal(t *testing.T) {
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	// The real request path, over a scorer with a bug.
	rt, err := router.New(router.Config{}, log)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(pipeline.Config{DefaultDeadline: time.Minute}, faultyScorer{}, rt)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{BatchConcurrency: 4}, p, rt, log)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewSentimentServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err = client.Classify(ctx, &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("Classify: %v, want INTERNAL \"internal error\" and nothing more", err)
	}

	stream, err := client.ClassifyBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"p1", "p2"} {
		if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: id, Title: "Acme beats estimates"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	answered := map[string]bool{}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream ended with %v, want it to answer both items", err)
		}
		if e := resp.GetError(); e.GetCode() != int32(codes.Internal) || e.GetMessage() != "internal error" {
			t.Errorf("%s: %v, want an INTERNAL error entry", resp.GetId(), resp)
		}
		answered[resp.GetId()] = true
	}
	if !answered["p1"] || !answered["p2"] {
		t.Errorf("answered %v, want p1 and p2", answered)
	}
	if !strings.Contains(logs.String(), "scorer fault") || !strings.Contains(logs.String(), "goroutine") {
		t.Error("the panic's stack did not reach the log")
	}
}
