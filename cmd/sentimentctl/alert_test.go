package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/catalystbot/sentiment/config"
	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/sim"
	"github.com/catalystbot/sentiment/secret"
)

// simWorld serves the simulated upstreams (every model API and Discord)
// on a loopback port and returns the simulator and its URL.
func simWorld(t *testing.T) (*sim.Sim, string) {
	t.Helper()
	s, err := sim.New(sim.Default(), sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return s, srv.URL
}

// simConfig is testConfig with every model tier and one alert channel on
// the simulator at url.
func simConfig(url string) config.Config {
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint = true, url
	cfg.Gemini.APIKey, cfg.Gemini.BaseURL = "sim", url
	cfg.Anthropic.APIKey, cfg.Anthropic.BaseURL = "sim", url
	cfg.MinInterval = 0
	cfg.DiscordWebhooks = map[string]secret.Secret{"alerts": secret.Secret(url + "/api/webhooks/1/sim")}
	cfg.AlertChannel = "alerts"
	return cfg
}

// answerFields reads classify's "field value" lines, the first of each.
func answerFields(out string) map[string]string {
	fields := map[string]string{}
	for l := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "  ")
		if _, dup := fields[k]; !dup {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// TestClassifyTiers: --tiers limits who may answer, each tier in turn,
// with every tier healthy.
func TestClassifyTiers(t *testing.T) {
	_, url := simWorld(t)
	addr := startServer(t, simConfig(url))
	for _, tt := range []struct {
		tiers, want string
	}{
		{"", "local"},
		{"gemini", "gemini"},
		{"anthropic", "anthropic"},
		{"gemini,anthropic", "gemini"},
		{"lexicon", "lexicon"},
	} {
		t.Run(tt.want+"/"+tt.tiers, func(t *testing.T) {
			r := runCLI(t, invocation{}, "classify", "Acme raises full-year guidance", "--addr", addr, "--skip-cache", "--tiers", tt.tiers)
			if r.code != 0 {
				t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
			}
			f := answerFields(r.stdout)
			if f["tier"] != tt.want || f["label"] != "bullish" {
				t.Errorf("tier %q label %q, want %s, bullish\n%s", f["tier"], f["label"], tt.want, r.stdout)
			}
		})
	}
}

func TestClassifyBadTiers(t *testing.T) {
	for _, tt := range []struct{ tiers, want string }{
		{"gpu", `"gpu" is not a tier`},
		{"local,local", "local is named twice"},
		{"unspecified", "is not a tier"},
	} {
		r := runCLI(t, invocation{}, "classify", "x", "--tiers", tt.tiers, "--addr", closedAddr(t))
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("--tiers %s: exit status %d, stderr %q; want 2 and %q", tt.tiers, r.code, r.stderr, tt.want)
		}
	}
}

// TestAlertPostsAndTheServerEdits: alert prints the channel, the message
// id and the preliminary answer; Discord gets the post at once and the
// edit with the model's answer after it; the same item again is a
// duplicate with the first message's id.
func TestAlertPostsAndTheServerEdits(t *testing.T) {
	s, url := simWorld(t)
	addr := startServer(t, simConfig(url))
	args := []string{"alert", "Acme raises full-year guidance", "--ticker", "ACME", "--price", "12.34", "--change", "5.67", "--id", "a1", "--addr", addr}
	r := runCLI(t, invocation{}, args...)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	f := answerFields(r.stdout)
	if f["channel"] != "alerts" || f["message id"] == "" || f["message id"] == "-" || !strings.HasPrefix(f["posted"], "preliminary") {
		t.Errorf("output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "preliminary answer:") || !strings.Contains(r.stdout, "  label        bullish") {
		t.Errorf("no preliminary answer:\n%s", r.stdout)
	}

	// The edit comes in the background.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.State().Upstreams[sim.NameDiscord]
		if st.Posts == 1 && st.Edits == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Discord saw %d posts and %d edits, want 1 and 1", st.Posts, st.Edits)
		}
		time.Sleep(20 * time.Millisecond)
	}

	r = runCLI(t, invocation{}, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	var resp pb.AlertResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if !resp.GetDuplicate() || resp.GetMessageId() != f["message id"] {
		t.Errorf("the repeat: %v, want a duplicate of %s", &resp, f["message id"])
	}
}

// TestAlertErrors: a bad flag is a usage error; a channel the server does
// not know is the server's INVALID_ARGUMENT (status 1).
func TestAlertErrors(t *testing.T) {
	_, url := simWorld(t)
	addr := startServer(t, simConfig(url))
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"alert", "--ticker", "ACME"}, exitUsage, "a headline is required"},
		{[]string{"alert", "x", "--price", "-1"}, exitUsage, "--price -1"},
		{[]string{"alert", "x", "--change", "NaN"}, exitUsage, "--change NaN"},
		{[]string{"alert", "Acme beats", "--channel", "nowhere"}, exitFailed, "alert: InvalidArgument: "},
	} {
		r := runCLI(t, invocation{}, append(tt.args, "--addr", addr)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%q: exit status %d, stderr %q; want %d and %q", tt.args, r.code, r.stderr, tt.code, tt.want)
		}
	}
}
