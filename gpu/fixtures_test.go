package gpu

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/ollama"
)

// Figures of the fake card: an RX 6800 (gpu.md 1.2: a 16 GB Navi 21
// reports 17163091968 bytes), a desktop using 1 GiB, and the docs' Mistral
// 7B Q4_0 (about 4.8 GiB) when loaded.
const (
	rx6800Total = 17163091968
	desktopVRAM = 1 << 30
	modelVRAM   = upstreamtest.DefaultModelSize
)

// fakeGPU is a fake sysfs tree with one RX 6800 whose mem_info_vram_used
// follows a simulated model server: the desktop's share, plus the model
// while it is loaded, plus whatever the runner has leaked. Wired to the
// Ollama fake's OnLoad and OnUnload, it moves the way the real counter
// does when Ollama loads and unloads; stuck makes an unload leave the
// memory held (ollama#7606).
type fakeGPU struct {
	t    testing.TB
	root string
	path string // mem_info_vram_used

	mu     sync.Mutex
	base   uint64
	loaded bool
	leak   uint64
	stuck  bool
	// keepLeak makes an unload free the model but keep what the runner
	// leaked (llmsim's free_on_unload false).
	keepLeak bool
	loads    int
	unloads  int
}

// newFakeGPU writes the tree under a temporary directory, with no model
// loaded.
func newFakeGPU(t testing.TB) *fakeGPU {
	t.Helper()
	root := t.TempDir()
	dev := filepath.Join(root, "class", "drm", "card0", "device")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"vendor":              "0x1002\n",
		"device":              "0x73bf\n",
		"uevent":              "DRIVER=amdgpu\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:03:00.0\n",
		"mem_info_vram_total": fmt.Sprintf("%d\n", rx6800Total),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dev, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := &fakeGPU{t: t, root: root, path: filepath.Join(dev, "mem_info_vram_used"), base: desktopVRAM}
	g.mu.Lock()
	g.writeLocked()
	g.mu.Unlock()
	return g
}

// attach makes the Ollama fake drive the card.
func (g *fakeGPU) attach(f *upstreamtest.Fake) {
	f.SetModelSize(modelVRAM, modelVRAM)
	f.OnLoad(func(string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.loaded = true
		g.loads++
		g.writeLocked()
	})
	f.OnUnload(func(string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.loaded = false
		g.unloads++
		if g.stuck {
			// The runner is gone but its memory is not.
			g.leak += modelVRAM
		} else if !g.keepLeak {
			g.leak = 0
		}
		g.writeLocked()
	})
}

// usedLocked is what the driver would report.
func (g *fakeGPU) usedLocked() uint64 {
	u := g.base + g.leak
	if g.loaded {
		u += modelVRAM
	}
	return min(u, rx6800Total)
}

// writeLocked replaces the counter file in one rename, so that a reader
// never sees it half written.
func (g *fakeGPU) writeLocked() {
	tmp := g.path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d\n", g.usedLocked()), 0o644); err != nil {
		g.t.Error(err)
		return
	}
	if err := os.Rename(tmp, g.path); err != nil {
		g.t.Error(err)
	}
}

// setPercent sets the leak so that the card reads pct percent used.
func (g *fakeGPU) setPercent(pct float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leak = 0
	want := uint64(pct / 100 * rx6800Total)
	g.leak = want - min(want, g.usedLocked())
	g.writeLocked()
}

// grow adds n bytes of leak, as one call to a leaking runner does.
func (g *fakeGPU) grow(n uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leak += n
	g.writeLocked()
}

func (g *fakeGPU) setStuck(v bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stuck = v
}

func (g *fakeGPU) setKeepLeak(v bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.keepLeak = v
}

// release frees every byte the model server held, as a restart does.
func (g *fakeGPU) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.leak, g.loaded, g.stuck, g.keepLeak = 0, false, false, false
	g.writeLocked()
}

func (g *fakeGPU) percent() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return float64(g.usedLocked()) / rx6800Total * 100
}

func (g *fakeGPU) counts() (loads, unloads int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.loads, g.unloads
}

// fakeQueue records the ceilings it is given; the test sets InFlight, and
// Idle follows it as the real queue's does.
type fakeQueue struct {
	mu       sync.Mutex
	ceilings []int
	inFlight int
	idle     chan struct{} // nil: none asked for yet
}

func (q *fakeQueue) SetCeiling(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ceilings = append(q.ceilings, n)
}

func (q *fakeQueue) InFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inFlight
}

func (q *fakeQueue) Idle() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.idle == nil {
		q.idle = make(chan struct{})
		if q.inFlight == 0 {
			close(q.idle)
		}
	}
	return q.idle
}

func (q *fakeQueue) setInFlight(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	was := q.inFlight
	q.inFlight = n
	switch {
	case q.idle == nil:
	case was == 0 && n > 0:
		q.idle = make(chan struct{})
	case was > 0 && n == 0:
		close(q.idle)
	}
}

func (q *fakeQueue) history() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]int(nil), q.ceilings...)
}

func (q *fakeQueue) last() int {
	h := q.history()
	if len(h) == 0 {
		return -1
	}
	return h[len(h)-1]
}

// managerEnv is a manager wired to an in-memory Ollama fake, a fake card
// and a fake queue, for tests inside a synctest bubble.
type managerEnv struct {
	t      *testing.T
	m      *Manager
	ollama *upstreamtest.Fake
	gpu    *fakeGPU
	queue  *fakeQueue

	mu   sync.Mutex
	cmds []string
}

// testPolicy polls every second; high water 80 %, critical 90 %.
func testPolicy() Policy {
	return Policy{
		PollInterval: time.Second,
		HighWater:    80,
		Critical:     90,
		MaxFailures:  3,
		DrainTimeout: 10 * time.Second,
		Warmup:       true,
	}
}

// newManagerEnv builds the environment; edit changes the configuration
// before NewManager. Call it inside the bubble.
func newManagerEnv(t *testing.T, edit func(*ManagerConfig)) *managerEnv {
	t.Helper()
	e := &managerEnv{t: t, ollama: upstreamtest.NewMemory(t, upstreamtest.Ollama), gpu: newFakeGPU(t), queue: &fakeQueue{}}
	e.gpu.attach(e.ollama)
	cfg := ManagerConfig{
		Reader:        NewSysfs(e.gpu.root),
		Controller:    ollama.New(ollama.Config{BaseURL: e.ollama.URL, Model: "mistral", KeepAlive: "30m", NumCtx: 2048}, e.ollama.Client()),
		Queue:         e.queue,
		MaxConcurrent: 4,
		Policy:        testPolicy(),
		RunCommand: func(_ context.Context, cmd string) error {
			e.mu.Lock()
			e.cmds = append(e.cmds, cmd)
			e.mu.Unlock()
			e.gpu.release()
			return nil
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := NewManager(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

// start runs the manager until the test ends (the bubble's context is
// canceled before its cleanups run, and the bubble waits for Run).
func (e *managerEnv) start() {
	go e.m.Run(e.t.Context())
}

func (e *managerEnv) commands() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.cmds...)
}
