// Command proxyd is the baseline for Classify through a model: a bare gRPC
// server that forwards each Classify as one OpenAI-compatible chat call
// to a model server and answers with its label, with nothing else on the
// way: no validation, lexicon, prompt template, breaker, quota, queue,
// cache or log. scripts/load.sh measures it and sentimentd against the
// same simulated model in one run; the gap is what the service's model
// path costs.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

type proxy struct {
	pb.UnimplementedSentimentServiceServer
	url   string
	model string
	hc    *http.Client
}

type chatRequest struct {
	Model       string    `json:"model"`
	Messages    []message `json:"messages"`
	Temperature float64   `json:"temperature"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatResponse struct {
	Choices []struct {
		Message message `json:"message"`
	} `json:"choices"`
}

type answer struct {
	Label      string  `json:"label"`
	Score      float64 `json:"score"`
	Confidence float64 `json:"confidence"`
	Rationale  string  `json:"rationale"`
}

var labels = map[string]pb.Label{"bullish": pb.Label_LABEL_BULLISH, "bearish": pb.Label_LABEL_BEARISH, "neutral": pb.Label_LABEL_NEUTRAL}

func (p *proxy) Classify(ctx context.Context, req *pb.ClassifyRequest) (*pb.ClassifyResponse, error) {
	body, err := json.Marshal(chatRequest{Model: p.model, Messages: []message{
		{Role: "system", Content: "Judge the financial news item. Answer with JSON: label, score, confidence, rationale."},
		{Role: "user", Content: req.GetItem().GetTitle()},
	}})
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(hreq)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	defer resp.Body.Close()
	var cr chatResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil || len(cr.Choices) == 0 {
		return nil, status.Errorf(codes.Unavailable, "model answered %s", resp.Status)
	}
	var a answer
	if err := json.Unmarshal([]byte(cr.Choices[0].Message.Content), &a); err != nil {
		return nil, status.Errorf(codes.Unavailable, "model answer: %v", err)
	}
	return &pb.ClassifyResponse{Id: req.GetItem().GetId(), Label: labels[a.Label], Score: a.Score, Confidence: a.Confidence, Rationale: a.Rationale}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:11500", "OpenAI-compatible model server")
	model := flag.String("model", "sim", "model name")
	flag.Parse()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxyd:", err)
		os.Exit(1)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	s := grpc.NewServer()
	pb.RegisterSentimentServiceServer(s, &proxy{url: *upstream, model: *model, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}})
	reflection.Register(s)
	fmt.Printf("LISTENING %s\n", lis.Addr())
	if err := s.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "proxyd:", err)
		os.Exit(1)
	}
}
