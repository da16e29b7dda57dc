package secret

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	var log bytes.Buffer
	slog.New(slog.NewTextHandler(&log, nil)).Info("x", "key", s, "struct", struct{ K Secret }{s})
	slog.New(slog.NewJSONHandler(&log, nil)).Info("x", "key", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q", s, s, s, s, s), fmt.Sprintf("%+v", struct{ K Secret }{s}), log.String()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("printed: %s", out)
		}
	}
	if s.Reveal() != "hunter2" || Secret("").String() != "" {
		t.Errorf("Reveal %q, empty %q", s.Reveal(), Secret("").String())
	}
}
