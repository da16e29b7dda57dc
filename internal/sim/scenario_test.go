package sim

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "200ms", want: "200ms"},
		{in: " 0 ", want: "0s"},
		{in: "100ms-300ms", want: "100ms-300ms"},
		{in: "1s - 2s", want: "1s-2s"},
		{in: "200ms~50ms", want: "200ms~50ms"},
		{in: "", err: "not a duration"},
		{in: "fast", err: "not a duration"},
		{in: "-5ms", err: "must not be negative"},
		{in: "300ms-100ms", err: "min 300ms is above max 100ms"},
		{in: "200ms~-1ms", err: "must not be negative"},
		{in: "1s-", err: "not a duration"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			l, err := ParseLatency(tc.in)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("ParseLatency(%q) = %v, %v; want an error with %q", tc.in, l, err, tc.err)
			case tc.err == "" && (err != nil || l.String() != tc.want):
				t.Errorf("ParseLatency(%q) = %v, %v; want %s", tc.in, l, err, tc.want)
			}
		})
	}
}

func TestLatencyJSON(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `"50ms"`, want: `"50ms"`},
		{in: `{"fixed":"1s"}`, want: `"1s"`},
		{in: `{"min":"10ms","max":"20ms"}`, want: `"10ms-20ms"`},
		{in: `{"mean":"200ms","stddev":"50ms"}`, want: `"200ms~50ms"`},
		{in: `{"mean":0.2,"stddev":0.05}`, want: `"200ms~50ms"`},
		{in: `{"min":"10ms"}`, err: "give fixed, or min and max"},
		{in: `{"fixed":"1s","max":"2s"}`, err: "give fixed"},
		{in: `{"median":"1s"}`, err: "unknown field"},
		{in: `{"min":"20ms","max":"10ms"}`, err: "above max"},
		{in: `12`, err: "a string"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var l Latency
			err := json.Unmarshal([]byte(tc.in), &l)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%s: %v, want an error with %q", tc.in, err, tc.err)
				}
				return
			}
			out, _ := json.Marshal(l)
			if err != nil || string(out) != tc.want {
				t.Errorf("%s read as %s (%v), want %s", tc.in, out, err, tc.want)
			}
		})
	}
}

// TestLatencySample checks each distribution's draws with a seeded
// generator: the same seed draws the same sequence, uniform draws stay in
// their bounds and cover them, normal draws centre on the mean and never
// go below zero.
func TestLatencySample(t *testing.T) {
	t.Logf("seed %d", *seed)
	const n = 20000
	draw := func(l Latency) []time.Duration {
		r := newRand(*seed)
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = l.Sample(r)
		}
		return out
	}
	uni := mustLatency(t, "100ms-300ms")
	a, b := draw(uni), draw(uni)
	lo, hi := time.Hour, time.Duration(0)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs with the same seed: %v, %v", i, a[i], b[i])
		}
		lo, hi = min(lo, a[i]), max(hi, a[i])
	}
	if lo < 100*time.Millisecond || hi > 300*time.Millisecond || lo > 102*time.Millisecond || hi < 298*time.Millisecond {
		t.Errorf("uniform draws span %v to %v, want about 100ms to 300ms", lo, hi)
	}

	var sum float64
	neg := 0
	for _, d := range draw(mustLatency(t, "200ms~50ms")) {
		sum += float64(d)
		if d < 0 {
			neg++
		}
	}
	if mean := time.Duration(sum / n); neg > 0 || math.Abs(float64(mean-200*time.Millisecond)) > float64(2*time.Millisecond) {
		t.Errorf("normal draws: mean %v (want 200ms ± 2ms), %d below zero", mean, neg)
	}
	for _, d := range draw(mustLatency(t, "1ms~50ms")) {
		if d < 0 {
			t.Fatalf("a draw below zero: %v", d)
		}
	}
	if d := Fixed(7 * time.Millisecond).Sample(newRand(*seed)); d != 7*time.Millisecond {
		t.Errorf("fixed draws %v", d)
	}
}

// TestErrorRatesDraw: one draw picks each kind in its share.
func TestErrorRatesDraw(t *testing.T) {
	t.Logf("seed %d", *seed)
	rates := ErrorRates{E500: 0.2, Hang: 0.1, Prose: 0.05}
	r := newRand(*seed)
	const n = 50000
	got := map[string]int{}
	for range n {
		got[rates.draw(r.Float64())]++
	}
	for kind, want := range map[string]float64{Kind500: 0.2, KindHang: 0.1, KindProse: 0.05, "": 0.65, Kind503: 0} {
		if share := float64(got[kind]) / n; math.Abs(share-want) > 0.01 {
			t.Errorf("kind %q drawn %.3f of the time, want %.2f", kind, share, want)
		}
	}
}

func TestScenarioFile(t *testing.T) {
	sc, err := ParseScenario([]byte(`{"seed":9,"ollama":{"slots":4,"latency":{"min":"1s","max":"2s"},"errors":{"500":0.1}},
		"gpu":{"leak_mib_per_call":16,"free_on_unload":false}}`), Default())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed != 9 || sc.Ollama.Slots != 4 || sc.Ollama.Queue != 512 || sc.Ollama.Latency.String() != "1s-2s" ||
		sc.Ollama.Errors.E500 != 0.1 || sc.GPU.LeakMiBPerCall != 16 || sc.GPU.FreeOnUnload || sc.GPU.TotalMiB != 16368 ||
		sc.Discord.BucketLimit != 5 {
		t.Errorf("scenario %+v: want the file's knobs over the defaults", sc)
	}
	for _, tc := range []struct{ in, err string }{
		{`{"ollama":{"slots":-1}}`, "ollama.slots"},
		{`{"openai":{"load_latency":"1s"}}`, "openai.load_latency"},
		{`{"discord":{"errors":{"prose":0.1}}}`, "discord.errors"},
		{`{"discord":{"bucket_limit":0}}`, "discord.bucket_limit"},
		{`{"ollama":{"api_key":"k"}}`, "ollama.api_key"},
		{`{"gpu":{"base_mib":20000}}`, "gpu.base_mib"},
		{`{"anthropic":{"retry_after":"soon"}}`, "soon"},
		{`{} {}`, "more than one"},
		{`{"mistral":{}}`, "unknown field"},
	} {
		if _, err := ParseScenario([]byte(tc.in), Default()); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error with %q", tc.in, err, tc.err)
		}
	}
}

// FuzzParseLatency: no text makes the parser panic, and what it accepts
// writes back as text it reads the same.
func FuzzParseLatency(f *testing.F) {
	for _, s := range []string{"200ms", "100ms-300ms", "200ms~50ms", "1h2m3s-1h2m4s", "~", "-", "0-0", "1e3ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLatency(s)
		if err != nil {
			return
		}
		back, err := ParseLatency(l.String())
		if err != nil || back != l {
			t.Errorf("%q read as %v, which reads back as %v, %v", s, l, back, err)
		}
	})
}
