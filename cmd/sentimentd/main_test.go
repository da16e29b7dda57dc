package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/logtest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
)

func TestBadSettingStopsStartupWithOneLine(t *testing.T) {
	var stderr strings.Builder
	env := map[string]string{"LLM_MAX_CONCURRENT": "0"}
	code := run(nil, func(k string) string { return env[k] }, io.Discard, &stderr)
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	want := "sentimentd: setting LLM_MAX_CONCURRENT=\"0\": must be an integer from 1 to 64\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}

// TestServesUntilSignalled runs the binary's whole start-up against fakes
// of everything outside it: a fake Ollama (warmed at start, then judging)
// and a fake sysfs tree of one RX 6800; nothing of the real machine is
// read. It serves, answers from the local model, and stops on SIGTERM.
func TestServesUntilSignalled(t *testing.T) {
	ollama := upstreamtest.New(t, upstreamtest.Ollama)
	env := map[string]string{
		"SENTIMENT_GRPC_ADDR": "127.0.0.1:0", "SENTIMENT_SHUTDOWN_GRACE": "5", "SENTIMENT_METRICS_ADDR": "127.0.0.1:0",
		"LLM_ENDPOINT_URL": ollama.URL, "SENTIMENT_GPU_READER": "sysfs",
		"SENTIMENT_GPU_SYSFS_ROOT":    filepath.Join("..", "..", "gpu", "testdata", "sysfs", "rx6800"),
		"SENTIMENT_GPU_POLL_INTERVAL": "0.1",
	}
	stdout, w := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- run(nil, func(k string) string { return env[k] }, w, io.Discard)
		w.Close()
	}()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
	if !ok {
		t.Fatalf("first line %q, want LISTENING host:port", line)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("LISTENING %q: %v", addr, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "catalyst.sentiment.v1.SentimentService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	// The manager warms the model in the background; the local tier
	// answers once it has.
	client := pb.NewSentimentServiceClient(conn)
	for {
		st, err := client.GPUStatus(ctx, &pb.GPUStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetLocalAdmitting() {
			if st.GetReader() != "sysfs" || len(st.GetDevices()) != 1 {
				t.Errorf("GPUStatus %v, want the fake RX 6800 read through sysfs", st)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the local tier never opened: %v", st)
		case <-time.After(20 * time.Millisecond):
		}
	}
	answer, err := client.Classify(ctx, &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme raises full-year guidance"}})
	if err != nil || answer.GetProvenance().GetTier() != pb.Tier_TIER_LOCAL {
		t.Fatalf("Classify: %v %v, want the local model's answer", answer.GetProvenance(), err)
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
	case <-ctx.Done():
		t.Fatal("server did not stop after SIGTERM")
	}
}

// TestStartupErrorsExit2 checks the line and status of settings found bad
// only when put to work.
func TestStartupErrorsExit2(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"address in use", map[string]string{"SENTIMENT_GRPC_ADDR": busy.Addr().String()},
			fmt.Sprintf("sentimentd: setting SENTIMENT_GRPC_ADDR=%q: must be an address this host can listen on (bind: address already in use)\n", busy.Addr().String())},
		{"metrics address in use", map[string]string{"SENTIMENT_GRPC_ADDR": "127.0.0.1:0", "SENTIMENT_METRICS_ADDR": busy.Addr().String()},
			fmt.Sprintf("sentimentd: setting SENTIMENT_METRICS_ADDR=%q: must be an address this host can listen on (bind: address already in use)\n", busy.Addr().String())},
		{"tls file", map[string]string{"SENTIMENT_TLS_CERT": "/nonexistent/cert.pem", "SENTIMENT_TLS_KEY": "/nonexistent/key.pem"},
			"sentimentd: setting SENTIMENT_TLS_CERT=\"/nonexistent/cert.pem\": must be a readable PEM certificate file (no such file or directory)\n"},
		{"redis url", map[string]string{"REDIS_URL": "redis://:hunter2@cache:6379/x"},
			"sentimentd: setting REDIS_URL=\"redis://:xxxxx@cache:6379/x\": must be a Redis URL such as redis://localhost:6379/0 or rediss://:password@host:6380/0 (invalid database number: \"x\")\n"},
		{"claude 5", map[string]string{"ANTHROPIC_API_KEY": "sk-ant-test", "SENTIMENT_ANTHROPIC_MODEL": "claude-haiku-5-5"},
			"sentimentd: setting SENTIMENT_ANTHROPIC_MODEL=\"claude-haiku-5-5\": Claude 5-generation models reject the forced tool use and temperature 0 this service sends; use claude-haiku-4-5 or another 4.x model\n"},
		{"blank token", map[string]string{"SENTIMENT_AUTH_TOKENS": " "},
			"sentimentd: setting SENTIMENT_AUTH_TOKENS=\"[redacted]\": must be comma-separated bearer tokens of at least 16 characters; entry 1 of 1 is blank\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["LLM_LOCAL_ENABLED"] = "0"
			var stderr strings.Builder
			if code := run(nil, func(k string) string { return tt.env[k] }, io.Discard, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if stderr.String() != tt.want {
				t.Errorf("stderr\n  %q\nwant\n  %q", stderr.String(), tt.want)
			}
		})
	}
}

// TestUnreachableRedisIsSaidAtStart: a Redis that cannot be reached is one
// warning line at start-up, before any call, in the service's log format.
func TestUnreachableRedisIsSaidAtStart(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	env := map[string]string{
		"SENTIMENT_GRPC_ADDR": "127.0.0.1:0", "SENTIMENT_METRICS_ADDR": "", "LLM_LOCAL_ENABLED": "0", "SENTIMENT_LOG_FORMAT": "json",
		"REDIS_URL": "redis://:hunter2@" + addr + "/0",
	}
	stdout, w := io.Pipe()
	var stderr logtest.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(nil, func(k string) string { return env[k] }, w, &stderr)
		w.Close()
	}()
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	// LISTENING is printed after the check: the warning is already out.
	out := stderr.String()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := <-exited; code != 0 {
		t.Errorf("exit code %d", code)
	}
	if n := strings.Count(out, "quota store unreachable"); n != 1 {
		t.Errorf("%d warnings about Redis at start, want 1:\n%s", n, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("a line not in the service's JSON format: %q", line)
		}
	}
	if strings.Contains(stderr.String(), "hunter2") {
		t.Errorf("the log shows the Redis password:\n%s", stderr.String())
	}
}
