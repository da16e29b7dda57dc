package upstreamtest

import (
	"encoding/json"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// psBody is GET /api/ps as the fake answers it.
type psBody struct {
	Models []struct {
		Name          string `json:"name"`
		Size          uint64 `json:"size"`
		SizeVRAM      uint64 `json:"size_vram"`
		ExpiresAt     string `json:"expires_at"`
		ContextLength int    `json:"context_length"`
	} `json:"models"`
}

func getPS(t *testing.T, f *Fake) psBody {
	t.Helper()
	resp, err := f.Client().Get(f.URL + "/api/ps")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ps psBody
	if err := json.NewDecoder(resp.Body).Decode(&ps); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/ps: %d %v", resp.StatusCode, err)
	}
	return ps
}

// TestOllamaModelState checks preload, unload, /api/ps, the hooks, the
// reload on another num_ctx and the keep-alive expiry, in a bubble so that
// the expiry runs on the fake clock.
func TestOllamaModelState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewMemory(t, Ollama)
		hc := f.Client()
		var events []string
		f.OnLoad(func(m string) { events = append(events, "load "+m) })
		f.OnUnload(func(m string) { events = append(events, "unload "+m) })
		f.SetModelSize(6000, 5000)

		if ps := getPS(t, f); len(ps.Models) != 0 {
			t.Fatalf("models before any load: %+v", ps)
		}
		resp, b, err := post(t, hc, f.URL+"/api/generate", `{"model":"mistral","keep_alive":"10m","options":{"num_ctx":2048}}`)
		if err != nil || resp.StatusCode != 200 || !json.Valid(b) {
			t.Fatalf("preload: %v %s", err, b)
		}
		var ans struct {
			Done       bool   `json:"done"`
			DoneReason string `json:"done_reason"`
		}
		if json.Unmarshal(b, &ans); !ans.Done || ans.DoneReason != "load" {
			t.Errorf("preload answer %s", b)
		}
		ps := getPS(t, f)
		if len(ps.Models) != 1 || ps.Models[0].Name != "mistral:latest" || ps.Models[0].Size != 6000 ||
			ps.Models[0].SizeVRAM != 5000 || ps.Models[0].ContextLength != 2048 {
			t.Errorf("/api/ps after preload: %+v", ps)
		}
		if exp, err := time.Parse(time.RFC3339Nano, ps.Models[0].ExpiresAt); err != nil || time.Until(exp) != 10*time.Minute {
			t.Errorf("expires_at %q, want 10m from now", ps.Models[0].ExpiresAt)
		}

		// A call with the same num_ctx uses the loaded model; another
		// num_ctx reloads it, as Ollama's needsReload does.
		post(t, hc, f.URL+"/api/chat", `{"model":"mistral:latest","messages":[{"role":"user","content":"x"}],"options":{"num_ctx":2048}}`)
		post(t, hc, f.URL+"/api/chat", `{"model":"mistral","messages":[{"role":"user","content":"x"}],"options":{"num_ctx":4096}}`)
		// An empty message list is a chat-endpoint preload; keep_alive 0
		// unloads.
		resp, b, _ = post(t, hc, f.URL+"/api/chat", `{"model":"mistral","messages":[],"keep_alive":0}`)
		if json.Unmarshal(b, &ans); resp.StatusCode != 200 || ans.DoneReason != "unload" {
			t.Errorf("unload answer %d %s", resp.StatusCode, b)
		}
		if len(f.Loaded()) != 0 {
			t.Errorf("loaded after unload: %+v", f.Loaded())
		}
		if f.Calls() != 2 {
			t.Errorf("Calls = %d, want 2 (load requests are not model calls)", f.Calls())
		}

		// A keep-alive runs out on the fake clock.
		post(t, hc, f.URL+"/api/generate", `{"model":"llama3:8b","keep_alive":60}`)
		time.Sleep(59 * time.Second)
		if got := f.Loaded(); len(got) != 1 || got[0].Name != "llama3:8b" || got[0].ContextLength != 4096 {
			t.Errorf("loaded before expiry: %+v", got)
		}
		time.Sleep(time.Second)
		if got := f.Loaded(); len(got) != 0 {
			t.Errorf("loaded after expiry: %+v", got)
		}

		want := []string{"load mistral:latest", "unload mistral:latest", "load mistral:latest",
			"unload mistral:latest", "load llama3:8b", "unload llama3:8b"}
		if !slices.Equal(events, want) {
			t.Errorf("events %q\nwant   %q", events, want)
		}
	})
}

// TestOllamaLoadScript: PushLoad scripts load requests apart from model
// calls, and the default load behaviour can be replaced.
func TestOllamaLoadScript(t *testing.T) {
	f := New(t, Ollama)
	hc := client(t)
	f.PushLoad(Error(500, "llama runner process has terminated: exit status 2"))
	f.Push(Error(503, "busy"))
	resp, _, err := post(t, hc, f.URL+"/api/generate", `{"model":"mistral"}`)
	if err != nil || resp.StatusCode != 500 {
		t.Errorf("scripted load: %v %v", resp, err)
	}
	resp, _, _ = post(t, hc, f.URL+"/api/generate", `{"model":"mistral"}`)
	if resp.StatusCode != 200 || len(f.Loaded()) != 1 {
		t.Errorf("default load: %d, loaded %+v", resp.StatusCode, f.Loaded())
	}
	resp, _, _ = post(t, hc, f.URL+"/api/generate", `{"model":"mistral","prompt":"hi"}`)
	if resp.StatusCode != 503 || f.Calls() != 1 {
		t.Errorf("model call after loads: %d, calls %d; want the pushed 503 and one call", resp.StatusCode, f.Calls())
	}
	f.SetLoadDefault(Error(404, `model "mistral" not found, try pulling it first`))
	if resp, _, _ = post(t, hc, f.URL+"/api/generate", `{"model":"mistral","keep_alive":0}`); resp.StatusCode != 404 {
		t.Errorf("load default replaced: %d", resp.StatusCode)
	}
}
