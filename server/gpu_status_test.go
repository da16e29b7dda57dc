package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
)

// TestGPUStatusFromFakeSysfs wires the GPU manager as main does, over the
// fake sysfs tree of one RX 6800 and a fake Ollama, and reads GPUStatus
// through gRPC.
func TestGPUStatusFromFakeSysfs(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	client := startWithGPU(t, local)

	// Wait for the warm-up at start to open the gate.
	var st *pb.GPUStatusResponse
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err = client.GPUStatus(ctxT(t), &pb.GPUStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetLocalAdmitting() && len(st.GetDevices()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local tier never opened: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := st.GetDevices()[0]
	if st.GetReader() != "sysfs" || d.GetVendor() != "amd" || d.GetVramTotalBytes() != 17163091968 || d.GetVramUsedBytes() != 5637144576 ||
		d.GetVramFreeBytes() != 17163091968-5637144576 || d.GetBusyPercent() != 37 || d.GetTemperatureCelsius() != 52 {
		t.Errorf("device %v, want the fake RX 6800's figures", d)
	}
	if st.GetPressure() != pb.PressureLevel_PRESSURE_LEVEL_NORMAL || st.GetPressureCard() != "0000:03:00.0" || st.GetReaderError() != "" {
		t.Errorf("status %v, want normal pressure on card 0000:03:00.0 and no reader error", st)
	}
	if m := st.GetModel(); m.GetName() != "mistral" || !m.GetWarm() || !m.GetLoaded() {
		t.Errorf("model %v, want mistral warm and loaded", m)
	}
	// LLM_MAX_CONCURRENT is 5: the queue's limit and the manager's
	// ceiling both start there.
	if q := st.GetQueue(); q.GetLimit() != 5 || q.GetCeiling() != 5 || st.GetGpuConcurrency() != 5 || st.GetRecoveryPhase() != "open" {
		t.Errorf("queue %v, concurrency %d, phase %q; want limit and ceiling 5, 5 allowed, the gate open", q, st.GetGpuConcurrency(), st.GetRecoveryPhase())
	}

	// The local tier now answers through the gate.
	resp, err := client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme raises full-year guidance after record orders"}})
	if err != nil || resp.GetProvenance().GetTier() != pb.Tier_TIER_LOCAL {
		t.Fatalf("Classify: %v %v, want the local tier's answer", resp, err)
	}
}

// startWithGPU runs the service as main does, through its composition
// root, with the GPU manager over the fake sysfs tree of one RX 6800 and
// local as the Ollama server, and returns a client of it.
func startWithGPU(t *testing.T, local *upstreamtest.Fake) pb.SentimentServiceClient {
	t.Helper()
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
	cfg.GPUReader, cfg.GPUSysfsRoot = "sysfs", filepath.Join("..", "gpu", "testdata", "sysfs", "rx6800")
	cfg.GPU.PollInterval = 50 * time.Millisecond
	a, err := app.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return pb.NewSentimentServiceClient(conn)
}

// waitAdmitting polls GPUStatus, within a bound, until the local tier
// admits work.
func waitAdmitting(t *testing.T, client pb.SentimentServiceClient) *pb.GPUStatusResponse {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, err := client.GPUStatus(ctxT(t), &pb.GPUStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetLocalAdmitting() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local tier did not open: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunnerCrashMidBatch: the model runner crashes in the middle of a
// batch. The batch completes (items judged meanwhile go to the lexicon,
// degraded), the manager reloads the model and the gate reopens.
func TestRunnerCrashMidBatch(t *testing.T) {
	const items = 200
	local := upstreamtest.New(t, upstreamtest.Ollama)
	var loads atomic.Int64
	local.OnLoad(func(string) { loads.Add(1) })
	// The fake sysfs tree is read-only, so VRAM cannot be seen to drop after
	// the unload; a model that holds none makes the check pass at once (the
	// gpu package's tests cover VRAM that does not come back).
	local.SetModelSize(0, 0)
	client := startWithGPU(t, local)
	waitAdmitting(t, client)
	loadsBefore := loads.Load()

	var calls atomic.Int64
	local.SetDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
		if calls.Add(1) == items/2 {
			upstreamtest.OllamaRunnerTerminated()(c)
			return
		}
		upstreamtest.Answer(upstreamtest.BullishJSON)(c)
	}))
	stream, err := client.ClassifyBatch(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range items {
			if err := stream.Send(&pb.ClassifyBatchRequest{Item: &pb.NewsItem{Id: fmt.Sprint(i), Title: "Acme raises full-year guidance after record orders"}}); err != nil {
				return
			}
		}
		_ = stream.CloseSend()
	}()
	answered := map[string]bool{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetError() != nil || answered[resp.GetId()] {
			t.Fatalf("%s: %v (answered before: %v)", resp.GetId(), resp, answered[resp.GetId()])
		}
		answered[resp.GetId()] = true
	}
	if len(answered) != items {
		t.Fatalf("%d of %d items answered", len(answered), items)
	}
	st := waitAdmitting(t, client)
	if st.GetCleanups() < 1 || !strings.Contains(st.GetLastCleanupReason(), "runner") || loads.Load() <= loadsBefore {
		t.Errorf("after the crash: %d cleanups (last %q), %d loads after start; want the model reloaded after a runner crash",
			st.GetCleanups(), st.GetLastCleanupReason(), loads.Load()-loadsBefore)
	}
	// The crash halved the queue's adaptive limit (grown back since): what is allowed is the
	// smaller of it and the ceiling, and GPUStatus says so.
	q := st.GetQueue()
	if q.GetHalvings() < 1 || q.GetStarted() == 0 || st.GetGpuConcurrency() != min(q.GetLimit(), q.GetCeiling()) {
		t.Errorf("queue %v, concurrency %d; want a halving after the crash and the smaller of limit and ceiling allowed", q, st.GetGpuConcurrency())
	}
}

// TestCleanupGPU: the owner's cleanup runs once; asked again at once it is
// refused (running, or too soon), with a retry delay when too soon.
func TestCleanupGPU(t *testing.T) {
	local := upstreamtest.New(t, upstreamtest.Ollama)
	var unloads atomic.Int64
	local.OnUnload(func(string) { unloads.Add(1) })
	// A model that holds no VRAM: the fake sysfs tree cannot show it freed.
	local.SetModelSize(0, 0)
	client := startWithGPU(t, local)
	waitAdmitting(t, client)
	ctx := ctxT(t)
	if _, err := client.CleanupGPU(ctx, &pb.CleanupGPURequest{Reason: strings.Repeat("x", 201)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a long reason: %v", err)
	}
	if _, err := client.CleanupGPU(ctx, &pb.CleanupGPURequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	_, err := client.CleanupGPU(ctx, &pb.CleanupGPURequest{Reason: "again"})
	if c := status.Code(err); c != codes.Aborted && c != codes.ResourceExhausted {
		t.Errorf("asked again at once: %v, want ABORTED or RESOURCE_EXHAUSTED", err)
	}
	st := waitAdmitting(t, client)
	if !strings.Contains(st.GetLastCleanupReason(), "asked for: test") || unloads.Load() != 1 {
		t.Errorf("last cleanup %q, %d unloads; want the one asked for", st.GetLastCleanupReason(), unloads.Load())
	}
	_, err = client.CleanupGPU(ctx, &pb.CleanupGPURequest{Reason: "too soon"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("within a minute: %v, want RESOURCE_EXHAUSTED", err)
	}
	var retry *errdetails.RetryInfo
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("no retry delay in %v", status.Convert(err).Details())
	}
}

func TestCleanupGPUWithoutManager(t *testing.T) {
	ts := start(t, testConfig())
	if _, err := ts.client.CleanupGPU(ctxT(t), &pb.CleanupGPURequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("without a GPU manager: %v, want FAILED_PRECONDITION", err)
	}
}
