package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMeter(t *testing.T) {
	tests := []struct {
		name        string
		used, limit float64
		want        string
	}{
		{"empty", 0, 100, "[----------]"},
		{"one used shows", 1, 1000, "[#---------]"},
		{"half", 50, 100, "[#####-----]"},
		{"just under full", 99, 100, "[#########-]"},
		{"full", 100, 100, "[##########]"},
		{"over", 150, 100, "[#########!]"},
		{"far over", 1e6, 1, "[#########!]"},
		{"unlimited", 5, 0, "[ no limit ]"},
		{"unlimited unused", 0, 0, "[ no limit ]"},
		{"cents", 2.5, 5, "[#####-----]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := meter(tt.used, tt.limit); got != tt.want {
				t.Errorf("meter(%v, %v) = %q, want %q", tt.used, tt.limit, got, tt.want)
			}
			if got := len(meter(tt.used, tt.limit)); got != meterWidth+2 {
				t.Errorf("width %d: bars must line up", got)
			}
		})
	}
}

func TestQuotaLine(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	tests := []struct {
		name string
		q    *pb.QuotaWindow
		want string
	}{
		{"unused", &pb.QuotaWindow{Window: "minute", Used: 0, Limit: 100, ResetsAt: at(time.Minute)},
			"[----------] 0/100 minute"},
		{"half", &pb.QuotaWindow{Window: "minute", Used: 50, Limit: 100, ResetsAt: at(12 * time.Second)},
			"[#####-----] 50/100 minute, resets in 12s"},
		{"full and shared", &pb.QuotaWindow{Window: "day", Used: 1500, Limit: 1500, ResetsAt: at(90 * time.Minute), Shared: true},
			"[##########] 1500/1500 day, resets in 1h30m0s, shared"},
		{"over", &pb.QuotaWindow{Window: "hour", Used: 660, Limit: 600},
			"[#########!] 660/600 hour (over the limit)"},
		{"unlimited", &pb.QuotaWindow{Window: "hour", Used: 7, Limit: 0},
			"[ no limit ] 7 hour, no limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quotaLine(tt.q, now); got != tt.want {
				t.Errorf("quotaLine = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCostAndMemoryLines(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{costLine("today", 0, 5), "today  [----------] $0.00 of $5.00"},
		{costLine("today", 2.5, 5), "today  [#####-----] $2.50 of $5.00"},
		{costLine("month", 50, 50), "month  [##########] $50.00 of $50.00"},
		{costLine("month", 61.2, 50), "month  [#########!] $61.20 of $50.00 (over the threshold)"},
		{costLine("today", 1.25, 0), "today  [ no limit ] $1.25, no threshold"},
		{memoryLine(8<<30, 16<<30), "[#####-----] 8.0 GiB / 16.0 GiB (50%)"},
		{memoryLine(512<<20, 16<<30), "[#---------] 512 MiB / 16.0 GiB (3%)"},
		{memoryLine(16<<30, 16<<30), "[##########] 16.0 GiB / 16.0 GiB (100%)"},
		{memoryLine(3<<30, 0), "[ no limit ] 3.0 GiB used, total unknown"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %q\nwant %q", tt.got, tt.want)
		}
	}
}

// dashboardFixture is a busy service: quotas at every fill, a tripped
// breaker with errors, a warm model on an RX 6800 under high pressure, a
// cleanup, cache hits, alerts, and spending over the daily threshold with
// the budget stop on.
func dashboardFixture(now time.Time) (*pb.StatsResponse, *pb.GPUStatusResponse) {
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	busy, temp := 87.0, 71.0
	st := &pb.StatsResponse{
		Version: "v1.2.3",
		Uptime:  durationpb.New(26*time.Hour + 3*time.Minute + 4*time.Second),
		Requests: &pb.RequestStats{ClassifyCalls: 120, BatchStreams: 3, BatchItems: 4000, OpenStreams: 1,
			Invalid: 2, Degraded: 40, Failed: 1, Cancelled: 3, AlertCalls: 9},
		Tiers: []*pb.TierStats{
			{Tier: pb.Tier_TIER_LEXICON, Enabled: true, Model: "lexicon", BreakerState: pb.BreakerState_BREAKER_STATE_CLOSED, Answered: 2500},
			{Tier: pb.Tier_TIER_LOCAL, Enabled: true, Model: "mistral", BreakerState: pb.BreakerState_BREAKER_STATE_HALF_OPEN,
				ConsecutiveFailures: 2, Answered: 1400, ErrorsLastHour: map[string]uint64{"http_500": 4, "timeout": 2},
				Quotas: []*pb.QuotaWindow{{Window: "minute", Used: 0, Limit: 0}}},
			{Tier: pb.Tier_TIER_GEMINI, Enabled: true, Model: "gemini-2.5-flash", BreakerState: pb.BreakerState_BREAKER_STATE_OPEN,
				ConsecutiveFailures: 5, Answered: 200, ErrorsLastHour: map[string]uint64{"http_429": 5}, QuotaBackend: "redis",
				Quotas: []*pb.QuotaWindow{
					{Window: "minute", Used: 10, Limit: 10, ResetsAt: at(20 * time.Second), Shared: true},
					{Window: "hour", Used: 300, Limit: 600, ResetsAt: at(30 * time.Minute), Shared: true},
					{Window: "day", Used: 1600, Limit: 1500, ResetsAt: at(5 * time.Hour), Shared: true},
				}},
			{Tier: pb.Tier_TIER_ANTHROPIC, Enabled: false, Model: "claude-haiku-4-5", BreakerState: pb.BreakerState_BREAKER_STATE_CLOSED,
				Quotas: []*pb.QuotaWindow{{Window: "minute", Used: 0, Limit: 50}}},
		},
		Cache: &pb.CacheStats{Backend: "redis", ExactHits: 30, NearHits: 5, Misses: 400, SharedInFlight: 7,
			GuardRefusals: 2, Stored: 380, Evicted: 1, Entries: 379},
		Prefilter: &pb.PrefilterStats{Seen: 4120, SentOn: 1800, Skipped: 2320},
		Cost: &pb.CostStats{TodayUsd: 6.5, MonthUsd: 20, DailyAlertUsd: 5, MonthlyAlertUsd: 50,
			TodayByProvider: map[string]float64{"gemini": 4.25, "anthropic": 2.25},
			MonthByProvider: map[string]float64{"gemini": 15, "anthropic": 5},
			Zone:            "America/New_York", BudgetStop: true, StoppedUntil: at(14*time.Hour + 30*time.Minute), Backend: "redis"},
		Alerts: &pb.AlertStats{Posted: 9, Edited: 7, TimedOut: 1, Duplicates: 2, Pending: 1, Complete: 3,
			Failed: map[string]uint64{"rate_limited": 2, "broken": 1}, BrokenChannels: []string{"old-alerts"}},
		UsageLog: &pb.UsageLogStats{Path: "/var/log/sentiment/usage.jsonl", Written: 1600, Dropped: 1},
	}
	gs := &pb.GPUStatusResponse{
		Reader: "sysfs",
		Devices: []*pb.GPUDevice{{Index: 1, Name: "AMD Radeon RX 6800", Vendor: "amd",
			VramTotalBytes: 16 << 30, VramUsedBytes: 14 << 30, VramFreeBytes: 2 << 30,
			BusyPercent: &busy, TemperatureCelsius: &temp, Source: "sysfs:/sys/class/drm/card1/device"}},
		Pressure: pb.PressureLevel_PRESSURE_LEVEL_HIGH, PressurePercent: 87.5, PressureCard: "0000:03:00.0",
		Model: &pb.ModelState{Name: "mistral", Loaded: true, Warm: true, VramBytes: 5 << 30,
			WarmupLatency: durationpb.New(1234 * time.Millisecond)},
		LastCleanupAt: at(-5 * time.Minute), LastCleanupReason: "periodic (GPU_CLEANUP_INTERVAL_SEC)", Cleanups: 3, Restarts: 1,
		LocalAdmitting: true, RecoveryPhase: "open", GpuConcurrency: 2, ConcurrencyCut: true, ConsecutiveFailures: 1,
		Queue: &pb.GPUQueueStats{Limit: 4, Ceiling: 2, InFlight: 2, Waiting: 5, Started: 1400, Halvings: 2, Grows: 6,
			SpilledFull: 3, SpilledNoTime: 4, ServiceTime: durationpb.New(850 * time.Millisecond)},
	}
	return st, gs
}

// TestDashboardGolden: the whole dashboard of a busy service, against
// testdata/dashboard.golden (go test -update rewrites it).
func TestDashboardGolden(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	st, gs := dashboardFixture(now)
	var b bytes.Buffer
	writeDashboard(&b, st, gs, nil, now)
	golden := filepath.Join("testdata", "dashboard.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("dashboard differs from %s (go test -update rewrites it):\n%s", golden, b.String())
	}
	for _, line := range []string{
		"  gemini     [##########] 10/10 minute, resets in 20s, shared",
		"  gemini     [#####-----] 300/600 hour, resets in 30m0s, shared",
		"  gemini     [#########!] 1600/1500 day (over the limit), resets in 5h0m0s, shared",
		"  local      [ no limit ] 0 minute, no limit",
		"  anthropic  [----------] 0/50 minute",
		"  card 1 AMD Radeon RX 6800 (amd)  VRAM [########--] 14.0 GiB / 16.0 GiB (88%)  busy 87%  71°C",
		"  pressure high, 87.5% of 0000:03:00.0",
		"  model mistral: loaded, warm (warm-up 1.234s), 5.0 GiB VRAM",
		"  last cleanup 5m0s ago: periodic (GPU_CLEANUP_INTERVAL_SEC) (3 cleanups, 1 restarts)",
		"  today  [#########!] $6.50 of $5.00 (over the threshold) (anthropic $2.25, gemini $4.25)",
		"  month  [####------] $20.00 of $50.00 (anthropic $5.00, gemini $15.00)",
		"  budget stop ON: paid tiers stopped until 2026-03-03 00:00:00 (in 14h30m0s)",
	} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("no line %q", line)
		}
	}
	for _, part := range []string{"open", "half open", "http_429=5", "http_500=4 timeout=2", "hits 35 (exact 30, near 5)",
		"answered by the lexicon 2320", "broken channels old-alerts", "rate_limited=2", "Usage log /var/log/sentiment/usage.jsonl"} {
		if !strings.Contains(b.String(), part) {
			t.Errorf("dashboard lacks %q", part)
		}
	}
}

// TestDashboardWithoutGPU: a failed GPUStatus is said in its section; the
// rest is shown.
func TestDashboardWithoutGPU(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	st, _ := dashboardFixture(now)
	st.Cost.BudgetStop = false
	var b bytes.Buffer
	writeDashboard(&b, st, nil, errors.New("test failure"), now)
	for _, want := range []string{"GPU\n  unavailable: test failure\n", "budget stop off", "Quotas (redis)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("dashboard lacks %q:\n%s", want, b.String())
		}
	}
}

// TestStats: against the real service the dashboard has its sections;
// with no GPU manager, GPUStatus says so.
func TestStats(t *testing.T) {
	addr := startServer(t, testConfig())
	r := runCLI(t, invocation{}, "stats", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"Requests: ",
		"Tiers\n",
		"Quotas (memory)\n",
		"  gemini     [----------] 0/10 minute\n",
		"GPU (reader none)\n",
		"no GPU reader is configured",
		"local tier not admitting",
		"Cache (off)",
		"Prefilter: ",
		"Alerts: ",
		"  today  [----------] $0.00 of $5.00\n",
		"  month  [----------] $0.00 of $50.00\n",
		"budget stop off",
		"Usage log: off",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestStatsAndGPUJSON(t *testing.T) {
	addr := startServer(t, testConfig())
	r := runCLI(t, invocation{}, "stats", "--json", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	var both struct {
		Stats, GPU json.RawMessage
	}
	if err := json.Unmarshal([]byte(r.stdout), &both); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var st pb.StatsResponse
	var gs pb.GPUStatusResponse
	if err := protojson.Unmarshal(both.Stats, &st); err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(both.GPU, &gs); err != nil {
		t.Fatal(err)
	}
	if len(st.GetTiers()) == 0 || st.GetCost().GetDailyAlertUsd() != 5 || gs.GetReader() != "none" {
		t.Errorf("stats %v\ngpu %v", &st, &gs)
	}

	r = runCLI(t, invocation{}, "gpu", "--json", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	var g2 pb.GPUStatusResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &g2); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if !strings.Contains(g2.GetReaderError(), "no GPU reader") || !strings.Contains(r.stdout, `"reader_error"`) {
		t.Errorf("gpu %s", r.stdout)
	}
}

func TestGPU(t *testing.T) {
	addr := startServer(t, testConfig())
	r := runCLI(t, invocation{}, "gpu", "--addr", addr)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	for _, want := range []string{"GPU (reader none)", "no readings: no GPU reader is configured", "model: none", "last cleanup: none yet"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gpu lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestWatchSnapshots: off a terminal, watch prints the dashboards one
// after another; with --json one line each.
func TestWatchSnapshots(t *testing.T) {
	addr := startServer(t, testConfig())
	r := runCLI(t, invocation{}, "watch", "--addr", addr, "--interval", "1ms", "--count", "3")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "catalyst-sentiment "); n != 3 {
		t.Errorf("%d dashboards, want 3:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("escape codes off a terminal")
	}

	r = runCLI(t, invocation{}, "watch", "--json", "--addr", addr, "--interval", "1ms", "--count", "2")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 2 {
		t.Fatalf("exit status %d, %d lines\n%s", r.code, len(lines), r.stdout)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("not JSON: %s", l)
		}
	}
}

// TestWatchRedrawsOnTerminal: on a terminal each dashboard clears the
// screen first.
func TestWatchRedrawsOnTerminal(t *testing.T) {
	addr := startServer(t, testConfig())
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	screen := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		b.ReadFrom(ptmx)
		screen <- b.String()
	}()
	r := runCLI(t, invocation{stdout: tty}, "watch", "--addr", addr, "--interval", "1ms", "--count", "2")
	tty.Close()
	got := <-screen
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if n := strings.Count(got, "\x1b[H\x1b[2J"); n != 2 {
		t.Errorf("%d screen clears, want 2:\n%q", n, got)
	}
}

// TestWatchEndsOnInterrupt: watch runs until its context ends (Ctrl-C
// in main) and then exits 0; the interval is long, so only the interrupt
// can end it.
func TestWatchEndsOnInterrupt(t *testing.T) {
	addr := startServer(t, testConfig())
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelWriter{cancel: cancel}
	r := runCLI(t, invocation{ctx: ctx, stdout: out}, "watch", "--addr", addr, "--interval", "1h")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if n := strings.Count(out.String(), "catalyst-sentiment "); n != 1 {
		t.Errorf("%d dashboards, want 1", n)
	}
}

// cancelWriter cancels a context once something is written to it.
type cancelWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	cancel context.CancelFunc
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.cancel()
	return w.b.Write(p)
}

func (w *cancelWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
