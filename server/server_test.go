package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/logtest"
	"github.com/catalystbot/sentiment/internal/tlstest"
	"github.com/catalystbot/sentiment/secret"
	"github.com/catalystbot/sentiment/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServer is a server on a loopback listener and a client connected to
// it.
type testServer struct {
	srv    *server.Server
	conn   *grpc.ClientConn
	client pb.SentimentServiceClient
	addr   string
	done   chan error
}

// testConfig has no model tier enabled: answers come from the lexicon,
// whatever runs on the machine's Ollama port. Nor has it the cache: the
// request-path tests send the same item again on purpose, to see each
// tier's behaviour; the cache's own tests turn it on.
func testConfig() config.Config {
	cfg := config.Default()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.ShutdownGrace = 5 * time.Second
	cfg.Local.Enabled = false
	cfg.Cache = false
	return cfg
}

// start starts the service for a test. It builds no GPU manager: the
// request-path tests script the model server's failures themselves, and
// the manager's cleanups would answer them too (the GPUStatus tests run
// it, startWithGPU).
func start(t *testing.T, cfg config.Config, opts ...app.Option) *testServer {
	return startB(t, cfg, opts...)
}

// startB starts a server for a test or a benchmark.
func startB(t testing.TB, cfg config.Config, opts ...app.Option) *testServer {
	t.Helper()
	return startLogged(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), append(opts, app.WithoutGPUManager())...)
}

// startLogged starts a server, built by the service's composition root,
// that logs to log.
func startLogged(t testing.TB, cfg config.Config, log *slog.Logger, opts ...app.Option) *testServer {
	t.Helper()
	a, err := app.New(t.Context(), cfg, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	srv := a.Server()
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: lis.Addr().String(), done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(lis) }()
	creds := insecure.NewCredentials()
	if cfg.TLSCert != "" {
		creds = clientTLS(t, cfg.TLSCert)
	}
	ts.conn, err = grpc.NewClient(ts.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	ts.client = pb.NewSentimentServiceClient(ts.conn)
	t.Cleanup(func() {
		ts.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-ts.done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClassifyAnswersFromLexicon(t *testing.T) {
	ts := start(t, testConfig())
	tests := []struct {
		title string
		want  pb.Label
	}{
		{"Acme soars after FDA approval of its cancer drug", pb.Label_LABEL_BULLISH},
		{"Acme files for Chapter 11 bankruptcy after missing debt payment", pb.Label_LABEL_BEARISH},
		{"Acme will hold its annual general meeting on May 4", pb.Label_LABEL_NEUTRAL},
	}
	for _, tt := range tests {
		t.Run(tt.title, func(t *testing.T) {
			resp, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Id: "n1", Ticker: "ACME", Title: tt.title}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetLabel() != tt.want {
				t.Errorf("label = %v, want %v (score %.3f, rationale %q)", resp.GetLabel(), tt.want, resp.GetScore(), resp.GetRationale())
			}
			if resp.GetId() != "n1" || resp.GetPhase() != pb.Phase_PHASE_FINAL {
				t.Errorf("id %q phase %v, want n1 and PHASE_FINAL", resp.GetId(), resp.GetPhase())
			}
			p := resp.GetProvenance()
			tiers := p.GetTiers()
			if tt.want == pb.Label_LABEL_NEUTRAL {
				// Too little direction to spend a model on: the prefilter answers.
				if !p.GetPrefiltered() || p.GetDegraded() || len(tiers) != 1 || tiers[0].GetTier() != pb.Tier_TIER_LEXICON {
					t.Errorf("provenance = %v, want prefiltered by the lexicon alone", p)
				}
				return
			}
			if p.GetTier() != pb.Tier_TIER_LEXICON || len(tiers) != 4 || tiers[3].GetTier() != pb.Tier_TIER_LEXICON || tiers[3].GetOutcome() != pb.Outcome_OUTCOME_OK {
				t.Fatalf("provenance = %v, want the three model tiers skipped, then the lexicon with outcome OK", p)
			}
			for _, a := range tiers[:3] {
				if a.GetOutcome() != pb.Outcome_OUTCOME_SKIPPED || !strings.HasPrefix(a.GetDetail(), "disabled: ") || a.GetAttempts() != 0 {
					t.Errorf("tier %v: %v, want skipped as disabled with no call", a.GetTier(), a)
				}
			}
			if p.GetLatency() == nil {
				t.Error("provenance has no latency")
			}
			if !p.GetDegraded() || !strings.Contains(p.GetReason(), "no language model could judge the item: local: skipped (disabled: LLM_LOCAL_ENABLED=0)") {
				t.Errorf("degraded %v reason %q, want a degraded answer that says no model tier could judge it", p.GetDegraded(), p.GetReason())
			}
			if resp.GetPrescore() == nil || resp.GetPrescore().GetScore() != resp.GetScore() {
				t.Errorf("prescore %v does not carry the answer's score %v", resp.GetPrescore(), resp.GetScore())
			}
			if tt.want != pb.Label_LABEL_NEUTRAL && len(resp.GetPrescore().GetHits()) == 0 {
				t.Errorf("no keyword hits for %q", tt.title)
			}
			if c := resp.GetConfidence(); c < 0 || c > 1 {
				t.Errorf("confidence %v outside [0,1]", c)
			}
		})
	}
}

func TestClassifyRejectsBadInput(t *testing.T) {
	ts := start(t, testConfig())
	item := func(mod func(*pb.NewsItem)) *pb.NewsItem {
		it := &pb.NewsItem{Id: "x", Ticker: "ACME", Title: "Acme beats estimates"}
		mod(it)
		return it
	}
	minPre := func(v float64) *float64 { return &v }
	tests := []struct {
		name      string
		req       *pb.ClassifyRequest
		field     string
		inMessage string
	}{
		{"no item", &pb.ClassifyRequest{}, "item", "required"},
		{"empty title", &pb.ClassifyRequest{Item: item(func(i *pb.NewsItem) { i.Title = "" })}, "item.title", "1000"},
		{"blank title", &pb.ClassifyRequest{Item: item(func(i *pb.NewsItem) { i.Title = " \t\n" })}, "item.title", "1000"},
		{"long title", &pb.ClassifyRequest{Item: item(func(i *pb.NewsItem) { i.Title = strings.Repeat("é", 1001) })}, "item.title", "limit is 1000"},
		{"long summary", &pb.ClassifyRequest{Item: item(func(i *pb.NewsItem) { i.Summary = strings.Repeat("a", 10001) })}, "item.summary", "limit is 10000"},
		{"long id", &pb.ClassifyRequest{Item: item(func(i *pb.NewsItem) { i.Id = strings.Repeat("i", 129) })}, "item.id", "limit is 128"},
		{"long ticker", &pb.ClassifyRequest{Item: item(func(i *pb.NewsItem) { i.Ticker = "ABCDEFGHIJKLMNOPQ" })}, "item.ticker", "limit is 16"},
		{"unknown priority", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{Priority: 9}}, "options.priority", "PRIORITY_HIGH"},
		{"unknown tier", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{AllowedTiers: []pb.Tier{pb.Tier_TIER_LOCAL, 42}}}, "options.allowed_tiers[1]", "TIER_GEMINI"},
		{"unspecified tier", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{AllowedTiers: []pb.Tier{pb.Tier_TIER_UNSPECIFIED}}}, "options.allowed_tiers[0]", "TIER_UNSPECIFIED is not a tier; allowed: TIER_LEXICON, TIER_LOCAL, TIER_GEMINI, TIER_ANTHROPIC"},
		{"repeated tier", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{AllowedTiers: []pb.Tier{pb.Tier_TIER_LOCAL, pb.Tier_TIER_GEMINI, pb.Tier_TIER_LOCAL}}}, "options.allowed_tiers[2]", "TIER_LOCAL repeats options.allowed_tiers[0]"},
		{"too many tiers", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{AllowedTiers: make([]pb.Tier, 5)}}, "options.allowed_tiers", "has 5 entries; the limit is 4"},
		{"min_prescore above 1", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{MinPrescore: minPre(1.5)}}, "options.min_prescore", "from 0 to 1"},
		{"alert without channels", &pb.ClassifyRequest{Item: item(func(*pb.NewsItem) {}), Options: &pb.ClassifyOptions{Alert: &pb.AlertOptions{LastPrice: 3}}}, "options.alert.channel", "SENTIMENT_DISCORD_WEBHOOKS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ts.client.Classify(ctxT(t), tt.req)
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Fatalf("code = %v (%v), want INVALID_ARGUMENT", st.Code(), err)
			}
			if !strings.HasPrefix(st.Message(), tt.field+": ") || !strings.Contains(st.Message(), tt.inMessage) {
				t.Errorf("message %q should name %q and say %q", st.Message(), tt.field, tt.inMessage)
			}
			var got string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
					got = br.GetFieldViolations()[0].GetField()
				}
			}
			if got != tt.field {
				t.Errorf("BadRequest field = %q, want %q", got, tt.field)
			}
		})
	}

	t.Run("limits are inclusive", func(t *testing.T) {
		_, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Title: strings.Repeat("é", 1000), Summary: strings.Repeat("a", 10000)}})
		if err != nil {
			t.Fatalf("title of exactly 1000 characters refused: %v", err)
		}
	})
}

func TestRequireLLMFailsWithoutModelTier(t *testing.T) {
	ts := start(t, testConfig())
	_, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{
		Item:    &pb.NewsItem{Title: "Acme beats estimates"},
		Options: &pb.ClassifyOptions{RequireLlm: true},
	})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "require_llm") {
		t.Fatalf("err = %v, want UNAVAILABLE naming require_llm", err)
	}
}

func TestRequestIDIsEchoed(t *testing.T) {
	ts := start(t, testConfig())
	req := &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}}

	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "bot-123")
	if _, err := ts.client.Classify(ctx, req, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || got[0] != "bot-123" {
		t.Errorf("x-request-id = %v, want the caller's bot-123", got)
	}

	hdr = nil
	if _, err := ts.client.Classify(ctxT(t), req, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-request-id"); len(got) != 1 || len(got[0]) != 16 {
		t.Errorf("x-request-id = %v, want a generated 16-hex-digit id", got)
	}
}

func TestAuth(t *testing.T) {
	cfg := testConfig()
	cfg.AuthTokens = []secret.Secret{"tok-a", "tok-b"}
	ts := start(t, cfg)
	req := &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}}
	withToken := func(tok string) context.Context {
		return metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer "+tok)
	}

	tests := []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"no token", ctxT(t), codes.Unauthenticated},
		{"wrong token", withToken("tok-c"), codes.Unauthenticated},
		{"prefix of a token", withToken("tok-"), codes.Unauthenticated},
		{"first token", withToken("tok-a"), codes.OK},
		{"second token", withToken("tok-b"), codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ts.client.Classify(tt.ctx, req)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %v, want %v (%v)", got, tt.want, err)
			}
			if err != nil && strings.Contains(err.Error(), "tok-") {
				t.Errorf("error %q repeats a token", err)
			}
		})
	}

	t.Run("streams need a token", func(t *testing.T) {
		stream, err := ts.client.ClassifyBatch(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("Recv: %v, want UNAUTHENTICATED", err)
		}
	})

	t.Run("health stays open", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(ts.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health check without token: %v %v", resp, err)
		}
	})
}

func TestTLS(t *testing.T) {
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = tlstest.SelfSigned(t)
	ts := start(t, cfg)
	if _, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}}); err != nil {
		t.Fatalf("Classify over TLS: %v", err)
	}

	plain, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := pb.NewSentimentServiceClient(plain).Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "x"}}); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext call to a TLS server: %v, want UNAVAILABLE", err)
	}
}

// TestBadTLSFilesStopStartup: config.Load refuses such files first, naming
// the setting; a Config built in code still cannot start a server on them.
func TestBadTLSFilesStopStartup(t *testing.T) {
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = filepath.Join(t.TempDir(), "missing.pem"), filepath.Join(t.TempDir(), "missing.key")
	if _, err := app.New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("New with missing TLS files: %v, want an error naming the file", err)
	}
}

func TestGPUStatusSaysNoReader(t *testing.T) {
	ts := start(t, testConfig())
	resp, err := ts.client.GPUStatus(ctxT(t), &pb.GPUStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetReader() != "none" || !strings.Contains(resp.GetReaderError(), "no GPU reader") || len(resp.GetDevices()) != 0 {
		t.Errorf("GPUStatus = %v, want reader none with a reason and no devices", resp)
	}
	if resp.GetLocalAdmitting() || resp.GetGateReason() == "" {
		t.Errorf("local tier admitting = %v (%q), want false with a reason", resp.GetLocalAdmitting(), resp.GetGateReason())
	}
}

func TestStatsCountRequests(t *testing.T) {
	clock := newHeldClock()
	startedAt := clock.now()
	ts := start(t, testConfig(), app.WithClock(clock.now))
	for range 3 {
		if _, err := ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = ts.client.Classify(ctxT(t), &pb.ClassifyRequest{Item: &pb.NewsItem{}})
	clock.set(startedAt.Add(90 * time.Second))

	got, err := ts.client.Stats(ctxT(t), &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := got.GetRequests()
	if r.GetClassifyCalls() != 3 || r.GetInvalid() != 1 || r.GetFailed() != 0 || r.GetDegraded() != 3 {
		t.Errorf("requests = %v, want 3 classify calls (the invalid one never reached the handler), 1 invalid, 0 failed, 3 degraded", r)
	}
	if got.GetUptime().AsDuration() != 90*time.Second || !got.GetStartedAt().AsTime().Equal(startedAt) {
		t.Errorf("started %v uptime %v, want %v and 90s", got.GetStartedAt().AsTime(), got.GetUptime().AsDuration(), startedAt)
	}
	tiers := got.GetTiers()
	if len(tiers) != 4 || tiers[0].GetTier() != pb.Tier_TIER_LEXICON || tiers[0].GetAnswered() != 3 {
		t.Fatalf("tiers = %v, want the lexicon with 3 answered, then the three model tiers", tiers)
	}
	for i, want := range []pb.Tier{pb.Tier_TIER_LOCAL, pb.Tier_TIER_GEMINI, pb.Tier_TIER_ANTHROPIC} {
		if tt := tiers[i+1]; tt.GetTier() != want || tt.GetEnabled() || tt.GetBreakerState() != pb.BreakerState_BREAKER_STATE_CLOSED {
			t.Errorf("tier %d = %v, want %v disabled with a closed breaker", i+1, tt, want)
		}
	}
}

func clientTLS(t testing.TB, certFile string) credentials.TransportCredentials {
	t.Helper()
	creds, err := credentials.NewClientTLSFromFile(certFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// TestLogLines: one info line per call that matters; reflection and
// health probes only at debug; a plaintext bearer token warned about once
// at start.
func TestLogLines(t *testing.T) {
	var logs logtest.Buffer
	cfg := testConfig()
	cfg.GRPCAddr = "0.0.0.0:0"
	cfg.AuthTokens = []secret.Secret{"token-aaaaaaaaaaaa"}
	ts := startLogged(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "authorization", "Bearer token-aaaaaaaaaaaa")

	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of reflection stream: %v", err)
	}
	if _, err := healthpb.NewHealthClient(ts.conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.client.Classify(ctx, &pb.ClassifyRequest{Item: &pb.NewsItem{Title: "Acme beats estimates"}}); err != nil {
		t.Fatal(err)
	}
	// The Classify line is written when its call finishes, before the
	// answer is sent: it is in the log now.
	out := logs.String()
	if !strings.Contains(out, "grpc.method=Classify") {
		t.Errorf("no info line for Classify:\n%s", out)
	}
	for _, quiet := range []string{"ServerReflectionInfo", "grpc.method=Check"} {
		if strings.Contains(out, quiet) {
			t.Errorf("%s logged at info:\n%s", quiet, out)
		}
	}
	if n := strings.Count(out, "bearer tokens travel in plaintext"); n != 1 {
		t.Errorf("plaintext token warning logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "token-aaaaaaaaaaaa") {
		t.Errorf("the log shows a token:\n%s", out)
	}
}
