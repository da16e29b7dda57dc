package ollama

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/upstream"
)

// loopbackClient is an HTTP client whose idle connections are closed when
// the test ends, so goleak sees no transport goroutines.
func loopbackClient(t *testing.T) *http.Client {
	hc := upstream.NewHTTPClient(4)
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func controller(url string, hc *http.Client) *Client {
	return New(Config{BaseURL: url, Model: "mistral", KeepAlive: "30m", NumCtx: 2048}, hc)
}

// TestControlWarmUnloadPS drives the controller against the Ollama fake
// over loopback HTTP: the preload carries the router's keep_alive and
// num_ctx, /api/ps is parsed, and the unload sends keep_alive 0.
func TestControlWarmUnloadPS(t *testing.T) {
	f := upstreamtest.New(t, upstreamtest.Ollama)
	f.SetModelSize(5637144576, 5137025024) // partly on the CPU
	// The owner's old endpoint value ends in /api/generate.
	c := controller(f.URL+"/api/generate", loopbackClient(t))

	if _, err := c.Warm(t.Context()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	req := f.LastRequest()
	if req.Path != "/api/generate" || req.Field("model") != "mistral" || req.Field("keep_alive") != "30m" ||
		req.Field("options.num_ctx") != 2048.0 || req.Field("prompt") != nil || req.Field("stream") != false {
		t.Errorf("preload request %s: want model mistral, keep_alive \"30m\", options.num_ctx 2048, no prompt, stream false", req.Raw)
	}
	if f.Calls() != 0 {
		t.Errorf("a preload counted as %d model calls", f.Calls())
	}

	ps, err := c.PS(t.Context())
	if err != nil {
		t.Fatalf("PS: %v", err)
	}
	if len(ps) != 1 {
		t.Fatalf("PS = %+v, want one model", ps)
	}
	got := ps[0]
	if got.Name != "mistral:latest" || got.Size != 5637144576 || got.SizeVRAM != 5137025024 || got.ContextLength != 2048 {
		t.Errorf("PS model = %+v", got)
	}
	if d := time.Until(got.ExpiresAt); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("expires_at %v is %v away, want about 30m (keep_alive)", got.ExpiresAt, d)
	}
	if lm, ok := c.Find(ps); !ok || lm.Name != "mistral:latest" {
		t.Errorf("Find(mistral) = %+v, %v", lm, ok)
	}
	if _, ok := New(Config{BaseURL: f.URL, Model: "llama3"}, nil).Find(ps); ok {
		t.Error("Find(llama3) found mistral")
	}

	if err := c.Unload(t.Context()); err != nil {
		t.Fatalf("Unload: %v", err)
	}
	req = f.LastRequest()
	if ka, ok := req.Field("keep_alive").(float64); !ok || ka != 0 || req.Field("model") != "mistral" {
		t.Errorf("unload request %s: want model mistral, keep_alive 0 (a number)", req.Raw)
	}
	if ps, err := c.PS(t.Context()); err != nil || len(ps) != 0 {
		t.Errorf("PS after unload = %+v, %v; want none", ps, err)
	}
}

// TestControlWarmRetries: a 500 while loading is retried, up to three
// attempts; a 404 (model never pulled) is not; the error says what was
// being done.
func TestControlWarmRetries(t *testing.T) {
	crash := upstreamtest.Error(500, "llama runner process has terminated: exit status 2")
	cases := []struct {
		name     string
		script   []upstreamtest.Behavior
		wantErr  string
		status   int
		requests int
	}{
		{name: "500 twice then loaded", script: []upstreamtest.Behavior{crash, crash}, requests: 3},
		{name: "500 three times", script: []upstreamtest.Behavior{crash, crash, crash},
			wantErr: "preloading mistral: http 500: llama runner process has terminated", status: 500, requests: 3},
		{name: "404 not retried", script: []upstreamtest.Behavior{upstreamtest.OllamaModelNotFound("mistral")},
			wantErr: "not found, try pulling it first", status: 404, requests: 1},
		{name: "error in a 200 body", script: []upstreamtest.Behavior{upstreamtest.OllamaErrorLine("out of memory"), upstreamtest.OllamaModelControl()},
			requests: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := upstreamtest.New(t, upstreamtest.Ollama)
			f.PushLoad(tc.script...)
			c := controller(f.URL, loopbackClient(t))
			c.retryDelay = time.Millisecond
			_, err := c.Warm(t.Context())
			if n := len(f.ControlRequests()); n != tc.requests {
				t.Errorf("%d preload requests, want %d", n, tc.requests)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Warm: %v", err)
				}
				if len(f.Loaded()) != 1 {
					t.Errorf("loaded %+v after Warm", f.Loaded())
				}
				return
			}
			var ue *upstream.Error
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ue) || ue.Status != tc.status {
				t.Errorf("Warm error %v, want one containing %q with status %d", err, tc.wantErr, tc.status)
			}
		})
	}
}

// TestControlWarmBackoff checks the waits between preloads (1 s, then
// 2 s) and that the latency returned is the successful load's own.
func TestControlWarmBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := upstreamtest.NewMemory(t, upstreamtest.Ollama)
		crash := upstreamtest.Error(500, "llama runner process has terminated: exit status 2")
		f.PushLoad(crash, crash, upstreamtest.Delay(4*time.Second, upstreamtest.OllamaModelControl()))
		c := controller(f.URL, f.Client())
		start := time.Now()
		lat, err := c.Warm(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 7*time.Second {
			t.Errorf("Warm took %v, want 7s (1s + 2s of backoff, 4s of loading)", took)
		}
		if lat != 4*time.Second {
			t.Errorf("latency %v, want the 4s load", lat)
		}
	})
}

// TestControlServerDown: a refused connection fails every attempt with
// an error that names the operation and unwraps to the dial error.
func TestControlServerDown(t *testing.T) {
	f := upstreamtest.New(t, upstreamtest.Ollama)
	f.Close()
	c := controller(f.URL, loopbackClient(t))
	c.retryDelay = time.Millisecond
	if _, err := c.Warm(t.Context()); err == nil || !strings.Contains(err.Error(), "ollama preloading mistral") {
		t.Errorf("Warm on a closed server: %v", err)
	} else if !upstream.AsError(err).ConnectionRefused() {
		t.Errorf("Warm error %v is not seen as a refused connection", err)
	}
	if _, err := c.PS(t.Context()); err == nil || !strings.Contains(err.Error(), "listing loaded models") {
		t.Errorf("PS on a closed server: %v", err)
	}
	if err := c.Unload(t.Context()); err == nil || !strings.Contains(err.Error(), "unloading mistral") {
		t.Errorf("Unload on a closed server: %v", err)
	}
}

// TestRunnerCrashIsMarked: the errors that say the runner died are marked
// Crash, whether Ollama sends them as a 500 or in a 200 body; other
// failures are not.
func TestRunnerCrashIsMarked(t *testing.T) {
	tests := []struct {
		name  string
		b     upstreamtest.Behavior
		crash bool
	}{
		{"500 runner terminated", upstreamtest.OllamaRunnerTerminated(), true},
		{"200 runner stopped", upstreamtest.OllamaErrorLine("model runner has unexpectedly stopped, this may be due to resource limitations"), true},
		{"500 other", upstreamtest.Error(500, "CUDA error: an illegal memory access was encountered"), false},
		{"503 busy", upstreamtest.OllamaBusy(), false},
		{"404", upstreamtest.OllamaModelNotFound("mistral"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := upstreamtest.New(t, upstreamtest.Ollama)
			f.Push(tt.b)
			_, _, err := controller(f.URL, loopbackClient(t)).Chat(t.Context(), ChatRequest{System: "s", User: "u"})
			var e *upstream.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want an *upstream.Error", err, err)
			}
			if e.Crash != tt.crash {
				t.Errorf("error %q: Crash = %v, want %v", err, e.Crash, tt.crash)
			}
		})
	}
}
