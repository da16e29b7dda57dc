package sim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/internal/llmapi"
)

// readCard reads the simulated card through the service's own sysfs
// reader, as the GPU manager does.
func readCard(t *testing.T, root string) gpu.Device {
	t.Helper()
	devs, err := gpu.NewSysfs(root).Read(t.Context())
	if err != nil || len(devs) != 1 {
		t.Fatalf("sysfs reader: %v, %d devices", err, len(devs))
	}
	return devs[0]
}

// TestVRAMLeak follows the card through the service's sysfs reader: a
// preload adds the model's size, each call leaks, an unload frees the
// model and (unless the scenario keeps it, as on ROCm) the leak, and a
// restart of the model server frees everything.
func TestVRAMLeak(t *testing.T) {
	const base, model, leak = 1024 * MiB, 4899 * MiB, 100 * MiB
	for _, tc := range []struct {
		name         string
		freeOnUnload bool
		afterUnload  uint64
	}{
		{"freed on unload", true, base},
		{"kept as on ROCm", false, base + 3*leak},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			w := newWorld(t, Options{SysfsRoot: root}, func(sc *Scenario) {
				sc.GPU.LeakMiBPerCall, sc.GPU.FreeOnUnload = 100, tc.freeOnUnload
			})
			d := readCard(t, root)
			if d.VRAMTotal != 16368*MiB || d.VRAMUsed != base || d.Vendor != "amd" || d.PCIBusID != pciSlot ||
				d.BusyPercent == nil || *d.BusyPercent != 0 || d.TemperatureC == nil || *d.TemperatureC != 45 {
				t.Fatalf("idle card %+v", d)
			}
			c := w.ollama()
			if _, err := c.Warm(t.Context()); err != nil {
				t.Fatal(err)
			}
			if d := readCard(t, root); d.VRAMUsed != base+model {
				t.Errorf("after preload: used %d MiB, want %d", d.VRAMUsed/MiB, (base+model)/MiB)
			}
			p := w.provider(llmapi.Ollama)
			for range 3 {
				if _, _, err := p.Judge(t.Context(), prompt(t, "Acme raises guidance")); err != nil {
					t.Fatal(err)
				}
			}
			if d := readCard(t, root); d.VRAMUsed != base+model+3*leak {
				t.Errorf("after 3 calls: used %d MiB, want %d", d.VRAMUsed/MiB, (base+model+3*leak)/MiB)
			}
			if err := c.Unload(t.Context()); err != nil {
				t.Fatal(err)
			}
			if d := readCard(t, root); d.VRAMUsed != tc.afterUnload {
				t.Errorf("after unload: used %d MiB, want %d", d.VRAMUsed/MiB, tc.afterUnload/MiB)
			}
			if st := w.state().GPU; st.UsedBytes != tc.afterUnload || st.Sysfs != root {
				t.Errorf("state's card %+v", st)
			}
			var g cardState
			if code := w.control(http.MethodPost, "/_sim/ollama/restart", "", &g); code != http.StatusOK || g.UsedBytes != base || g.LeakedBytes != 0 {
				t.Errorf("restart: %d %+v", code, g)
			}
			if d := readCard(t, root); d.VRAMUsed != base {
				t.Errorf("after restart: used %d MiB, want %d", d.VRAMUsed/MiB, base/MiB)
			}
		})
	}
}

// TestOutOfMemory: on a card with room for the model and little else, the
// leak fills it and the next call's runner dies out of memory, taking its
// model down; the service's client reads a crash. A load that does not fit
// fails the same way.
func TestOutOfMemory(t *testing.T) {
	root := t.TempDir()
	w := newWorld(t, Options{SysfsRoot: root}, func(sc *Scenario) {
		sc.GPU = GPU{TotalMiB: 6000, BaseMiB: 1024, ModelMiB: 4899, LeakMiBPerCall: 100}
	})
	p := w.provider(llmapi.Ollama)
	if _, _, err := p.Judge(t.Context(), prompt(t, "Acme raises guidance")); err != nil {
		t.Fatalf("first call: %v", err)
	}
	if d := readCard(t, root); d.VRAMUsed != d.VRAMTotal {
		t.Errorf("after the leak: used %d of %d MiB, want full", d.VRAMUsed/MiB, d.VRAMTotal/MiB)
	}
	_, _, err := p.Judge(t.Context(), prompt(t, "Acme raises guidance"))
	if e := wantHTTPError(t, err, http.StatusInternalServerError); !e.Crash {
		t.Errorf("call on a full card: %v, want the runner's crash", e)
	}
	st := w.state()
	if len(st.Ollama.Loaded) != 0 || st.Upstreams[NameOllama].Errors[KindOOM] != 1 {
		t.Errorf("after the crash: %+v %+v", st.Ollama, st.Upstreams[NameOllama].Errors)
	}
	// The leak (1124 MiB with the base) leaves no room for the model. (A
	// raw preload: the client's Warm would retry it with pauses.)
	resp, err := w.hc.Post(w.url+"/api/generate", "application/json", strings.NewReader(`{"model":"mistral","keep_alive":"30m"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(b), llmapi.OllamaRunnerTerminated+": error: out of memory") {
		t.Errorf("preload that does not fit: %d %s", resp.StatusCode, b)
	}
}

// TestBusyFollowsSlots: gpu_busy_percent is the share of Ollama's slots in
// use, read through the sysfs reader while calls are held.
func TestBusyFollowsSlots(t *testing.T) {
	root := t.TempDir()
	w := newWorld(t, Options{SysfsRoot: root}, func(sc *Scenario) {
		sc.Ollama.Slots, sc.Ollama.Errors.Hang = 4, 1
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = w.provider(llmapi.Ollama).Judge(ctx, prompt(t, "Acme raises guidance"))
	}()
	w.await("a call in a slot", func(st State) bool { return st.Upstreams[NameOllama].InFlight == 1 })
	if d := readCard(t, root); d.BusyPercent == nil || *d.BusyPercent != 25 || *d.TemperatureC != 52.5 {
		t.Errorf("one of 4 slots busy: %v %%, %v °C", deref(d.BusyPercent), deref(d.TemperatureC))
	}
	cancel()
	<-done
	w.await("the slot back", func(st State) bool { return st.Upstreams[NameOllama].InFlight == 0 })
	if d := readCard(t, root); *d.BusyPercent != 0 {
		t.Errorf("idle: busy %v %%", *d.BusyPercent)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
