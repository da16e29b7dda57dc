package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

func TestServesUntilSignalled(t *testing.T) {
	stdout, w := io.Pipe()
	env := map[string]string{"SENTIMENT_GRPC_ADDR": "127.0.0.1:0", "SENTIMENT_SHUTDOWN_GRACE": "5"}
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
