// Command echod is the baseline for Classify's throughput: a bare gRPC
// server that answers every Classify with the same bytes sentimentd would
// send for the benchmark request, without interceptors or any work.
// scripts/bench-ghz.sh measures both with ghz in one run; the gap is what
// the service's own path costs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
)

type echo struct {
	pb.UnimplementedSentimentServiceServer
	resp *pb.ClassifyResponse
}

func (e *echo) Classify(context.Context, *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	return e.resp, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	reqJSON := flag.String("d", `{"item":{"id":"1","ticker":"ACME","title":"Acme soars after FDA approval of its cancer drug"}}`, "the benchmark request, as JSON")
	flag.Parse()
	if err := run(*addr, *reqJSON); err != nil {
		fmt.Fprintln(os.Stderr, "echod:", err)
		os.Exit(1)
	}
}

func run(addr, reqJSON string) error {
	var req pb.ClassifyRequest
	if err := protojson.Unmarshal([]byte(reqJSON), &req); err != nil {
		return fmt.Errorf("parsing -d: %w", err)
	}
	resp, err := realAnswer(&req)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	pb.RegisterSentimentServiceServer(s, &echo{resp: resp})
	reflection.Register(s)
	fmt.Printf("LISTENING %s\n", lis.Addr())
	fmt.Fprintf(os.Stderr, "echod: answering %d-byte responses\n", proto.Size(resp))
	return s.Serve(lis)
}

// realAnswer asks a real sentimentd, built by the service's composition
// root and started in-process, once.
func realAnswer(req *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	cfg := config.Default()
	cfg.Local.Enabled = false // the benchmark measures the lexicon path
	ctx := context.Background()
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	defer a.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = a.Server().Serve(lis) }()
	defer a.Server().Shutdown(ctx)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return pb.NewSentimentServiceClient(conn).Classify(ctx, req)
}
