package cache

import (
	"flag"
	"math/rand/v2"
	"strings"
	"testing"
)

var filterSeed = flag.Uint64("filter-seed", 0, "seed of TestMayReachNeverMissesAMatch (0: a new one)")

// TestMayReachNeverMissesAMatch: the prefix filter may let through pairs
// that turn out unlike, never turn away a pair that is alike enough.
// Random headlines and their random edits (words dropped, swapped,
// replaced) at every threshold.
func TestMayReachNeverMissesAMatch(t *testing.T) {
	seed := *filterSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -filter-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	words := strings.Fields("acme globex raises cuts guidance profit loss quarter record orders contract navy " +
		"approval drug fda shares rose fell sales net operating eur mn 5.2 3.1 year earlier new plant ceo names")
	headline := func() []string {
		n := 4 + rng.IntN(14)
		h := make([]string, n)
		for i := range h {
			h[i] = words[rng.IntN(len(words))]
		}
		return h
	}
	edit := func(h []string) []string {
		out := append([]string(nil), h...)
		for range rng.IntN(3) {
			switch i := rng.IntN(len(out)); rng.IntN(3) {
			case 0:
				if len(out) > 1 {
					out = append(out[:i], out[i+1:]...)
				}
			case 1:
				j := rng.IntN(len(out))
				out[i], out[j] = out[j], out[i]
			default:
				out[i] = words[rng.IntN(len(words))]
			}
		}
		return out
	}
	checked, alike := 0, 0
	for range 20000 {
		h := headline()
		a, b := Read(strings.Join(h, " "), ""), Read(strings.Join(edit(h), " "), "")
		sim := Similarity(&a, &b)
		for _, th := range []float64{0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1} {
			checked++
			if sim >= th {
				alike++
				if !mayReach(&a, &b, th) {
					t.Fatalf("threshold %g: %q and %q are %g alike, and the filter turned them away", th, a.Key, b.Key, sim)
				}
			}
		}
	}
	t.Logf("%d checks, %d pairs alike enough, none turned away", checked, alike)
}
