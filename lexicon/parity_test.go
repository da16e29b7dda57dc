package lexicon

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// parityFile is written by scripts/vader_parity.py from the reference
// vaderSentiment 3.3.2.
const parityFile = "testdata/vader_parity.json"

// parityExceptions names sentences where NewPlain knowingly differs from the
// reference, with the reason. Empty: the plain path reproduces the
// reference's quirks (the 1.25 after "this"/"so", the list.index slip of the
// "but" rule, Python's whitespace split, lower-cased "least").
var parityExceptions = map[string]string{}

func TestVADERParity(t *testing.T) {
	raw, err := os.ReadFile(parityFile)
	if err != nil {
		t.Fatalf("read %s (regenerate with .venv/bin/python scripts/vader_parity.py): %v", parityFile, err)
	}
	var file struct {
		Reference string `json:"reference"`
		Vectors   []struct {
			Text     string  `json:"text"`
			Compound float64 `json:"compound"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("parse %s: %v", parityFile, err)
	}
	if file.Reference != "vaderSentiment==3.3.2" {
		t.Fatalf("%s was made with %q, want vaderSentiment==3.3.2", parityFile, file.Reference)
	}
	if len(file.Vectors) < 200 {
		t.Fatalf("%s has %d vectors, want at least 200", parityFile, len(file.Vectors))
	}
	s, err := NewPlain()
	if err != nil {
		t.Fatal(err)
	}
	maxDiff, checked := 0.0, 0
	for _, v := range file.Vectors {
		got := s.Score(v.Text).Compound
		d := math.Abs(got - v.Compound)
		if why, ok := parityExceptions[v.Text]; ok {
			t.Logf("exception %q: got %.4f, reference %.4f: %s", v.Text, got, v.Compound, why)
			continue
		}
		checked++
		maxDiff = max(maxDiff, d)
		if d > 1e-3 {
			t.Errorf("compound(%q) = %.4f, reference %.4f", v.Text, got, v.Compound)
		}
	}
	t.Logf("parity: %d sentences checked against %s, max |diff| %.2g, %d named exceptions",
		checked, file.Reference, maxDiff, len(parityExceptions))
}
