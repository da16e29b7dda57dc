package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/server"
)

var deadlineSeed = flag.Uint64("deadline-seed", 0, "seed of TestThousandShortDeadlinesAgainstAHungModel (0: a new one)")

// bubbleServer is a server whose upstreams are in-memory fakes and whose
// client reaches it over bufconn: everything runs inside a synctest
// bubble, so deadlines pass on virtual time and the test asserts, from the
// client's side, when each answer arrived.
type bubbleServer struct {
	srv    *server.Server
	client pb.SentimentServiceClient
	conn   *grpc.ClientConn
	done   chan error
	local  *upstreamtest.Fake
	gemini *upstreamtest.Fake
}

// startBubble builds the service as it runs from cfg, by its composition
// root, with its upstreams' HTTP clients reaching the in-memory fakes and
// no VRAM reader; the GPU manager is built but not run, its gate open.
func startBubble(t *testing.T, cfg config.Config) *bubbleServer {
	t.Helper()
	b := &bubbleServer{
		local:  upstreamtest.NewMemory(t, upstreamtest.Ollama),
		gemini: upstreamtest.NewMemory(t, upstreamtest.Gemini),
		done:   make(chan error, 1),
	}
	cfg.Local.Endpoint, cfg.Gemini.BaseURL = b.local.URL, b.gemini.URL
	cfg.GPU.Warmup = false
	clients := map[string]*http.Client{app.UpstreamLocal: b.local.Client(), app.UpstreamGemini: b.gemini.Client()}
	a, err := app.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)),
		app.WithHTTPClient(func(name string) *http.Client { return clients[name] }), app.WithGPUReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b.srv = a.Server()
	lis := bufconn.Listen(1 << 20)
	go func() { b.done <- b.srv.Serve(lis) }()
	b.conn, err = grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	b.client = pb.NewSentimentServiceClient(b.conn)
	return b
}

// stop shuts the server down inside the bubble; every goroutine it
// started must end before the bubble does.
func (b *bubbleServer) stop(t *testing.T) {
	t.Helper()
	b.conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
	if err := <-b.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// hungConfig is the owner's frozen GPU: the local tier enabled in front of
// a model server that accepts every call and never answers.
func hungConfig(withGemini bool) config.Config {
	cfg := testConfig()
	cfg.Local.Enabled = true
	// Every call meets the hang; breakers and GPU cleanups have their own
	// tests.
	cfg.Breaker.Failures, cfg.GPU.MaxFailures = 1000, 1000
	if withGemini {
		cfg.Gemini.APIKey = "gemini-key"
	}
	return cfg
}

// TestAnswersBeforeTheDeadline: against a hung local model, or a slow one
// (4 s an answer), with and without a healthy or hung cloud tier and with
// and without require_llm, the caller gets its answer strictly before its
// deadline, whatever the deadline: the model's when it had time to give
// it, Gemini's when Gemini is healthy and there is time for it, else the
// lexicon's, degraded, or UNAVAILABLE for require_llm. Never
// DEADLINE_EXCEEDED.
func TestAnswersBeforeTheDeadline(t *testing.T) {
	deadlines := []time.Duration{300 * time.Millisecond, time.Second, 3 * time.Second, 5 * time.Second, 10 * time.Second, 0}
	for _, slow := range []bool{false, true} {
		for _, cloud := range []string{"no cloud", "gemini healthy", "gemini hung"} {
			for _, d := range deadlines {
				for _, requireLLM := range []bool{false, true} {
					local, deadline := "local hung", d.String()
					if slow {
						local = "local 4s"
					}
					if d == 0 {
						deadline = "none"
					}
					t.Run(fmt.Sprintf("%s/%s/deadline %s/require_llm %v", local, cloud, deadline, requireLLM), func(t *testing.T) {
						synctest.Test(t, func(t *testing.T) {
							answersBeforeTheDeadline(t, slow, cloud, d, requireLLM)
						})
					})
				}
			}
		}
	}
}

func answersBeforeTheDeadline(t *testing.T, slow bool, cloud string, d time.Duration, requireLLM bool) {
	cfg := hungConfig(cloud != "no cloud")
	b := startBubble(t, cfg)
	defer b.stop(t)
	b.local.SetDefault(upstreamtest.Hang())
	if slow {
		b.local.SetDefault(upstreamtest.Delay(4*time.Second, upstreamtest.Answer(upstreamtest.BullishJSON)))
	}
	if cloud == "gemini hung" {
		b.gemini.SetDefault(upstreamtest.Hang())
	}
	ctx := context.Background()
	limit := cfg.DefaultDeadline
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
		limit = d
	}
	start := time.Now()
	resp, err := b.client.Classify(ctx, &pb.ClassifyRequest{
		Item:    &pb.NewsItem{Id: "n1", Ticker: "ACME", Title: "Acme raises full-year guidance"},
		Options: &pb.ClassifyOptions{RequireLlm: requireLLM},
	})
	took := time.Since(start)
	if took >= limit {
		t.Fatalf("answered after %v of a %v deadline (%v)", took, limit, err)
	}
	// The slow model answers when its share of the deadline holds 4s:
	// alone, the deadline less the answer margin; before a cloud tier,
	// what is left after keeping that tier its 2s.
	localAnswers := slow && (d == 0 || d == 10*time.Second || (cloud == "no cloud" && d == 5*time.Second))
	geminiAnswers := cloud == "gemini healthy" && d != 300*time.Millisecond
	switch {
	case localAnswers:
		if err != nil || resp.GetProvenance().GetTier() != pb.Tier_TIER_LOCAL {
			t.Fatalf("%v %v, want the slow model's answer: it had time for it", resp.GetProvenance(), err)
		}
	case geminiAnswers:
		if err != nil || resp.GetProvenance().GetTier() != pb.Tier_TIER_GEMINI {
			t.Fatalf("%v %v, want Gemini's answer: it was healthy and had its share of the deadline", resp.GetProvenance(), err)
		}
	case requireLLM:
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("require_llm: %v, want UNAVAILABLE", err)
		}
	default:
		if err != nil || !resp.GetProvenance().GetDegraded() || resp.GetLabel() != pb.Label_LABEL_BULLISH {
			t.Fatalf("%v %v, want the lexicon's bullish answer, degraded", resp, err)
		}
	}
}

// TestThousandShortDeadlinesAgainstAHungModel: a thousand calls at once
// with deadlines from 0.3 to 3 s against a model server that never
// answers, and a shutdown in the middle of them with a short grace: every
// call is answered inside its deadline, none with DEADLINE_EXCEEDED, and
// those still waiting when the grace runs out get their lexicon answer.
func TestThousandShortDeadlinesAgainstAHungModel(t *testing.T) {
	seed := *deadlineSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -deadline-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	deadlines := make([]time.Duration, 1000)
	for i := range deadlines {
		deadlines[i] = 300*time.Millisecond + time.Duration(rng.Int64N(int64(2700*time.Millisecond)))
	}
	synctest.Test(t, func(t *testing.T) {
		cfg := hungConfig(false)
		cfg.ShutdownGrace = 500 * time.Millisecond
		b := startBubble(t, cfg)
		b.local.SetDefault(upstreamtest.Hang())

		var (
			wg                 sync.WaitGroup
			mu                 sync.Mutex
			answered, shutdown int
			failures           []string
		)
		for i, d := range deadlines {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), d)
				defer cancel()
				start := time.Now()
				resp, err := b.client.Classify(ctx, &pb.ClassifyRequest{Item: &pb.NewsItem{Id: fmt.Sprint(i), Title: "Acme beats estimates"}})
				took := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					failures = append(failures, fmt.Sprintf("call %d (deadline %v): %v after %v", i, d, err, took))
				case took >= d:
					failures = append(failures, fmt.Sprintf("call %d: answered after %v of %v", i, took, d))
				case !resp.GetProvenance().GetDegraded():
					failures = append(failures, fmt.Sprintf("call %d: %v, want a degraded answer", i, resp.GetProvenance()))
				default:
					answered++
					if strings.Contains(resp.GetProvenance().GetReason(), "shutting down") {
						shutdown++
					}
				}
			})
		}
		// A second in, SIGTERM: calls in flight get the grace, then their
		// lexicon answers.
		time.Sleep(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		b.srv.Shutdown(ctx)
		cancel()
		wg.Wait()
		b.conn.Close()
		if err := <-b.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if len(failures) > 0 {
			t.Fatalf("%d of 1000 calls failed; first: %s", len(failures), failures[0])
		}
		if answered != 1000 || shutdown == 0 {
			t.Fatalf("answered %d (%d at shutdown), want all 1000 with some answered at shutdown", answered, shutdown)
		}
		t.Logf("1000 answered inside their deadlines, %d of them when the shutdown grace ran out", shutdown)
	})
}

// TestShutdownAnswersEveryAcceptedItem: SIGTERM during a batch against a
// hung model. When the grace runs out, every item the stream accepted is
// answered exactly once, from the lexicon, saying the server is shutting
// down, and the stream then ends with a status that says why.
func TestShutdownAnswersEveryAcceptedItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := hungConfig(false)
		cfg.BatchConcurrency = 16
		b := startBubble(t, cfg)
		b.local.SetDefault(upstreamtest.Hang())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := b.client.ClassifyBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := range 200 {
				if stream.Send(batchItem(fmt.Sprint(i), fmt.Sprintf("Acme beats estimates in region %d", i))) != nil {
					return
				}
			}
		}()
		// The stream takes 16 items; the GPU queue lets 5 of them reach the
		// model, where they hang, and holds the other 11.
		synctest.Wait()
		if n := b.local.InFlight(); n != cfg.Local.MaxConcurrent {
			t.Fatalf("%d calls in flight at the model, want %d", n, cfg.Local.MaxConcurrent)
		}

		stopped := make(chan struct{})
		go func() {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer scancel()
			b.srv.Shutdown(sctx)
			close(stopped)
		}()
		seen := map[string]int{}
		var end error
		for {
			resp, err := stream.Recv()
			if err != nil {
				end = err
				break
			}
			seen[resp.GetId()]++
			r := resp.GetResult()
			if r == nil || !r.GetProvenance().GetDegraded() || !strings.Contains(r.GetProvenance().GetReason(), "the server is shutting down") {
				t.Errorf("item %s: %v, want its lexicon answer, degraded because the server is shutting down", resp.GetId(), resp)
			}
		}
		if len(seen) != cfg.BatchConcurrency {
			t.Errorf("%d items answered, want the %d accepted", len(seen), cfg.BatchConcurrency)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("item %s answered %d times", id, n)
			}
		}
		if st := status.Convert(end); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "server is shutting down") {
			t.Errorf("stream ended with %v, want UNAVAILABLE saying the server is shutting down", end)
		}
		<-stopped
		b.conn.Close()
		if err := <-b.done; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// TestCancelledCallsAreCountedAsCancelled: callers that hang up while the
// model hangs are counted as cancelled, not as degraded answers nobody
// read, nor as failures.
func TestCancelledCallsAreCountedAsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubble(t, hungConfig(false))
		defer b.stop(t)
		b.local.SetDefault(upstreamtest.Hang())

		ctx, cancel := context.WithCancel(context.Background())
		unary := make(chan error)
		go func() {
			_, err := b.client.Classify(ctx, &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}})
			unary <- err
		}()
		stream, err := b.client.ClassifyBatch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := stream.Send(batchItem(fmt.Sprint(i), "Acme beats estimates")); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // four calls hang at the model
		cancel()
		if err := <-unary; status.Code(err) != codes.Canceled {
			t.Fatalf("unary call: %v, want CANCELED", err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
			t.Fatalf("stream: %v, want CANCELED", err)
		}
		synctest.Wait() // the server's handlers have ended
		st, err := b.client.Stats(context.Background(), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if r := st.GetRequests(); r.GetCancelled() != 4 || r.GetDegraded() != 0 || r.GetFailed() != 0 {
			t.Fatalf("requests %v, want 4 cancelled, none degraded or failed", r)
		}
	})
}

// TestShutdownDrainsBatchInFlight: within the grace, shutdown waits for the
// item being judged, which gets the model's answer, and only then ends the
// stream, saying the server is shutting down.
func TestShutdownDrainsBatchInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := startBubble(t, hungConfig(false))
		b.local.SetDefault(upstreamtest.Delay(2*time.Second, upstreamtest.Answer(upstreamtest.BearishJSON)))
		stream, err := b.client.ClassifyBatch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(batchItem("held", "Acme beats estimates")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the item waits for the model

		stopped := make(chan struct{})
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b.srv.Shutdown(ctx)
			close(stopped)
		}()
		synctest.Wait() // everything waits: the model's answer, and Shutdown for it
		select {
		case <-stopped:
			t.Fatal("Shutdown returned while an item was in flight")
		default:
		}

		resp, err := stream.Recv()
		if err != nil || resp.GetId() != "held" || resp.GetResult().GetProvenance().GetTier() != pb.Tier_TIER_LOCAL {
			t.Fatalf("held item: %v (%v), want the model's answer before the stream ends", resp, err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "server is shutting down") {
			t.Fatalf("end of stream: %v, want UNAVAILABLE saying the server is shutting down", err)
		}
		<-stopped
		b.conn.Close()
		if err := <-b.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}
