package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/discordtest"
	"github.com/catalystbot/sentiment/internal/logtest"
	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/secret"
)

// The fake Discord's webhooks: the "alerts" channel (the default) and
// "ops". Their tokens must never be seen outside the requests to Discord.
const (
	alertsHook, alertsToken = "1001", "tok-alerts-5ecret"
	opsHook, opsToken       = "1002", "tok-ops-5ecret"
	amber                   = 0xFFBF00
)

// alertEnv is the service with a fake model and a fake Discord, its
// alerts timed out on a hand-moved clock.
type alertEnv struct {
	ts      *testServer
	discord *discordtest.Server
	local   *upstreamtest.Fake
	clock   *clocktest.Clock
	logs    *logtest.Buffer
}

// alertConfig enables the fake model (or, with local nil, no model tier)
// and the fake Discord's two channels.
func alertConfig(d *discordtest.Server, local *upstreamtest.Fake) config.Config {
	cfg := testConfig()
	if local != nil {
		cfg.Local.Enabled, cfg.Local.Endpoint = true, local.URL
	}
	cfg.DiscordWebhooks = map[string]secret.Secret{
		"alerts": secret.Secret(d.Webhook(alertsHook, alertsToken)),
		"ops":    secret.Secret(d.Webhook(opsHook, opsToken)),
	}
	cfg.AlertChannel = "alerts"
	return cfg
}

func alertOptions(d *discordtest.Server, clock *clocktest.Clock) []app.Option {
	return []app.Option{
		app.WithHTTPClient(func(name string) *http.Client {
			if name == app.UpstreamDiscord {
				return d.Client()
			}
			return nil
		}),
		app.WithAlertClock(clock),
		app.WithoutGPUManager(),
	}
}

// startAlerts starts the service whose model answers with model.
func startAlerts(t *testing.T, model upstreamtest.Behavior) *alertEnv {
	t.Helper()
	e := &alertEnv{
		discord: discordtest.New(t),
		local:   upstreamtest.New(t, upstreamtest.Ollama),
		clock:   clocktest.New(time.Now()),
		logs:    &logtest.Buffer{},
	}
	e.local.SetDefault(model)
	cfg := alertConfig(e.discord, e.local)
	e.ts = startLogged(t, cfg, slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), alertOptions(e.discord, e.clock)...)
	t.Cleanup(func() {
		if s := e.logs.String(); strings.Contains(s, alertsToken) || strings.Contains(s, opsToken) {
			t.Errorf("a webhook token reached the logs:\n%s", s)
		}
	})
	return e
}

// held answers bullish once release is closed.
func held(release <-chan struct{}) upstreamtest.Behavior {
	return upstreamtest.Func(func(c *upstreamtest.Call) {
		select {
		case <-release:
			upstreamtest.Answer(upstreamtest.BullishJSON)(c)
		case <-c.R.Context().Done():
		}
	})
}

func alertRequest(id string) *pb.AlertRequest {
	return &pb.AlertRequest{
		Item: &pb.NewsItem{Id: id, Ticker: "ACME", Title: "ACME raises full-year guidance after record quarter, beats estimates"},
		// Every item goes to the model, however weak its prescore.
		Options: &pb.ClassifyOptions{MinPrescore: proto.Float64(0)},
		Alert:   &pb.AlertOptions{LastPrice: 12.34, ChangePct: 5.67},
	}
}

// aiField is the value of the embed's "AI Analysis" field.
func aiField(t *testing.T, m discordtest.Message) string {
	t.Helper()
	if len(m.Embeds) != 1 {
		t.Fatalf("message has %d embeds, want 1", len(m.Embeds))
	}
	for _, f := range m.Embeds[0].Fields {
		if strings.Contains(f.Name, "AI Analysis") {
			return f.Value
		}
	}
	t.Fatalf("no AI Analysis field in %+v", m.Embeds[0].Fields)
	return ""
}

func fieldValues(e discordtest.Embed) string {
	var b strings.Builder
	for _, f := range e.Fields {
		b.WriteString(f.Name + ": " + f.Value + "\n")
	}
	return b.String()
}

func TestAlertPostsAtOnceAndEditsWithTheModelsAnswer(t *testing.T) {
	release := make(chan struct{})
	e := startAlerts(t, held(release))
	ctx := ctxT(t)

	resp, err := e.ts.client.Alert(ctx, alertRequest("n1"))
	if err != nil {
		t.Fatal(err)
	}
	// The call returned while the model still holds its answer: the
	// preliminary post exists.
	if resp.GetChannel() != "alerts" || resp.GetMessageId() == "" || resp.GetDuplicate() {
		t.Fatalf("response %v, want a new message on the default channel", resp)
	}
	if p := resp.GetPreliminary(); p.GetPhase() != pb.Phase_PHASE_PRELIMINARY || p.GetProvenance().GetTier() != pb.Tier_TIER_LEXICON {
		t.Errorf("preliminary answer %v, want the lexicon's", p)
	}
	posts := e.discord.Posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Query, "wait=true") {
		t.Fatalf("posts %d (query %q), want one with wait=true", len(posts), posts[0].Query)
	}
	msg, ok := e.discord.Message(resp.GetMessageId())
	if !ok {
		t.Fatalf("message %s is not on the channel", resp.GetMessageId())
	}
	em := msg.Embeds[0]
	fields := fieldValues(em)
	for _, want := range []string{"$12.34 (+5.67%)", "🟢 Bullish leaning", "⏳ Processing..."} {
		if !strings.Contains(fields, want) {
			t.Errorf("preliminary fields lack %q:\n%s", want, fields)
		}
	}
	if em.Title != "📈 ACME Alert" || em.Color != amber || em.Footer == nil || em.Footer.Text != "Real-time alert • AI analysis pending" || em.Timestamp == "" {
		t.Errorf("preliminary embed %+v", em)
	}
	if !strings.Contains(em.Description, "raises full-year guidance") {
		t.Errorf("description %q lacks the headline", em.Description)
	}

	close(release)
	reqs, err := e.discord.Await(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	edit := reqs[1]
	if edit.Method != http.MethodPatch || edit.MessageID != resp.GetMessageId() {
		t.Fatalf("second request %s %s, want the edit of %s", edit.Method, edit.MessageID, resp.GetMessageId())
	}
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetEdited() == 1 })
	msg, _ = e.discord.Message(resp.GetMessageId())
	ai := aiField(t, msg)
	for _, want := range []string{"🟢 **BULLISH**", "confidence 90%", "Raised full-year guidance", "local · " + config.Default().Local.Model} {
		if !strings.Contains(ai, want) {
			t.Errorf("final AI field lacks %q: %q", want, ai)
		}
	}
	if c := msg.Embeds[0].Color; c != 0x2ECC71 {
		t.Errorf("final colour %#x, want green", c)
	}
	if !strings.Contains(fieldValues(msg.Embeds[0]), "$12.34 (+5.67%)") {
		t.Errorf("the edit lost the price")
	}
	// One post, one edit, and nothing else.
	st := alertStats(t, e.ts)
	if n := len(e.discord.Requests()); n != 2 || st.GetPosted() != 1 || st.GetTimedOut() != 0 || st.GetPending() != 0 || len(st.GetFailed()) != 0 {
		t.Errorf("requests %d, stats %v; want one post and one edit", n, st)
	}
}

func TestAlertTimesOutWhenTheModelNeverAnswers(t *testing.T) {
	e := startAlerts(t, upstreamtest.Hang())
	ctx := ctxT(t)
	resp, err := e.ts.client.Alert(ctx, alertRequest("n1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.local.AwaitInFlight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.clock.AwaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(config.Default().AlertTimeout - time.Millisecond)
	if n := len(e.discord.Requests()); n != 1 {
		t.Fatalf("%d requests before the timeout, want the post alone", n)
	}
	e.clock.Advance(time.Millisecond)
	if _, err := e.discord.Await(ctx, 2); err != nil {
		t.Fatal(err)
	}
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetTimedOut() == 1 })
	msg, _ := e.discord.Message(resp.GetMessageId())
	if ai := aiField(t, msg); ai != "⏱️ AI Analysis Timeout — price data above remains accurate" {
		t.Errorf("AI field %q, want the timeout text", ai)
	}
	if c := msg.Embeds[0].Color; c != amber {
		t.Errorf("colour %#x, want amber", c)
	}
	// The hung call is given up: the model's slot is free.
	for e.local.InFlight() != 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the hung model call was not cancelled")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestClassifyWithAlertAnswersAsUsualAndAlerts(t *testing.T) {
	e := startAlerts(t, upstreamtest.Answer(upstreamtest.BearishJSON))
	ctx := ctxT(t)
	resp, err := e.ts.client.Classify(ctx, &pb.ClassifyRequest{
		Item:    &pb.NewsItem{Id: "c1", Ticker: "ACME", Title: "ACME misses estimates and cuts its outlook"},
		Options: &pb.ClassifyOptions{MinPrescore: proto.Float64(0), Alert: &pb.AlertOptions{Channel: "ops"}},
	})
	if err != nil || resp.GetLabel() != pb.Label_LABEL_BEARISH {
		t.Fatalf("Classify = %v, %v; want the model's bearish answer", resp, err)
	}
	// The post goes to ops; it carries the model's answer, or an edit
	// follows with it.
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetPosted() == 1 && s.GetPending() == 0 })
	posts := e.discord.Posts()
	if len(posts) != 1 || posts[0].WebhookID != opsHook {
		t.Fatalf("%d posts, want one to ops", len(posts))
	}
	msgs := e.discord.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	for _, msg := range msgs {
		if ai := aiField(t, msg); !strings.Contains(ai, "🔴 **BEARISH**") || msg.Embeds[0].Color != 0xE74C3C {
			t.Errorf("alert %q colour %#x, want the bearish answer in red", ai, msg.Embeds[0].Color)
		}
	}

	// A batch's items alert too, each once.
	stream, err := e.ts.client.ClassifyBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b1", "b2"} {
		if err := stream.Send(&pb.ClassifyBatchRequest{
			Item:    &pb.NewsItem{Id: id, Ticker: "ACME", Title: "ACME " + id + " misses estimates"},
			Options: &pb.ClassifyOptions{Alert: &pb.AlertOptions{}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetPosted() == 3 && s.GetPending() == 0 })
	if posts := e.discord.Posts(); len(posts) != 3 || posts[1].WebhookID != alertsHook {
		t.Errorf("%d posts, want three, the batch's on the default channel", len(posts))
	}
}

func TestClassifyIsNotHeldUpByABrokenDiscord(t *testing.T) {
	e := startAlerts(t, upstreamtest.Answer(upstreamtest.BullishJSON))
	for range 3 {
		e.discord.Push(alertsHook, discordtest.ServerError(http.StatusBadGateway))
	}
	e.discord.Push(alertsHook, discordtest.ServerError(http.StatusBadGateway))
	ctx := ctxT(t)
	resp, err := e.ts.client.Classify(ctx, &pb.ClassifyRequest{
		Item:    &pb.NewsItem{Id: "c1", Ticker: "ACME", Title: "ACME beats estimates"},
		Options: &pb.ClassifyOptions{Alert: &pb.AlertOptions{}},
	})
	if err != nil || resp.GetLabel() != pb.Label_LABEL_BULLISH {
		t.Fatalf("Classify = %v, %v; want its answer whatever Discord does", resp, err)
	}
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetPending() == 0 && s.GetPosted()+s.GetFailed()["http_5xx"] > 0 })
}

func TestAlertRefusesUnknownChannels(t *testing.T) {
	e := startAlerts(t, upstreamtest.Answer(upstreamtest.BullishJSON))
	ctx := ctxT(t)
	req := alertRequest("n1")
	req.Alert.Channel = "https://evil.example/api/webhooks/1/x"
	_, err := e.ts.client.Alert(ctx, req)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "alert.channel") || !strings.Contains(err.Error(), "alerts, ops") {
		t.Errorf("Alert on an unknown channel: %v; want INVALID_ARGUMENT naming alert.channel and the channels", err)
	}
	_, err = e.ts.client.Classify(ctx, &pb.ClassifyRequest{
		Item:    &pb.NewsItem{Ticker: "ACME", Title: "ACME beats estimates"},
		Options: &pb.ClassifyOptions{Alert: &pb.AlertOptions{Channel: "nope"}},
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "options.alert.channel") {
		t.Errorf("Classify with an unknown channel: %v; want INVALID_ARGUMENT naming options.alert.channel", err)
	}
	req = alertRequest("n2")
	req.Alert.LastPrice = -1
	if _, err := e.ts.client.Alert(ctx, req); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "alert.last_price") {
		t.Errorf("Alert with a negative price: %v", err)
	}
	if n := len(e.discord.Requests()); n != 0 {
		t.Errorf("%d requests reached Discord", n)
	}
}

func TestAlertRequiresAConfiguredChannel(t *testing.T) {
	ts := start(t, testConfig())
	_, err := ts.client.Alert(ctxT(t), alertRequest("n1"))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "SENTIMENT_DISCORD_WEBHOOKS") {
		t.Errorf("Alert without channels: %v", err)
	}
}

func TestAlertOncePerItemAndChannel(t *testing.T) {
	e := startAlerts(t, upstreamtest.Answer(upstreamtest.BullishJSON))
	ctx := ctxT(t)
	first, err := e.ts.client.Alert(ctx, alertRequest("dup"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.ts.client.Alert(ctx, alertRequest("dup"))
	if err != nil || !again.GetDuplicate() || again.GetMessageId() != first.GetMessageId() {
		t.Fatalf("repeat = %v, %v; want a duplicate of %s", again, err, first.GetMessageId())
	}
	// A Classify call asking to alert the same item does not post it.
	if _, err := e.ts.client.Classify(ctx, &pb.ClassifyRequest{Item: alertRequest("dup").Item, Options: &pb.ClassifyOptions{Alert: &pb.AlertOptions{}}}); err != nil {
		t.Fatal(err)
	}
	// Another channel is another alert.
	req := alertRequest("dup")
	req.Alert.Channel = "ops"
	other, err := e.ts.client.Alert(ctx, req)
	if err != nil || other.GetDuplicate() || other.GetMessageId() == first.GetMessageId() {
		t.Fatalf("other channel = %v, %v; want a new message", other, err)
	}
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetDuplicates() == 2 && s.GetPending() == 0 })
	if posts := e.discord.Posts(); len(posts) != 2 {
		t.Errorf("%d posts, want one per channel", len(posts))
	}
	if n := e.local.Calls(); n != 3 {
		// The Alert repeat judged nothing; the Classify call did, for its
		// own answer.
		t.Errorf("%d model calls, want 3", n)
	}
}

func TestAlertEditsAfterTheCallerHungUp(t *testing.T) {
	release := make(chan struct{})
	e := startAlerts(t, held(release))
	hold := make(chan struct{})
	e.discord.Push(alertsHook, discordtest.Until(hold, discordtest.OK()))
	ctx := ctxT(t)
	cctx, hangUp := context.WithCancel(ctx)
	called := make(chan error, 1)
	go func() {
		_, err := e.ts.client.Alert(cctx, alertRequest("n1"))
		called <- err
	}()
	if _, err := e.discord.Await(ctx, 1); err != nil {
		t.Fatal(err)
	}
	hangUp()
	if err := <-called; status.Code(err) != codes.Canceled {
		t.Fatalf("Alert after hanging up: %v", err)
	}
	close(hold)
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetPosted() == 1 })
	close(release)
	reqs, err := e.discord.Await(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	awaitStats(t, e.ts, func(s *pb.AlertStats) bool { return s.GetEdited() == 1 })
	msg, _ := e.discord.Message(reqs[1].MessageID)
	if ai := aiField(t, msg); !strings.Contains(ai, "BULLISH") {
		t.Errorf("edit %q, want the model's answer", ai)
	}
}

func TestAlertToADeletedWebhook(t *testing.T) {
	e := startAlerts(t, upstreamtest.Answer(upstreamtest.BullishJSON))
	e.discord.DeleteWebhook(opsHook)
	ctx := ctxT(t)
	for i := range 2 {
		req := alertRequest("n" + string(rune('1'+i)))
		req.Alert.Channel = "ops"
		_, err := e.ts.client.Alert(ctx, req)
		if status.Code(err) != codes.FailedPrecondition || strings.Contains(err.Error(), opsToken) {
			t.Fatalf("Alert %d to a deleted webhook: %v; want FAILED_PRECONDITION without the token", i, err)
		}
	}
	// Reported once: the second alert was refused without asking Discord.
	if n := len(e.discord.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	st := alertStats(t, e.ts)
	if !slices.Equal(st.GetBrokenChannels(), []string{"ops"}) || st.GetFailed()["broken"] != 2 {
		t.Errorf("stats %v; want ops broken, two failures", st)
	}
	// The other channel still alerts.
	if _, err := e.ts.client.Alert(ctx, alertRequest("n3")); err != nil {
		t.Fatal(err)
	}
	stats, err := e.ts.client.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := stats.String(); strings.Contains(s, opsToken) || strings.Contains(s, alertsToken) {
		t.Errorf("a token reached Stats: %s", s)
	}
}

// A shutdown waits for the pending alerts within its grace, then edits
// the rest to the timeout text: none is left "Processing...".
func TestShutdownEditsPendingAlerts(t *testing.T) {
	d := discordtest.New(t)
	local := upstreamtest.New(t, upstreamtest.Ollama)
	release := make(chan struct{})
	local.SetDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
		if c.Request.Field("messages.1.content") != nil && strings.Contains(c.Request.Field("messages.1.content").(string), "quick") {
			upstreamtest.Answer(upstreamtest.BullishJSON)(c)
			return
		}
		held(release)(c)
	}))
	cfg := alertConfig(d, local)
	cfg.ShutdownGrace = 200 * time.Millisecond
	a, err := app.New(t.Context(), cfg, slog.New(slog.DiscardHandler), alertOptions(d, clocktest.New(time.Now()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- a.Run(runCtx, lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewSentimentServiceClient(conn)
	ctx := ctxT(t)
	pending, err := client.Alert(ctx, alertRequest("slow"))
	if err != nil {
		t.Fatal(err)
	}
	if err := local.AwaitInFlight(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	close(release)
	edits := d.Edits(pending.GetMessageId())
	if len(edits) != 1 {
		t.Fatalf("%d edits of the pending alert, want 1", len(edits))
	}
	msg, _ := d.Message(pending.GetMessageId())
	if ai := aiField(t, msg); !strings.Contains(ai, "AI Analysis Timeout") {
		t.Errorf("the pending alert says %q after shutdown, want the timeout text", ai)
	}
}

func alertStats(t *testing.T, ts *testServer) *pb.AlertStats {
	t.Helper()
	st, err := ts.client.Stats(ctxT(t), &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetAlerts()
}

// awaitStats waits until the alert counters satisfy ok: the edits happen
// after the fake has recorded the request, when its answer is read.
func awaitStats(t *testing.T, ts *testServer, ok func(*pb.AlertStats) bool) {
	t.Helper()
	ctx := ctxT(t)
	for {
		st := alertStats(t, ts)
		if ok(st) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("alert stats never settled: %v", st)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// With no model tier the final answer is known at once: an alert whose
// answer is there before its post leaves is posted complete, the others
// are edited; each ends with the answer, once.
func TestAlertWithTheLexiconAlone(t *testing.T) {
	d := discordtest.New(t)
	ts := start(t, alertConfig(d, nil), alertOptions(d, clocktest.New(time.Now()))...)
	ctx := ctxT(t)
	const n = 8
	complete := 0
	for i := range n {
		req := alertRequest(fmt.Sprintf("lex-%d", i))
		req.Alert.Channel = []string{"alerts", "ops"}[i%2]
		resp, err := ts.client.Alert(ctx, req)
		if err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
		if resp.GetComplete() {
			complete++
		}
	}
	awaitStats(t, ts, func(s *pb.AlertStats) bool { return s.GetPending() == 0 })
	st := alertStats(t, ts)
	if st.GetPosted() != n || st.GetComplete() != uint64(complete) || st.GetComplete()+st.GetEdited() != n {
		t.Errorf("stats %v; want %d posts, %d of them complete, the rest edited", st, n, complete)
	}
	if reqs := d.Requests(); len(reqs) != int(st.GetPosted()+st.GetEdited()) {
		t.Errorf("%d requests, want a post for each and an edit for each incomplete one", len(reqs))
	}
	for id, m := range d.Messages() {
		if ai := aiField(t, m); !strings.Contains(ai, "lexicon") || !strings.Contains(ai, "Degraded") || m.Embeds[0].Footer.Text != "Real-time alert • AI analysis degraded" {
			t.Errorf("message %s: %q; want the lexicon's answer, marked degraded with why", id, ai)
		}
	}
}

// Two replicas sharing Redis alert an item once between them.
func TestAlertOnceAcrossReplicas(t *testing.T) { onEachRedis(t, testAlertOnceAcrossReplicas) }

func testAlertOnceAcrossReplicas(t *testing.T, startRedis func(testing.TB) *redistest.Server) {
	rdb := startRedis(t)
	d := discordtest.New(t)
	local := upstreamtest.New(t, upstreamtest.Ollama)
	cfg := alertConfig(d, local)
	cfg.RedisURL = secret.Secret(rdb.URL())
	a := startB(t, cfg, alertOptions(d, clocktest.New(time.Now()))...)
	b := startB(t, cfg, alertOptions(d, clocktest.New(time.Now()))...)
	ctx := ctxT(t)
	first, err := a.client.Alert(ctx, alertRequest("shared-1"))
	if err != nil {
		t.Fatal(err)
	}
	awaitStats(t, a, func(s *pb.AlertStats) bool { return s.GetPending() == 0 })
	again, err := b.client.Alert(ctx, alertRequest("shared-1"))
	if err != nil || !again.GetDuplicate() || again.GetMessageId() != first.GetMessageId() {
		t.Fatalf("the other replica's repeat = %v, %v; want a duplicate of %s", again, err, first.GetMessageId())
	}
	if posts := d.Posts(); len(posts) != 1 {
		t.Errorf("%d posts, want 1", len(posts))
	}
}

// BenchmarkAlertToPost measures, from the Alert call sent to the fake
// Discord receiving the preliminary post, over loopback gRPC and HTTP:
// p50 and p99 are reported. Every alert goes to a channel of its own, so
// that Discord's pace of 5 requests per 2 s per webhook does not enter;
// the lexicon answers (no model tier), so the edits follow at once.
func BenchmarkAlertToPost(b *testing.B) {
	d := discordtest.New(b)
	cfg := alertConfig(d, nil)
	const channels = 2000
	for i := range channels {
		cfg.DiscordWebhooks[fmt.Sprintf("c%d", i)] = secret.Secret(d.Webhook(strconv.Itoa(5000+i), "tok"))
	}
	ts := startB(b, cfg, alertOptions(d, clocktest.New(time.Now()))...)
	ctx := context.Background()
	sent := make([]time.Time, b.N)
	b.ResetTimer()
	for i := range b.N {
		req := alertRequest(fmt.Sprintf("bench-%d", i))
		req.Alert.Channel = fmt.Sprintf("c%d", i%channels)
		sent[i] = time.Now()
		if _, err := ts.client.Alert(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	posts := d.Posts()
	if len(posts) != b.N {
		b.Fatalf("%d posts for %d alerts", len(posts), b.N)
	}
	lat := make([]time.Duration, b.N)
	for i, p := range posts {
		lat[i] = p.At.Sub(sent[i])
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func TestListAlertChannels(t *testing.T) {
	e := startAlerts(t, upstreamtest.Answer(upstreamtest.BullishJSON))
	e.discord.DeleteWebhook(opsHook)
	req := alertRequest("n1")
	req.Alert.Channel = "ops"
	if _, err := e.ts.client.Alert(ctxT(t), req); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("alert to a deleted webhook: %v", err)
	}
	resp, err := e.ts.client.ListAlertChannels(ctxT(t), &pb.ListAlertChannelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.AlertChannel{
		{Name: "alerts", WebhookId: alertsHook, Default: true},
		{Name: "ops", WebhookId: opsHook, Broken: true},
	}
	if len(resp.GetChannels()) != len(want) {
		t.Fatalf("channels %v, want %v", resp.GetChannels(), want)
	}
	for i, c := range resp.GetChannels() {
		if !proto.Equal(c, want[i]) {
			t.Errorf("channel %d: %v, want %v", i, c, want[i])
		}
	}
	if s := resp.String(); strings.Contains(s, alertsToken) || strings.Contains(s, opsToken) || strings.Contains(s, "http") {
		t.Errorf("a URL or token in %s", s)
	}
}
