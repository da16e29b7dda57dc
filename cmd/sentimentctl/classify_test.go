package main

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
	"github.com/catalystbot/sentiment/internal/tlstest"
	"github.com/catalystbot/sentiment/secret"
)

// TestClassifyPrintsTheAnswer: the headline comes before its flags, the
// words of it are joined, and every field of the answer is printed.
func TestClassifyPrintsTheAnswer(t *testing.T) {
	addr := startServer(t, testConfig())
	r := runCLI(t, invocation{env: map[string]string{"SENTIMENT_ADDR": addr}},
		"classify", "Acme soars after FDA approval", "of its cancer drug", "--ticker", "ACME", "--id", "n1", "--skip-cache")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	fields := map[string]string{}
	for l := range strings.Lines(r.stdout) {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if _, dup := fields[k]; !dup {
			fields[k] = strings.TrimSpace(v)
		}
	}
	want := map[string]string{
		"id":          "n1",
		"label":       "bullish",
		"tier":        "lexicon",
		"model":       "lexicon",
		"prefiltered": "no",
		"cache":       "not consulted",
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q\n%s", k, fields[k], v, r.stdout)
		}
	}
	// No model tier is enabled: the lexicon's answer is degraded, and says
	// why.
	if !strings.HasPrefix(fields["degraded"], "yes: ") || !strings.Contains(fields["degraded"], "local") {
		t.Errorf("degraded = %q", fields["degraded"])
	}
	for _, k := range []string{"score", "confidence", "latency", "rationale", "prescore", "tried"} {
		if fields[k] == "" {
			t.Errorf("no %s line:\n%s", k, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, `"fda approval"`) {
		t.Errorf("the keyword hit is not shown:\n%s", r.stdout)
	}
}

// TestClassifyJSON: --json (here before the command) prints the response
// as protojson with the proto field names.
func TestClassifyJSON(t *testing.T) {
	addr := startServer(t, testConfig())
	r := runCLI(t, invocation{}, "--json", "--addr", addr, "classify", "--id", "j1", "Acme misses estimates and cuts guidance")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("want one line:\n%s", r.stdout)
	}
	var resp pb.ClassifyResponse
	if err := protojson.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if resp.GetId() != "j1" || resp.GetLabel() != pb.Label_LABEL_BEARISH {
		t.Errorf("answer %v", &resp)
	}
	if !strings.Contains(r.stdout, `"cache_hit"`) && !strings.Contains(r.stdout, `"prompt_version"`) {
		t.Errorf("not the proto field names: %s", r.stdout)
	}
}

// TestClassifyServerErrorIsNotUnreachable: require_llm with no model is
// UNAVAILABLE from the server itself: exit status 1, not 3. A bad item is
// 1 too.
func TestClassifyServerErrorIsNotUnreachable(t *testing.T) {
	addr := startServer(t, testConfig())
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"require llm", []string{"classify", "--require-llm", "Acme beats estimates"}, "classify: Unavailable: "},
		{"title too long", []string{"classify", strings.Repeat("x", 1001)}, "classify: InvalidArgument: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, invocation{}, append(tt.args, "--addr", addr)...)
			if r.code != exitFailed {
				t.Errorf("exit status %d, want 1\nstderr: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q: %s", tt.want, r.stderr)
			}
		})
	}
}

// TestTLSAndToken: a server with TLS and bearer tokens is reached with
// --tls-ca and the token from the flag or SENTIMENT_TOKEN; without the
// token the call fails (1); without TLS the handshake does (3). The token
// never shows in the output.
func TestTLSAndToken(t *testing.T) {
	const token = "token-aaaaaaaaaaaa"
	cert, key := tlstest.SelfSigned(t)
	cfg := testConfig()
	cfg.TLSCert, cfg.TLSKey = cert, key
	cfg.AuthTokens = []secret.Secret{token}
	addr := startServer(t, cfg)

	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"token flag", nil, []string{"--tls-ca", cert, "--token", token}, 0},
		{"token from env", map[string]string{"SENTIMENT_TOKEN": token}, []string{"--tls-ca", cert}, 0},
		{"no token", nil, []string{"--tls-ca", cert}, exitFailed},
		{"wrong token", nil, []string{"--tls-ca", cert, "--token", "token-bbbbbbbbbbbb"}, exitFailed},
		{"plaintext", nil, []string{"--token", token}, exitUnreachable},
		{"system roots", nil, []string{"--tls", "--token", token}, exitUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"classify", "Acme beats estimates", "--addr", addr}, tt.args...)
			r := runCLI(t, invocation{env: tt.env}, args...)
			if r.code != tt.code {
				t.Errorf("exit status %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			if tt.code == exitFailed && !strings.Contains(r.stderr, "Unauthenticated") {
				t.Errorf("stderr: %s", r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, token) {
				t.Errorf("the token was printed")
			}
		})
	}

	r := runCLI(t, invocation{env: map[string]string{"SENTIMENT_TOKEN": token}}, "classify", "-help")
	if r.code != 0 || strings.Contains(r.stdout, token) || !strings.Contains(r.stdout, "[redacted]") {
		t.Errorf("help shows the token's default wrongly:\n%s", r.stdout)
	}
}
