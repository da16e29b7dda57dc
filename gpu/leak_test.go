package gpu

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
	"github.com/catalystbot/sentiment/lexicon"
	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/router"
)

// watchedReader is the sysfs reader with a check on every reading the
// manager takes: the card must never be at or above critical.
type watchedReader struct {
	Reader
	t        *testing.T
	critical float64

	mu    sync.Mutex
	reads int
	peak  float64
}

func (r *watchedReader) Read(ctx context.Context) ([]Device, error) {
	devices, err := r.Reader.Read(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range devices {
		r.reads++
		pct := d.UsedFraction() * 100
		r.peak = max(r.peak, pct)
		if pct >= r.critical {
			r.t.Errorf("reading %d at %v: VRAM %.1f%% used, at or above critical %g%%", r.reads, time.Now(), pct, r.critical)
		}
	}
	return devices, err
}

// TestLeakingModelServer is the owner's failure, simulated: a model server
// whose VRAM use grows with every call (16 MiB a call here; ollama#10597
// saw about 300 MB a load cycle) and falls only when the model is
// unloaded. 2,000 items go through the real router, local tier first,
// Gemini behind it, with the manager as the local tier's gate and the real
// GPU queue in front of the model. The policy must keep the card below
// critical at every reading, and every item must get a model's answer:
// the local model's, or Gemini's while the gate is closed.
func TestLeakingModelServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			items       = 2000
			workers     = 8
			leakPerCall = 16 << 20
			callTime    = 100 * time.Millisecond
			loadTime    = 2 * time.Second
			cloudTime   = 300 * time.Millisecond
		)
		ollamaFake := upstreamtest.NewMemory(t, upstreamtest.Ollama)
		gemini := upstreamtest.NewMemory(t, upstreamtest.Gemini)
		card := newFakeGPU(t)
		card.attach(ollamaFake)
		ollamaFake.SetDefault(upstreamtest.Delay(callTime, upstreamtest.Func(func(c *upstreamtest.Call) {
			card.grow(leakPerCall)
			upstreamtest.Answer(upstreamtest.BullishJSON)(c)
		})))
		ollamaFake.SetLoadDefault(upstreamtest.Delay(loadTime, upstreamtest.OllamaModelControl()))
		gemini.SetDefault(upstreamtest.Delay(cloudTime, upstreamtest.Answer(upstreamtest.BullishJSON)))

		queue, err := batcher.New(batcher.Config{MaxConcurrent: 4, QueueSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		// One client for the local tier and the manager, as the service has.
		ctl := ollama.New(ollama.Config{BaseURL: ollamaFake.URL, Model: "mistral", KeepAlive: "30m", NumCtx: 2048, Seed: 42}, ollamaFake.Client())
		reader := &watchedReader{Reader: NewSysfs(card.root), t: t, critical: 90}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		m, err := NewManager(ManagerConfig{
			Reader:        reader,
			Controller:    ctl,
			Queue:         queue,
			MaxConcurrent: 4,
			Policy:        testPolicy(),
		}, log)
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(router.Config{
			Tiers: []router.TierConfig{
				{Tier: router.TierLocal, Model: "mistral", Timeout: 15 * time.Second, Queue: queue, Gate: m,
					Provider: router.NewOllama(ctl)},
				{Tier: router.TierGemini, Model: "gemini-2.5-flash", Timeout: 20 * time.Second,
					Provider: router.NewGemini(router.GeminiConfig{BaseURL: gemini.URL, Model: "gemini-2.5-flash", APIKey: "gk"}, gemini.Client())},
			},
			MaxRetries:  2,
			RetryDelay:  10 * time.Millisecond,
			MaxBackoff:  100 * time.Millisecond,
			MinTierTime: 250 * time.Millisecond,
			Breaker:     router.BreakerConfig{Failures: 5, Cooldown: 30 * time.Second, HalfOpenSuccesses: 1},
		}, log)
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(t.Context())
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			m.Run(runCtx)
		}()

		pre := lexicon.Prescore{Score: 0.5, Compound: 0.4, Keyword: 0.6}
		var (
			mu          sync.Mutex
			byTier      = map[router.Tier]int{}
			gateSpilled int
			degraded    []string
		)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range items / workers {
					ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
					res := r.Judge(ctx, router.Request{Item: router.Item{Ticker: "ACME", Title: fmt.Sprintf("Acme raises guidance, item %d-%d", w, i)}, Prescore: pre})
					cancel()
					mu.Lock()
					byTier[res.Tier]++
					if res.Degraded {
						degraded = append(degraded, res.Reason)
					}
					if res.Tier == router.TierGemini && len(res.Tried) > 0 && strings.Contains(res.Tried[0].Detail, "GPU gate closed") {
						gateSpilled++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		stop()
		<-ran

		st := m.Status()
		loads, unloads := card.counts()
		t.Logf("answers by tier %v (%d sent to Gemini by the closed gate); %d cleanups (last: %s); %d loads, %d unloads; %d readings, peak %.1f%%; %v of virtual time",
			byTier, gateSpilled, st.Cleanups, st.LastCleanupReason, loads, unloads, reader.reads, reader.peak, time.Since(time.Unix(946684800, 0)))
		if len(degraded) > 0 {
			t.Errorf("%d of %d items got no model's answer; first: %s", len(degraded), items, degraded[0])
		}
		if byTier[router.TierLocal]+byTier[router.TierGemini] != items {
			t.Errorf("answers by tier %v, want all %d from local or Gemini", byTier, items)
		}
		if byTier[router.TierLocal] < items/2 || gateSpilled == 0 {
			t.Errorf("local answered %d, the closed gate sent %d to Gemini; want most local and some spilled", byTier[router.TierLocal], gateSpilled)
		}
		if st.Cleanups < 2 {
			t.Errorf("%d cleanups: the leak should have needed several", st.Cleanups)
		}
		// Every load but the first followed a cleanup's unload: the
		// warm-up's num_ctx matched the router's, so no call reloaded the
		// model.
		if uint64(loads) != st.Cleanups+1 || uint64(unloads) != st.Cleanups {
			t.Errorf("%d loads and %d unloads for %d cleanups: something reloaded the model", loads, unloads, st.Cleanups)
		}
		if reader.peak < 80 {
			t.Errorf("peak %.1f%%: the leak never reached high water, the test proves nothing", reader.peak)
		}
	})
}
