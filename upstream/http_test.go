package upstream

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewHTTPClient(t *testing.T) {
	hc := NewHTTPClient(8)
	if hc.Timeout != 0 {
		t.Errorf("Client.Timeout %v: the ctx carries the deadline", hc.Timeout)
	}
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", hc.Transport)
	}
	if tr.MaxIdleConnsPerHost != 8 || tr.MaxConnsPerHost != 8 || !tr.ForceAttemptHTTP2 ||
		tr.IdleConnTimeout == 0 || tr.TLSHandshakeTimeout == 0 || tr.DisableKeepAlives {
		t.Errorf("transport settings %+v", tr)
	}
	if tr := NewHTTPClient(0).Transport.(*http.Transport); tr.MaxConnsPerHost != 0 || tr.MaxIdleConnsPerHost <= 0 {
		t.Errorf("no cap: MaxConnsPerHost %d, MaxIdleConnsPerHost %d", tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"fraction", map[string]string{"Retry-After": "0.25"}, 250 * time.Millisecond},
		{"ms first", map[string]string{"retry-after-ms": "1500", "Retry-After": "9"}, 1500 * time.Millisecond},
		{"bad ms falls back", map[string]string{"retry-after-ms": "soon", "Retry-After": "2"}, 2 * time.Second},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"past date", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"negative", map[string]string{"Retry-After": "-3"}, 0},
		{"garbage", map[string]string{"Retry-After": "later"}, 0},
		{"huge", map[string]string{"Retry-After": "1e300"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := retryAfter(h, now); got != tt.want {
				t.Errorf("retryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFlexString(t *testing.T) {
	for in, want := range map[string]string{`"rate_limit_exceeded"`: "rate_limit_exceeded", `503`: "503", `null`: ""} {
		var v struct {
			Code FlexString `json:"code"`
		}
		if err := json.Unmarshal([]byte(`{"code":`+in+`}`), &v); err != nil || string(v.Code) != want {
			t.Errorf("code %s: %q, %v; want %q", in, v.Code, err, want)
		}
	}
}

func TestClipAndScrub(t *testing.T) {
	long := strings.Repeat("é", MaxErrorMessage)
	if got := Clip(long); len(got) > MaxErrorMessage+3 || !strings.HasSuffix(got, "...") {
		t.Errorf("clip: %d bytes", len(got))
	}
	if got := Scrub("key k123 and k123", []string{"", "k123"}); got != "key [redacted] and [redacted]" {
		t.Errorf("scrub: %q", got)
	}
}
