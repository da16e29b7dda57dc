package discordapi

import (
	"net/http"
	"testing"
	"time"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Path
		ok   bool
	}{
		{"/api/webhooks/1/tok", Path{WebhookID: "1", Token: "tok"}, true},
		{"/api/v10/webhooks/1/tok/", Path{WebhookID: "1", Token: "tok"}, true},
		{"/api/v10/webhooks/1/tok/messages/99", Path{WebhookID: "1", Token: "tok", MessageID: "99"}, true},
		{"/api/webhooks/1", Path{}, false},
		{"/api/chat", Path{}, false},
		{"/webhooks/1/tok", Path{}, false},
	} {
		got, ok := ParsePath(tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParsePath(%q) = %+v %v, want %+v %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

// TestBuckets: a webhook's own bucket admits its limit per window, from
// the window's first request; webhooks put in one bucket share it; the
// headers say what is left.
func TestBuckets(t *testing.T) {
	bs := NewBuckets(2, 2*time.Second)
	bs.Set("b1", "shared", 3, time.Second)
	bs.Set("b2", "shared", 3, time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	for i, tc := range []struct {
		hook string
		at   time.Duration
		ok   bool
		wait time.Duration
	}{
		{"a", 0, true, 0},
		{"a", 500 * time.Millisecond, true, 0},
		{"a", time.Second, false, time.Second},
		{"a", 2 * time.Second, true, 0},
		{"b1", 0, true, 0},
		{"b2", 0, true, 0},
		{"b1", 100 * time.Millisecond, true, 0},
		{"b2", 200 * time.Millisecond, false, 800 * time.Millisecond},
	} {
		name, ok, wait := bs.Take(tc.hook, t0.Add(tc.at))
		if ok != tc.ok || wait != tc.wait {
			t.Errorf("request %d to %s: ok %v wait %v, want %v %v", i, tc.hook, ok, wait, tc.ok, tc.wait)
		}
		if (tc.hook == "b1" || tc.hook == "b2") && name != "shared" {
			t.Errorf("request %d: bucket %q, want shared", i, name)
		}
	}
	name, _, _ := bs.Take("c", t0)
	h := http.Header{}
	bs.SetHeaders(h, name, t0.Add(500*time.Millisecond))
	if h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != "1" || h.Get("X-RateLimit-Reset-After") != "1.500" ||
		h.Get("X-RateLimit-Reset") != "1700000002.000" || h.Get("X-RateLimit-Bucket") != name {
		t.Errorf("headers %v", h)
	}
}
