package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/tlstest"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != ":50051" || c.MetricsAddr != ":9090" || c.Local.Endpoint != "http://localhost:11434" ||
		c.Local.Model != "mistral" || c.Local.Timeout != 15*time.Second || c.Local.MaxConcurrent != 5 ||
		c.MaxRetries != 3 || c.RetryDelay != 2*time.Second || !c.Local.Enabled || c.Local.MaxLength != 1000 ||
		c.Local.API != "ollama" || c.MinInterval != 3*time.Second || c.Gemini.RPM != 10 || c.Gemini.RPH != 600 ||
		c.Gemini.RPD != 1500 || c.BatchSize != 5 || c.BatchDelay != 2*time.Second || c.MinPrescore != 0.20 ||
		c.GPUCleanupInterval != 300*time.Second || c.RedisURL != "" || c.CacheSimilarity != 0.95 ||
		c.CacheTTL != 86400*time.Second || c.CostAlertDaily != 5 || c.CostAlertMonthly != 50 ||
		c.GPUSysfsRoot != "/sys" || c.GPUReader != "auto" {
		t.Errorf("defaults differ from DESIGN.md: %+v", c)
	}
}

func TestEnvironmentAndFlags(t *testing.T) {
	e := env(map[string]string{
		"LLM_ENDPOINT_URL":           "http://gpu-box:11434/api/generate",
		"LLM_TIMEOUT_SECS":           "7.5",
		"LLM_LOCAL_ENABLED":          "0",
		"LLM_MAX_CONCURRENT":         "4",
		"GEMINI_API_KEY":             "AIza-secret",
		"LLM_MIN_PRESCALE_SCORE":     "0.35",
		"SENTIMENT_AUTH_TOKENS":      "token-aaaaaaaaaaaa, token-bbbbbbbbbbbb ,token-cccccccccccc",
		"SENTIMENT_DISCORD_WEBHOOKS": "alerts=https://discord.com/api/webhooks/1/tok,ops=https://discord.com/api/webhooks/2/tok2",
		"SENTIMENT_GRPC_ADDR":        "127.0.0.1:6000",
		"LLM_RETRY_DELAY":            "500ms",
		"SENTIMENT_PRICES":           "my-local=0/0, gemini-2.5-flash=0.5/3",
		"SENTIMENT_LOCAL_KEEP_ALIVE": "-1m",
	})
	c, err := Load([]string{"-grpc-addr=127.0.0.1:7000", "-local-enabled"}, e, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"endpoint base", c.Local.Endpoint, "http://gpu-box:11434"},
		{"timeout", c.Local.Timeout, 7500 * time.Millisecond},
		{"flag beats env (bool)", c.Local.Enabled, true},
		{"flag beats env (addr)", c.GRPCAddr, "127.0.0.1:7000"},
		{"max concurrent", c.Local.MaxConcurrent, 4},
		{"gemini key", c.Gemini.APIKey.Reveal(), "AIza-secret"},
		{"min prescore", c.MinPrescore, 0.35},
		{"tokens", fmt.Sprint(c.AuthTokens), "[[redacted] [redacted] [redacted]]"},
		{"token values", c.AuthTokens[1].Reveal(), "token-bbbbbbbbbbbb"},
		{"webhooks", len(c.DiscordWebhooks), 2},
		{"webhook", c.DiscordWebhooks["ops"].Reveal(), "https://discord.com/api/webhooks/2/tok2"},
		{"go duration", c.RetryDelay, 500 * time.Millisecond},
		{"price added", len(c.Prices), 7},
		{"price overridden", c.Prices["gemini-2.5-flash"], Price{0.5, 3}},
		{"price kept", c.Prices["claude-haiku-4-5"], Price{1, 5}},
		{"keep alive", c.Local.KeepAlive, "-1m"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestEndpointForms(t *testing.T) {
	tests := map[string]string{
		"http://localhost:11434":                        "http://localhost:11434",
		"http://localhost:11434/":                       "http://localhost:11434",
		"http://localhost:11434/api/generate":           "http://localhost:11434",
		"http://localhost:11434/api/chat/":              "http://localhost:11434",
		"http://vllm:8000/v1":                           "http://vllm:8000",
		"https://proxy.example/ollama/api/generate?x=1": "https://proxy.example/ollama",
	}
	for in, want := range tests {
		c, err := Load(nil, env(map[string]string{"LLM_ENDPOINT_URL": in}), io.Discard)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if c.Local.Endpoint != want {
			t.Errorf("%s -> %s, want %s", in, c.Local.Endpoint, want)
		}
	}
}

func TestBadValuesNameSettingValueAndLimit(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"int range", map[string]string{"LLM_MAX_CONCURRENT": "0"}, nil, `setting LLM_MAX_CONCURRENT="0": must be an integer from 1 to 64`},
		{"not a number", map[string]string{"LLM_GEMINI_RPM": "ten"}, nil, `setting LLM_GEMINI_RPM="ten": must be an integer from 0 to 1000000`},
		{"float range", map[string]string{"LLM_MIN_PRESCALE_SCORE": "1.5"}, nil, `setting LLM_MIN_PRESCALE_SCORE="1.5": must be a number from 0 to 1`},
		{"NaN", map[string]string{"LLM_CACHE_SIMILARITY": "NaN"}, nil, `setting LLM_CACHE_SIMILARITY="NaN": must be a number from 0.5 to 1`},
		{"seconds", map[string]string{"LLM_TIMEOUT_SECS": "0"}, nil, `setting LLM_TIMEOUT_SECS="0": must be a number of seconds from 0.1 to 600`},
		{"bool", map[string]string{"LLM_LOCAL_ENABLED": "maybe"}, nil, `setting LLM_LOCAL_ENABLED="maybe": must be 1 or 0`},
		{"choice", map[string]string{"SENTIMENT_LOCAL_API": "grpc"}, nil, `setting SENTIMENT_LOCAL_API="grpc": must be one of ollama, openai`},
		{"reader", map[string]string{"SENTIMENT_GPU_READER": "xpu"}, nil, `setting SENTIMENT_GPU_READER="xpu": must be one of auto, sysfs, rocm-smi, amd-smi, nvidia-smi, none`},
		{"url", map[string]string{"LLM_ENDPOINT_URL": "localhost:11434"}, nil, `setting LLM_ENDPOINT_URL="localhost:11434": must be an http(s) URL`},
		{"url with credentials", map[string]string{"SENTIMENT_GEMINI_BASE_URL": "https://u:p@x"}, nil, `setting SENTIMENT_GEMINI_BASE_URL="https://u:xxxxx@x": must not carry credentials`},
		{"address", map[string]string{"SENTIMENT_GRPC_ADDR": "50051"}, nil, `setting SENTIMENT_GRPC_ADDR="50051": must be host:port`},
		{"tls pair", map[string]string{"SENTIMENT_TLS_CERT": "c.pem"}, nil, `SENTIMENT_TLS_KEY="": both or neither must be set`},
		{"flag", nil, []string{"-local-max-concurrent=99"}, `setting -local-max-concurrent="99": must be an integer from 1 to 64`},
		{"unknown flag", nil, []string{"-colour=blue"}, `flag provided but not defined: -colour`},
		{"stray argument", nil, []string{"serve"}, `unexpected argument "serve"`},
		{"model required", map[string]string{"LLM_MODEL_NAME": " "}, nil, `setting LLM_MODEL_NAME=" ": must name a model while LLM_LOCAL_ENABLED=1`},
		{"keep alive", map[string]string{"SENTIMENT_LOCAL_KEEP_ALIVE": "-1"}, nil, `setting SENTIMENT_LOCAL_KEEP_ALIVE="-1": must be a duration such as 30m`},
		{"prices", map[string]string{"SENTIMENT_PRICES": "m=1"}, nil, `setting SENTIMENT_PRICES="m=1": must be model=input/output pairs`},
		{"gpu thresholds", map[string]string{"SENTIMENT_GPU_HIGH_WATER": "95", "SENTIMENT_GPU_CRITICAL": "90"}, nil, `high water must be below critical`},
		{"breaker", map[string]string{"SENTIMENT_BREAKER_FAILURES": "0"}, nil, `setting SENTIMENT_BREAKER_FAILURES="0": must be an integer from 1 to 1000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(tt.env), io.Discard)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tt.want)
			}
		})
	}
}

func TestSecretsNeverShown(t *testing.T) {
	_, err := Load(nil, env(map[string]string{"SENTIMENT_DISCORD_WEBHOOKS": "alerts=discord.com/api/webhooks/1/hunter2"}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), `channel "alerts"`) {
		t.Errorf("error %q must name the channel and hide the URL", err)
	}

	c, err := Load(nil, env(map[string]string{"GEMINI_API_KEY": "hunter2", "REDIS_URL": "redis://:hunter2@r:6379"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("a secret is printed: %s", s)
		}
	}

	var help strings.Builder
	_, err = Load([]string{"-help"}, env(map[string]string{"ANTHROPIC_API_KEY": "hunter2"}), &help)
	if !errors.Is(err, flag.ErrHelp) || strings.Contains(help.String(), "hunter2") || !strings.Contains(help.String(), "LLM_MAX_CONCURRENT") {
		t.Errorf("help (%v) must list the environment names and hide secrets:\n%s", err, help.String())
	}
}

// TestStartupErrorsWordForWord pins the exact line start-up prints for the
// settings whose errors users meet most, secrets included.
func TestStartupErrorsWordForWord(t *testing.T) {
	cert, key := tlstest.SelfSigned(t)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"blank token", map[string]string{"SENTIMENT_AUTH_TOKENS": "token-aaaaaaaaaaaa,,token-bbbbbbbbbbbb"},
			`setting SENTIMENT_AUTH_TOKENS="[redacted]": must be comma-separated bearer tokens of at least 16 characters; entry 2 of 3 is blank`},
		{"trailing comma", map[string]string{"SENTIMENT_AUTH_TOKENS": "token-aaaaaaaaaaaa,"},
			`setting SENTIMENT_AUTH_TOKENS="[redacted]": must be comma-separated bearer tokens of at least 16 characters; entry 2 of 2 is blank`},
		{"spaces only", map[string]string{"SENTIMENT_AUTH_TOKENS": "   "},
			`setting SENTIMENT_AUTH_TOKENS="[redacted]": must be comma-separated bearer tokens of at least 16 characters; entry 1 of 1 is blank`},
		{"short token", map[string]string{"SENTIMENT_AUTH_TOKENS": "hunter2"},
			`setting SENTIMENT_AUTH_TOKENS="[redacted]": must be comma-separated bearer tokens of at least 16 characters; entry 1 of 1 has 7`},
		{"redis scheme", map[string]string{"REDIS_URL": "http://:hunter2@cache:6379/0"},
			`setting REDIS_URL="http://:xxxxx@cache:6379/0": must be a Redis URL such as redis://localhost:6379/0 or rediss://:password@host:6380/0 (invalid URL scheme: http)`},
		{"redis database", map[string]string{"REDIS_URL": "redis://user:hunter2@cache:6379/zero"},
			`setting REDIS_URL="redis://user:xxxxx@cache:6379/zero": must be a Redis URL such as redis://localhost:6379/0 or rediss://:password@host:6380/0 (invalid database number: "zero")`},
		{"redis unparsable", map[string]string{"REDIS_URL": "redis://:hun ter2@cache:bad"},
			`setting REDIS_URL="[redacted]": must be a Redis URL such as redis://localhost:6379/0 or rediss://:password@host:6380/0`},
		{"tls cert missing", map[string]string{"SENTIMENT_TLS_CERT": "/nonexistent/cert.pem", "SENTIMENT_TLS_KEY": key},
			`setting SENTIMENT_TLS_CERT="/nonexistent/cert.pem": must be a readable PEM certificate file (no such file or directory)`},
		{"tls key missing", map[string]string{"SENTIMENT_TLS_CERT": cert, "SENTIMENT_TLS_KEY": "/nonexistent/key.pem"},
			`setting SENTIMENT_TLS_KEY="/nonexistent/key.pem": must be a readable PEM private key file (no such file or directory)`},
		{"tls swapped", map[string]string{"SENTIMENT_TLS_CERT": key, "SENTIMENT_TLS_KEY": cert},
			fmt.Sprintf(`setting SENTIMENT_TLS_CERT=%q, SENTIMENT_TLS_KEY=%q: must be a PEM certificate and the private key that matches it (tls: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched)`, key, cert)},
		{"gpu thresholds", map[string]string{"SENTIMENT_GPU_HIGH_WATER": "95", "SENTIMENT_GPU_CRITICAL": "90"},
			`setting SENTIMENT_GPU_HIGH_WATER="95", SENTIMENT_GPU_CRITICAL="90": high water must be below critical`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(nil, env(tt.env), io.Discard)
			var se *SettingError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SettingError", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n  %s\nwant\n  %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestAnswerMarginAndTierReserveDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TierReserve != 2*time.Second || c.AnswerMargin != 100*time.Millisecond {
		t.Errorf("tier reserve %v, answer margin %v; want 2s (as the README says) and 100ms", c.TierReserve, c.AnswerMargin)
	}
	var help strings.Builder
	_, _ = Load([]string{"-help"}, env(nil), &help)
	if !strings.Contains(help.String(), "(env SENTIMENT_TIER_RESERVE) (default 2)") {
		t.Errorf("-help does not show the tier reserve's default of 2:\n%s", help.String())
	}
}

func TestAlertSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "webhooks")
	body := "# channels\nalerts = https://discord.com/api/webhooks/1/tok1\n\nops=https://discord.com/api/webhooks/2/tok2, dev=http://127.0.0.1:9/api/webhooks/3/tok3\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(nil, env(map[string]string{
		"SENTIMENT_DISCORD_WEBHOOKS": "@" + file,
		"SENTIMENT_ALERT_CHANNEL":    "ops",
		"SENTIMENT_ALERT_TIMEOUT":    "4",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.DiscordWebhooks) != 3 || c.DiscordWebhooks["alerts"].Reveal() != "https://discord.com/api/webhooks/1/tok1" || c.AlertChannel != "ops" || c.AlertTimeout != 4*time.Second {
		t.Errorf("webhooks %d, channel %q, timeout %v", len(c.DiscordWebhooks), c.AlertChannel, c.AlertTimeout)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default channel not configured", map[string]string{"SENTIMENT_DISCORD_WEBHOOKS": "a=https://discord.com/api/webhooks/1/t", "SENTIMENT_ALERT_CHANNEL": "b"}, `SENTIMENT_ALERT_CHANNEL="b": must be a channel of SENTIMENT_DISCORD_WEBHOOKS (a)`},
		{"missing file", map[string]string{"SENTIMENT_DISCORD_WEBHOOKS": "@" + filepath.Join(dir, "none")}, "reading the webhooks file"},
		{"bad channel name", map[string]string{"SENTIMENT_DISCORD_WEBHOOKS": "a b=https://discord.com/api/webhooks/1/t"}, `channel "a b": a name is 1 to 64 letters`},
		{"channel twice", map[string]string{"SENTIMENT_DISCORD_WEBHOOKS": "a=https://discord.com/api/webhooks/1/t,a=https://discord.com/api/webhooks/2/t"}, `channel "a" is named twice`},
		{"timeout too short", map[string]string{"SENTIMENT_ALERT_TIMEOUT": "0"}, "SENTIMENT_ALERT_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(nil, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "/t,") {
				t.Errorf("error %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestRedisURLForms(t *testing.T) {
	for _, tc := range []struct {
		url                       string
		single, cluster, failover bool
	}{
		{"redis://:pw@cache:6379/0", true, false, false},
		{"redis://:pw@node-a:6379?addr=node-b:6379&addr=node-c:6379", false, true, false},
		{"redis://:pw@sentinel-a:26379/0?master_name=primary&addr=sentinel-b:26379", false, false, true},
	} {
		c, err := Load(nil, env(map[string]string{"REDIS_URL": tc.url}), io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		o, err := ParseRedisURL(c.RedisURL.Reveal())
		if err != nil || (o.Single != nil) != tc.single || (o.Cluster != nil) != tc.cluster || (o.Failover != nil) != tc.failover {
			t.Errorf("%s: %+v %v", tc.url, o, err)
		}
	}
	if o, _ := ParseRedisURL("redis://:pw@node-a:6379?addr=node-b:6379"); o.Cluster == nil || len(o.Cluster.Addrs) != 2 {
		t.Errorf("cluster nodes: %+v", o.Cluster)
	}
}
