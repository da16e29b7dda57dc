package upstreamtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// modelPath is each format's model endpoint.
var modelPath = map[Format]string{
	Ollama:    "/api/chat",
	OpenAI:    "/v1/chat/completions",
	Gemini:    "/v1beta/models/gemini-2.5-flash:generateContent",
	Anthropic: "/v1/messages",
}

func post(t *testing.T, hc *http.Client, url, body string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func client(t *testing.T) *http.Client {
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// TestScriptAndRecords checks the queue, the default, the records and the
// envelopes' usage for every format, over TCP and in memory.
func TestScriptAndRecords(t *testing.T) {
	for _, f := range []Format{Ollama, OpenAI, Gemini, Anthropic} {
		for _, mem := range []bool{false, true} {
			name := f.String()
			if mem {
				name += "/memory"
			}
			t.Run(name, func(t *testing.T) {
				var fake *Fake
				hc := client(t)
				if mem {
					fake = NewMemory(t, f)
					hc = fake.Client()
				} else {
					fake = New(t, f)
				}
				fake.Push(Error(503, "first"), AnswerUsage(NeutralJSON, 3, 4))
				fake.SetDefault(Error(500, "default"))
				url := fake.URL + modelPath[f]
				body := `{"model":"m","tool_choice":{"type":"tool","name":"record_judgement"}}`
				for i, want := range []int{503, 200, 500, 500} {
					resp, b, err := post(t, hc, url, body)
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					if resp.StatusCode != want {
						t.Errorf("call %d: status %d, want %d: %s", i, resp.StatusCode, want, b)
					}
					if want == 200 && !bytes.Contains(b, []byte(`3`)) {
						t.Errorf("success body %s", b)
					}
				}
				if resp, _, err := post(t, hc, fake.URL+"/nowhere", "{}"); err != nil || resp.StatusCode != 404 {
					t.Errorf("unknown path: %v, %v", resp, err)
				}
				if got := fake.Calls(); got != 4 {
					t.Errorf("Calls = %d, want 4", got)
				}
				reqs := fake.Requests()
				if len(reqs) != 5 || reqs[0].Path != modelPath[f] || reqs[0].Field("tool_choice.name") != "record_judgement" {
					t.Errorf("records %+v", reqs)
				}
			})
		}
	}
}

func TestMaxInFlight(t *testing.T) {
	fake := New(t, OpenAI)
	release := make(chan struct{})
	fake.SetDefault(Func(func(c *Call) {
		select {
		case <-release:
		case <-c.R.Context().Done():
		}
		Answer(BullishJSON)(c)
	}))
	hc := client(t)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _, _, _ = post(t, hc, fake.URL+modelPath[OpenAI], `{}`) })
	}
	awaitInFlight(t, fake, 3)
	close(release)
	wg.Wait()
	if fake.MaxInFlight() != 3 || fake.InFlight() != 0 {
		t.Errorf("MaxInFlight %d, InFlight %d", fake.MaxInFlight(), fake.InFlight())
	}
}

func TestCloseAndRestart(t *testing.T) {
	fake := New(t, Ollama)
	fake.Push(Hang())
	hc := client(t)
	done := make(chan error, 1)
	go func() { _, _, err := post(t, hc, fake.URL+"/api/chat", `{}`); done <- err }()
	awaitInFlight(t, fake, 1)
	fake.Close() // must not wait for the hanging call
	if err := <-done; err == nil {
		t.Error("hanging call survived Close")
	}
	if _, _, err := post(t, hc, fake.URL+"/api/chat", `{}`); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after Close: %v, want connection refused", err)
	}
	fake.Restart()
	if resp, _, err := post(t, hc, fake.URL+"/api/chat", `{}`); err != nil || resp.StatusCode != 200 {
		t.Errorf("after Restart: %v, %v", resp, err)
	}
}

func TestRequireKey(t *testing.T) {
	fake := New(t, Anthropic)
	fake.RequireKey("good")
	hc := client(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, fake.URL+"/v1/messages", strings.NewReader(`{}`))
	req.Header.Set("x-api-key", "bad")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != 401 || b.Error.Type != "authentication_error" {
		t.Errorf("bad key: %d %+v %v", resp.StatusCode, b, err)
	}
}

// TestMemoryTransportInBubble checks that the in-memory fake waits on the
// fake clock: a hang ends exactly at the deadline, a reset is ECONNRESET.
func TestMemoryTransportInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := NewMemory(t, Gemini)
		hc := fake.Client()
		fake.Push(Hang(), Reset(), SlowBody(BullishJSON, time.Second))
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fake.URL+modelPath[Gemini], strings.NewReader(`{}`))
		if _, err := hc.Do(req); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 10*time.Second {
			t.Errorf("hang: %v after %v", err, time.Since(start))
		}
		if _, _, err := post(t, hc, fake.URL+modelPath[Gemini], `{}`); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("reset: %v", err)
		}
		start = time.Now()
		resp, b, err := post(t, hc, fake.URL+modelPath[Gemini], `{}`)
		if err != nil || resp.StatusCode != 200 || !json.Valid(b) {
			t.Errorf("slow body: %v %s", err, b)
		}
		if time.Since(start) < time.Minute {
			t.Errorf("slow body took only %v", time.Since(start))
		}
	})
}

// awaitInFlight waits, within a bound, for n calls in flight at fake.
func awaitInFlight(t *testing.T, fake *Fake, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := fake.AwaitInFlight(ctx, n); err != nil {
		t.Fatal(err)
	}
}
