package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/discordtest"
	"github.com/catalystbot/sentiment/internal/logtest"
	"github.com/catalystbot/sentiment/secret"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testToken is every test webhook's token: no error or log line may hold it.
const testToken = "tok-SECRET-9f8e7d6c5b4a"

// harness is a fake Discord, a client on it, and a log of what the client
// said. Inside a synctest bubble it is made in memory.
type harness struct {
	d   *discordtest.Server
	c   *Client
	log *logtest.Buffer
}

func newHarness(t *testing.T, memory bool, opts ...ClientOption) *harness {
	t.Helper()
	h := &harness{log: &logtest.Buffer{}}
	if memory {
		h.d = discordtest.NewMemory(t)
	} else {
		h.d = discordtest.New(t)
	}
	logger := slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.c = NewClient(h.d.Client(), append([]ClientOption{WithLogger(logger)}, opts...)...)
	// Backoffs take their longest draw, so that retry timings are exact.
	h.c.jitter = func(n int64) int64 { return n - 1 }
	return h
}

// webhook makes the webhook id at the fake, with room for 100 requests a
// minute unless the test sets a bucket, and parses its URL as channel
// name.
func (h *harness) webhook(t *testing.T, name, id string) *Webhook {
	t.Helper()
	h.d.SetBucket(id, "bucket-"+id, 100, time.Minute)
	w, err := ParseWebhook(name, secret.Secret(h.d.Webhook(id, testToken)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// statuses lists the statuses the fake answered, in order.
func statuses(reqs []discordtest.Request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

// offsets lists when each request arrived, from start.
func offsets(reqs []discordtest.Request, start time.Time) []time.Duration {
	out := make([]time.Duration, len(reqs))
	for i, r := range reqs {
		out[i] = r.At.Sub(start)
	}
	return out
}

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestExecuteAndEdit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		ts := time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC)
		id, err := h.c.Execute(t.Context(), w, Message{
			Content: "**ACME** @everyone: guidance raised",
			Embeds: []Embed{{
				Title: "ACME raises full-year guidance", URL: "https://example.com/acme", Color: 0x2ecc71, Timestamp: ts,
				Fields: []Field{{Name: "Verdict", Value: "pending", Inline: true}},
				Footer: &Footer{Text: "lexicon"}, Author: &Author{Name: "Wire"},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg, ok := h.d.Message(id)
		if !ok || msg.Content != "**ACME** @everyone: guidance raised" || len(msg.Embeds) != 1 {
			t.Fatalf("message %s at the fake: %+v", id, msg)
		}
		e := msg.Embeds[0]
		if e.Title != "ACME raises full-year guidance" || e.Color != 0x2ecc71 || e.Timestamp != "2026-03-02T14:30:00Z" ||
			e.Fields[0] != (discordtest.Field{Name: "Verdict", Value: "pending", Inline: true}) ||
			e.Footer.Text != "lexicon" || e.Author.Name != "Wire" {
			t.Errorf("embed %+v", e)
		}
		post := h.d.Posts()[0]
		if post.Path != "/api/v10/webhooks/1001/"+testToken || post.Query != "wait=true" ||
			!strings.HasPrefix(post.Header.Get("User-Agent"), "DiscordBot (") {
			t.Errorf("post %s?%s, User-Agent %q", post.Path, post.Query, post.Header.Get("User-Agent"))
		}
		if am := post.Body.AllowedMentions; am == nil || am.Parse == nil || len(am.Parse) != 0 {
			t.Errorf("allowed_mentions %+v: pings are not stopped", am)
		}

		if err := h.c.Edit(t.Context(), w, id, Message{Content: "ACME: bullish", Embeds: []Embed{{Title: "final"}}}); err != nil {
			t.Fatal(err)
		}
		if msg, _ := h.d.Message(id); msg.Content != "ACME: bullish" || len(msg.Embeds) != 1 || msg.Embeds[0].Title != "final" || msg.EditedTimestamp == nil {
			t.Errorf("after the edit: %+v", msg)
		}
		// An edit replaces the whole message: no embeds clears them.
		if err := h.c.Edit(t.Context(), w, id, Message{Content: "ACME: bullish"}); err != nil {
			t.Fatal(err)
		}
		if msg, _ := h.d.Message(id); len(msg.Embeds) != 0 {
			t.Errorf("embeds kept after an edit without any: %+v", msg.Embeds)
		}
		if n := len(h.d.Edits(id)); n != 2 {
			t.Errorf("%d edits at the fake, want 2", n)
		}
	})
}

func TestEditUnknownMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		err := h.c.Edit(t.Context(), w, "1234567", Message{Content: "x"})
		var se *StatusError
		if !errors.As(err, &se) || se.Status != 404 || se.Code != CodeUnknownMessage || errors.Is(err, ErrBroken) {
			t.Fatalf("edit of a deleted message: %v", err)
		}
		if broken, _ := h.c.Broken(w); broken {
			t.Error("a deleted message broke the webhook")
		}
		n := len(h.d.Requests())
		if err := h.c.Edit(t.Context(), w, "../../1002/x", Message{Content: "x"}); err == nil || len(h.d.Requests()) != n {
			t.Errorf("edit of a message id that is no snowflake: %v, sent %d", err, len(h.d.Requests())-n)
		}
	})
}

func TestRateLimit429(t *testing.T) {
	tests := []struct {
		name     string
		script   []discordtest.Behavior
		deadline time.Duration
		// want: nil for success, else the *RateLimitError expected.
		want     *RateLimitError
		elapsed  time.Duration
		statuses []int
	}{
		{name: "route wait fits", script: []discordtest.Behavior{discordtest.RateLimited(1500*time.Millisecond, "user")},
			deadline: 5 * time.Second, elapsed: 1500 * time.Millisecond, statuses: []int{429, 200}},
		{name: "route wait does not fit", script: []discordtest.Behavior{discordtest.RateLimited(1500*time.Millisecond, "user")},
			deadline: time.Second, want: &RateLimitError{RetryAfter: 1500 * time.Millisecond, Scope: ScopeUser}, statuses: []int{429}},
		{name: "shared scope", script: []discordtest.Behavior{discordtest.RateLimited(2500*time.Millisecond, "shared")},
			deadline: 2 * time.Second, want: &RateLimitError{RetryAfter: 2500 * time.Millisecond, Scope: ScopeShared}, statuses: []int{429}},
		{name: "global wait fits", script: []discordtest.Behavior{discordtest.GlobalRateLimited(2 * time.Second)},
			deadline: 5 * time.Second, elapsed: 2 * time.Second, statuses: []int{429, 200}},
		{name: "global wait does not fit", script: []discordtest.Behavior{discordtest.GlobalRateLimited(2 * time.Second)},
			deadline: time.Second, want: &RateLimitError{RetryAfter: 2 * time.Second, Global: true, Scope: ScopeGlobal}, statuses: []int{429}},
		{name: "Retry-After header without a body", script: []discordtest.Behavior{
			discordtest.Raw(429, "text/plain", "slow down", "Retry-After", "3")},
			deadline: 5 * time.Second, elapsed: 3 * time.Second, statuses: []int{429, 200}},
		{name: "429 after 429 gives up", script: []discordtest.Behavior{
			discordtest.RateLimited(time.Second, "user"), discordtest.RateLimited(time.Second, "user"),
			discordtest.RateLimited(time.Second, "user"), discordtest.RateLimited(time.Second, "user")},
			deadline: time.Minute, want: &RateLimitError{RetryAfter: time.Second, Scope: ScopeUser},
			elapsed: 3 * time.Second, statuses: []int{429, 429, 429, 429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, true)
				w := h.webhook(t, "alerts", "1001")
				h.d.Push("1001", tt.script...)
				start := time.Now()
				_, err := h.c.Execute(deadline(t, tt.deadline), w, Message{Content: "x"})
				if elapsed := time.Since(start); elapsed != tt.elapsed {
					t.Errorf("took %v, want %v", elapsed, tt.elapsed)
				}
				if tt.want == nil && err != nil {
					t.Fatalf("Execute: %v", err)
				}
				if tt.want != nil {
					var rl *RateLimitError
					if !errors.As(err, &rl) || *rl != *tt.want {
						t.Fatalf("error %v, want %+v", err, tt.want)
					}
				}
				if got := statuses(h.d.Requests()); fmt.Sprint(got) != fmt.Sprint(tt.statuses) {
					t.Errorf("statuses %v, want %v", got, tt.statuses)
				}
			})
		})
	}
}

// TestHiddenLimit429: Discord may answer 429 while the headers of the
// same answer say requests remain; the wait is honoured all the same.
func TestHiddenLimit429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		h.d.Push("1001", discordtest.RateLimited(time.Second, "user"))
		start := time.Now()
		if _, err := h.c.Execute(t.Context(), w, Message{Content: "x"}); err != nil {
			t.Fatal(err)
		}
		reqs := h.d.Requests()
		if fmt.Sprint(statuses(reqs)) != "[429 200]" || reqs[1].At.Sub(start) != time.Second {
			t.Errorf("statuses %v at %v", statuses(reqs), offsets(reqs, start))
		}
		// The next call on the webhook no longer waits.
		if _, err := h.c.Execute(t.Context(), w, Message{Content: "y"}); err != nil || time.Since(start) != time.Second {
			t.Errorf("after the wait: %v at %v", err, time.Since(start))
		}
	})
}

// TestGlobalPausesEveryWebhook: a global 429 on one webhook holds the
// requests of the others, which wait without being sent.
func TestGlobalPausesEveryWebhook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		a := h.webhook(t, "alerts", "1001")
		b := h.webhook(t, "ops", "1002")
		h.d.Push("1001", discordtest.GlobalRateLimited(2*time.Second))
		start := time.Now()

		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := h.c.Execute(t.Context(), a, Message{Content: "a"}); err != nil {
				t.Errorf("alerts: %v", err)
			}
		})
		// Every goroutine of the bubble is blocked: the first call has its
		// 429 and waits on it.
		synctest.Wait()
		if n := len(h.d.Requests()); n != 1 {
			t.Fatalf("%d requests before the second call, want 1", n)
		}
		_, err := h.c.Execute(deadline(t, time.Second), b, Message{Content: "b"})
		var rl *RateLimitError
		if !errors.As(err, &rl) || !rl.Global || rl.RetryAfter != 2*time.Second || len(h.d.Requests()) != 1 {
			t.Fatalf("ops with a deadline inside the wait: %v, %d requests", err, len(h.d.Requests()))
		}
		if _, err := h.c.Execute(t.Context(), b, Message{Content: "b"}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		reqs := h.d.Requests()
		if fmt.Sprint(statuses(reqs)) != "[429 200 200]" {
			t.Errorf("statuses %v", statuses(reqs))
		}
		for _, r := range reqs[1:] {
			if r.At.Sub(start) != 2*time.Second {
				t.Errorf("request %d (webhook %s) sent at %v, want 2s", r.Seq, r.WebhookID, r.At.Sub(start))
			}
		}
	})
}

// TestSharedBucket: two webhooks of one server share a bucket; once the
// headers say it is spent, either waits for its reset without sending.
func TestSharedBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		a := h.webhook(t, "alerts", "1001")
		b := h.webhook(t, "ops", "1002")
		c := h.webhook(t, "desk", "1003")
		for _, id := range []string{"1001", "1002", "1003"} {
			h.d.SetBucket(id, "server-bucket", 2, 2*time.Second)
		}
		start := time.Now()
		for _, w := range []*Webhook{a, b} {
			if _, err := h.c.Execute(t.Context(), w, Message{Content: w.Name}); err != nil {
				t.Fatal(err)
			}
		}
		// alerts learned the bucket from its own answer; ops spent it.
		_, err := h.c.Execute(deadline(t, time.Second), a, Message{Content: "late"})
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Scope != ScopeBucket || rl.RetryAfter != 2*time.Second || len(h.d.Requests()) != 2 {
			t.Fatalf("alerts inside the window: %v, %d requests", err, len(h.d.Requests()))
		}
		if _, err := h.c.Execute(t.Context(), a, Message{Content: "after"}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.c.Execute(t.Context(), b, Message{Content: "after"}); err != nil {
			t.Fatal(err)
		}
		reqs := h.d.Requests()
		if fmt.Sprint(statuses(reqs)) != "[200 200 200 200]" ||
			fmt.Sprint(offsets(reqs, start)) != "[0s 0s 2s 2s]" {
			t.Errorf("statuses %v at %v", statuses(reqs), offsets(reqs, start))
		}

		// desk has not been answered yet, so it cannot know its bucket is
		// spent: it gets the 429 and waits for the reset.
		if _, err := h.c.Execute(t.Context(), c, Message{Content: "desk"}); err != nil {
			t.Fatal(err)
		}
		reqs = h.d.Requests()[4:]
		if fmt.Sprint(statuses(reqs)) != "[429 200]" || fmt.Sprint(offsets(reqs, start)) != "[2s 4s]" {
			t.Errorf("desk: statuses %v at %v", statuses(reqs), offsets(reqs, start))
		}
	})
}

// TestConcurrentCallsShareTheBucket: calls in flight together count
// against the bucket before their answers come back, so a burst does not
// overrun what the headers said remained.
func TestConcurrentCallsShareTheBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		h.d.SetBucket("1001", "webhook", 3, 2*time.Second)
		start := time.Now()
		if _, err := h.c.Execute(t.Context(), w, Message{Content: "first"}); err != nil {
			t.Fatal(err)
		}
		// Slow answers keep the calls in flight together.
		for range 4 {
			h.d.Push("1001", discordtest.Delay(100*time.Millisecond, discordtest.OK()))
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				if _, err := h.c.Execute(t.Context(), w, Message{Content: fmt.Sprint(i)}); err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		reqs := h.d.Requests()
		if fmt.Sprint(statuses(reqs)) != "[200 200 200 200 200]" || fmt.Sprint(offsets(reqs, start)) != "[0s 0s 0s 2s 2s]" {
			t.Errorf("statuses %v at %v", statuses(reqs), offsets(reqs, start))
		}
	})
}

// TestObserveOutOfOrder: answers of one window may come back in any
// order; a late answer that says more remained does not undo a spent
// bucket, and a new window replaces the old once its reset has passed.
func TestObserveOutOfOrder(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 3, 2, 14, 30, 0, 0, time.UTC))
	c := NewClient(nil, WithClock(clock.Now))
	w, err := ParseWebhook("alerts", "https://discord.com/api/webhooks/1001/"+testToken)
	if err != nil {
		t.Fatal(err)
	}
	hs, route := c.hook(w), "POST "+w.key()
	answer := func(remaining, resetAfter string) {
		c.observe(route, http.Header{"X-Ratelimit-Bucket": {"b"}, "X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset-After": {resetAfter}})
	}
	answer("0", "2")
	answer("1", "1.75")
	if wait, rl := c.gate(hs, route, true); wait != 2*time.Second || rl.Scope != ScopeBucket {
		t.Fatalf("spent bucket: wait %v, %v", wait, rl)
	}
	answer("0", "2.25")
	clock.Advance(1500 * time.Millisecond)
	if wait, _ := c.gate(hs, route, true); wait != 750*time.Millisecond {
		t.Fatalf("later: wait %v, want 750ms", wait)
	}
	clock.Advance(750 * time.Millisecond)
	if wait, _ := c.gate(hs, route, true); wait != 0 {
		t.Fatalf("after the reset: wait %v", wait)
	}
	answer("1", "2.5")
	if wait, _ := c.gate(hs, route, true); wait != 0 {
		t.Fatalf("new window with one left: wait %v", wait)
	}
	if wait, _ := c.gate(hs, route, true); wait != 2500*time.Millisecond {
		t.Fatalf("new window spent by this client: wait %v", wait)
	}
}

// TestBucketHeaders: the default webhook bucket of 5 per 2 s is kept from
// its headers, without a single 429.
func TestBucketHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		h.d.SetBucket("1001", "webhook", 5, 2*time.Second)
		start := time.Now()
		for i := range 7 {
			if _, err := h.c.Execute(t.Context(), w, Message{Content: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		reqs := h.d.Requests()
		if fmt.Sprint(statuses(reqs)) != "[200 200 200 200 200 200 200]" ||
			fmt.Sprint(offsets(reqs, start)) != "[0s 0s 0s 0s 0s 2s 2s]" {
			t.Errorf("statuses %v at %v", statuses(reqs), offsets(reqs, start))
		}
	})
}

// TestPacing: a webhook sends a burst of 5, then one every 400 ms, even
// where its bucket would allow more; a pacing wait that does not fit
// sends nothing and gives its slot back.
func TestPacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		start := time.Now()
		for i := range 5 {
			if _, err := h.c.Execute(t.Context(), w, Message{Content: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := h.c.Execute(deadline(t, 100*time.Millisecond), w, Message{Content: "hurried"})
		var rl *RateLimitError
		if !errors.As(err, &rl) || rl.Scope != ScopeWebhook || rl.RetryAfter < 399*time.Millisecond || rl.RetryAfter > 400*time.Millisecond {
			t.Fatalf("pacing wait past the deadline: %v", err)
		}
		if time.Since(start) != 0 || len(h.d.Requests()) != 5 {
			t.Fatalf("refused call took %v and sent %d", time.Since(start), len(h.d.Requests())-5)
		}
		for i := range 5 {
			if _, err := h.c.Execute(t.Context(), w, Message{Content: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		want := []time.Duration{0, 0, 0, 0, 0, 400, 800, 1200, 1600, 2000}
		for i, got := range offsets(h.d.Requests(), start) {
			if d := got - want[i]*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("request %d sent at %v, want %vms", i+1, got, want[i])
			}
		}
	})
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		name     string
		script   []discordtest.Behavior
		deadline time.Duration
		ok       bool
		status   int           // of the *StatusError, when not ok
		deadErr  bool          // the error is the ctx's deadline
		elapsed  time.Duration // backoffs are drawn at their longest
		sent     int
	}{
		{name: "retried until success", script: []discordtest.Behavior{discordtest.ServerError(503), discordtest.ServerError(502)},
			deadline: time.Minute, ok: true, elapsed: 1500*time.Millisecond - 2, sent: 3},
		{name: "connection reset retried", script: []discordtest.Behavior{discordtest.Reset()},
			deadline: time.Minute, ok: true, elapsed: 500*time.Millisecond - 1, sent: 2},
		{name: "three attempts in all", script: []discordtest.Behavior{
			discordtest.ServerError(500), discordtest.ServerError(502), discordtest.ServerError(500)},
			deadline: time.Minute, status: 500, elapsed: 1500*time.Millisecond - 2, sent: 3},
		{name: "no retry past the deadline", script: []discordtest.Behavior{
			discordtest.ServerError(500), discordtest.ServerError(502), discordtest.ServerError(500)},
			deadline: 800 * time.Millisecond, status: 502, elapsed: 500*time.Millisecond - 1, sent: 2},
		{name: "hang until the deadline", script: []discordtest.Behavior{discordtest.Hang()},
			deadline: 2 * time.Second, deadErr: true, elapsed: 2 * time.Second, sent: 1},
		{name: "4xx not retried", script: []discordtest.Behavior{discordtest.Error(403, 50013, "Missing Permissions")},
			deadline: time.Minute, status: 403, sent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, true)
				w := h.webhook(t, "alerts", "1001")
				h.d.Push("1001", tt.script...)
				start := time.Now()
				id, err := h.c.Execute(deadline(t, tt.deadline), w, Message{Content: "x"})
				if elapsed := time.Since(start); elapsed != tt.elapsed {
					t.Errorf("took %v, want %v", elapsed, tt.elapsed)
				}
				if n := len(h.d.Requests()); n != tt.sent {
					t.Errorf("%d requests, want %d", n, tt.sent)
				}
				var se *StatusError
				switch {
				case tt.ok:
					if _, ok := h.d.Message(id); err != nil || !ok {
						t.Errorf("Execute: %q, %v", id, err)
					}
				case tt.deadErr:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("error %v, want the deadline", err)
					}
				case !errors.As(err, &se) || se.Status != tt.status || errors.Is(err, ErrBroken):
					t.Errorf("error %v, want a *StatusError %d", err, tt.status)
				}
			})
		})
	}
}

func TestBrokenWebhook(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(d *discordtest.Server)
		status int
		code   int
	}{
		{"deleted", func(d *discordtest.Server) { d.DeleteWebhook("1001") }, 404, CodeUnknownWebhook},
		{"token reset", func(d *discordtest.Server) { d.Webhook("1001", "tok-new") }, 401, CodeInvalidWebhookToken},
		{"scripted 404s", func(d *discordtest.Server) {
			for range 8 {
				d.Push("1001", discordtest.UnknownWebhook())
			}
		}, 404, CodeUnknownWebhook},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, true)
				w := h.webhook(t, "alerts", "1001")
				other := h.webhook(t, "ops", "1002")
				id, err := h.c.Execute(t.Context(), w, Message{Content: "before"})
				if err != nil {
					t.Fatal(err)
				}
				tt.break_(h.d)

				// Calls in flight together: each fails, one log line.
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						_, err := h.c.Execute(t.Context(), w, Message{Content: "x"})
						if !errors.Is(err, ErrBroken) {
							t.Errorf("Execute on a broken webhook: %v", err)
						}
					})
				}
				wg.Wait()
				sent := len(h.d.Requests())
				var se *StatusError
				// The calls that waited on the pace found the webhook
				// broken when they woke, and sent nothing.
				for _, r := range h.d.Requests()[1:] {
					if r.Status != tt.status || r.At != h.d.Requests()[0].At {
						t.Errorf("request %d answered %d at %v", r.Seq, r.Status, r.At.Sub(h.d.Requests()[0].At))
					}
				}
				broken, why := h.c.Broken(w)
				if !broken || !strings.Contains(why, fmt.Sprint(tt.code)) {
					t.Errorf("Broken: %v %q", broken, why)
				}
				// Later calls fail at once, sending nothing, even when the
				// webhook's pace would have them wait.
				start := time.Now()
				_, err = h.c.Execute(deadline(t, time.Millisecond), w, Message{Content: "x"})
				if !errors.Is(err, ErrBroken) || !strings.Contains(err.Error(), `"alerts"`) || time.Since(start) != 0 {
					t.Errorf("later Execute: %v after %v", err, time.Since(start))
				}
				if err := h.c.Edit(t.Context(), w, id, Message{Content: "x"}); !errors.Is(err, ErrBroken) {
					t.Errorf("later Edit: %v", err)
				}
				if n := len(h.d.Requests()); n != sent {
					t.Errorf("%d requests sent to a broken webhook", n-sent)
				}
				// The first failure carries Discord's answer.
				h2 := newHarness(t, true)
				w2 := h2.webhook(t, "alerts", "1001")
				tt.break_(h2.d)
				_, err = h2.c.Execute(t.Context(), w2, Message{Content: "x"})
				if !errors.As(err, &se) || se.Status != tt.status || se.Code != tt.code {
					t.Errorf("first failure %v, want %d code %d", err, tt.status, tt.code)
				}
				if n := strings.Count(h.log.String(), "level=WARN"); n != 1 || !strings.Contains(h.log.String(), "channel=alerts") {
					t.Errorf("%d warnings, want 1 naming the channel:\n%s", n, h.log.String())
				}
				if broken, _ := h.c.Broken(other); broken {
					t.Error("the other webhook is broken too")
				}
				if _, err := h.c.Execute(t.Context(), other, Message{Content: "fine"}); err != nil {
					t.Errorf("other webhook: %v", err)
				}
			})
		})
	}
}

// TestBrokenWhileWaiting: a call waiting on the pace when another call
// finds the webhook gone sends nothing when it wakes.
func TestBrokenWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		for range 5 {
			if _, err := h.c.Execute(t.Context(), w, Message{Content: "burst"}); err != nil {
				t.Fatal(err)
			}
		}
		h.d.Push("1001", discordtest.Delay(100*time.Millisecond, discordtest.UnknownWebhook()))
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if _, err := h.c.Execute(t.Context(), w, Message{Content: "x"}); !errors.Is(err, ErrBroken) {
					t.Errorf("Execute: %v", err)
				}
			})
			// The first call holds the earlier slot of the pace.
			synctest.Wait()
		}
		wg.Wait()
		if n := len(h.d.Requests()); n != 6 {
			t.Errorf("%d requests, want the burst and one", n)
		}
	})
}

// TestTokenNeverShows drives every failure the client reports and checks
// that neither the errors nor the log hold the token.
func TestTokenNeverShows(t *testing.T) {
	var errs []error
	var logs []string
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, true)
		w := h.webhook(t, "alerts", "1001")
		echo := discordtest.Raw(502, "text/plain", "proxy could not reach /api/v10/webhooks/1001/"+testToken)
		for _, script := range [][]discordtest.Behavior{
			{discordtest.RateLimited(time.Minute, "user")},
			{discordtest.Hang()},
			{discordtest.Raw(400, "application/json", `{"message":"bad webhook `+testToken+`","code":0}`)},
			{echo, echo, echo},
			{discordtest.Reset(), discordtest.Reset(), discordtest.Reset()},
		} {
			h.d.Push("1001", script...)
			_, err := h.c.Execute(deadline(t, 5*time.Second), w, Message{Content: "x"})
			errs = append(errs, err)
			time.Sleep(time.Minute)
		}
		errs = append(errs, h.c.Edit(t.Context(), w, "1", Message{Content: "x"}))
		h.d.DeleteWebhook("1001")
		_, err := h.c.Execute(t.Context(), w, Message{Content: "x"})
		errs = append(errs, err)
		_, err = h.c.Execute(t.Context(), w, Message{Content: "x"})
		errs = append(errs, err)
		_, reason := h.c.Broken(w)
		errs = append(errs, errors.New(reason))
		logs = append(logs, h.log.String(), fmt.Sprintf("%v %+v %#v %s %d %q", w, w, w, w, w, *w))
	})
	t.Run("tcp", func(t *testing.T) {
		h := newHarness(t, false)
		w := h.webhook(t, "alerts", "1001")
		h.d.Close()
		_, err := h.c.Execute(deadline(t, 100*time.Millisecond), w, Message{Content: "refused"})
		errs = append(errs, err)
		bad := NewClient(nil, WithBaseURL("http://user:"+testToken+"@x"))
		_, err = bad.Execute(t.Context(), w, Message{Content: "x"})
		errs = append(errs, err)
		var log logtest.Buffer
		slog.New(slog.NewJSONHandler(&log, nil)).Info("x", "webhook", w, "value", *w)
		logs = append(logs, h.log.String(), log.String())
	})
	for _, err := range errs {
		t.Log(err)
		if err == nil {
			t.Error("a failure returned no error")
			continue
		}
		if strings.Contains(err.Error(), testToken) || strings.Contains(fmt.Sprintf("%+v", err), testToken) {
			t.Errorf("error holds the token: %v", err)
		}
	}
	for _, l := range logs {
		if strings.Contains(l, testToken) {
			t.Errorf("log holds the token:\n%s", l)
		}
	}
	if !strings.Contains(logs[0], "channel=alerts") {
		t.Errorf("the log does not name the channel:\n%s", logs[0])
	}
}

func TestWithBaseURL(t *testing.T) {
	d := discordtest.New(t)
	d.Webhook("1001", testToken)
	w, err := ParseWebhook("alerts", "https://discord.com/api/webhooks/1001/"+testToken)
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(d.Client(), WithBaseURL(d.URL+"/"))
	id, err := c.Execute(t.Context(), w, Message{Content: "to the simulator"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Message(id); !ok {
		t.Errorf("message %s not at the simulator", id)
	}
	for _, bad := range []string{"discord.com", "ftp://x", "http://"} {
		c := NewClient(d.Client(), WithBaseURL(bad))
		if _, err := c.Execute(t.Context(), w, Message{Content: "x"}); err == nil {
			t.Errorf("base URL %q: no error", bad)
		}
	}
	if n := len(d.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestParseWebhook(t *testing.T) {
	const tok = "AbC-123_xyz"
	tests := []struct {
		url  string
		base string // empty: refused
	}{
		{"https://discord.com/api/webhooks/123456789012345678/" + tok, "https://discord.com"},
		{"https://discordapp.com/api/webhooks/1/" + tok, "https://discordapp.com"},
		{"https://canary.discord.com/api/webhooks/1/" + tok, "https://canary.discord.com"},
		{"https://ptb.discord.com/api/webhooks/1/" + tok, "https://ptb.discord.com"},
		{"https://Discord.com/api/v10/webhooks/1/" + tok + "/", "https://Discord.com"},
		{"  https://discord.com/api/v9/webhooks/1/" + tok + "\n", "https://discord.com"},
		{"http://127.0.0.1:8089/api/webhooks/1/" + tok, "http://127.0.0.1:8089"},
		{"http://llmsim:9000/discord/api/webhooks/1/" + tok, "http://llmsim:9000/discord"},
		{"http://discord.com/api/webhooks/1/" + tok, ""},
		{"https://discord.com:8443/api/webhooks/1/" + tok, ""},
		{"https://discord.com/x/api/webhooks/1/" + tok, ""},
		{"discord.com/api/webhooks/1/" + tok, ""},
		{"ftp://discord.com/api/webhooks/1/" + tok, ""},
		{"https://discord.com/api/webhooks/1", ""},
		{"https://discord.com/api/webhooks/abc/" + tok, ""},
		{"https://discord.com/api/webhooks/1/" + tok + "/messages/2", ""},
		{"https://discord.com/api/webhooks/1/" + tok + "?wait=true", ""},
		{"https://discord.com/api/webhooks/1/" + tok + "#x", ""},
		{"https://user:" + tok + "@discord.com/api/webhooks/1/" + tok, ""},
		{"https://discord.com/api/channels/1/" + tok, ""},
		{"https://discord.com/api/webhooks/1/to%20k" + tok, ""},
		{"https://[::1/api/webhooks/1/" + tok, ""},
		{"", ""},
	}
	for _, tt := range tests {
		w, err := ParseWebhook("alerts", secret.Secret(tt.url))
		if tt.base == "" {
			if err == nil {
				t.Errorf("%q accepted", tt.url)
			} else if strings.Contains(err.Error(), tok) || !strings.Contains(err.Error(), `"alerts"`) {
				t.Errorf("%q: error %q holds the token or lacks the channel", tt.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.url, err)
			continue
		}
		if w.base != tt.base || w.id == "" || w.token.Reveal() != tok || w.Name != "alerts" {
			t.Errorf("%q: base %q id %q", tt.url, w.base, w.id)
		}
	}
	if _, err := ParseWebhook(" ", "https://discord.com/api/webhooks/1/"+tok); err == nil {
		t.Error("empty name accepted")
	}
}

func FuzzParseWebhook(f *testing.F) {
	for _, s := range []string{
		"https://discord.com/api/webhooks/1/tok", "http://h:1/p/api/v10/webhooks/99/a_b-c/",
		"https://discord.com/api/webhooks/1/tok?x", "%zz", "https://[::1]:80/api/webhooks/1/t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		w, err := ParseWebhook("alerts", secret.Secret(raw))
		if err != nil {
			if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
				t.Errorf("error %q quotes the URL", err)
			}
			return
		}
		if !snowflake.MatchString(w.id) || w.token == "" || !strings.HasPrefix(w.base, "http") {
			t.Errorf("%q gave id %q base %q", raw, w.id, w.base)
		}
		if got := fmt.Sprintf("%v|%+v|%#v|%d", w, w, *w, w); got != `webhook "alerts"|webhook "alerts"|webhook "alerts"|webhook "alerts"` {
			t.Errorf("%q: the webhook prints as %s", raw, got)
		}
	})
}

// BenchmarkExecute posts through the client to the fake over loopback
// TCP: the client's own work (Fit, encoding, rate-limit bookkeeping, the
// answer's decoding) plus one local HTTP round trip. Pacing is off, as it
// would measure the 400 ms pace.
func BenchmarkExecute(b *testing.B) {
	d := discordtest.New(b)
	d.SetBucket("1001", "bench", 1<<30, time.Hour)
	w, err := ParseWebhook("alerts", secret.Secret(d.Webhook("1001", testToken)))
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(d.Client())
	c.pace = rate.Inf
	m := Message{Content: "**ACME** guidance raised", Embeds: []Embed{{
		Title: "ACME raises full-year guidance", Description: strings.Repeat("Summary text. ", 20), Color: 0x2ecc71,
		Fields: []Field{{Name: "Verdict", Value: "bullish 0.82", Inline: true}, {Name: "Price", Value: "$12.30 (+4.1%)", Inline: true}},
		Footer: &Footer{Text: "lexicon"},
	}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Execute(ctx, w, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecuteMemory is BenchmarkExecute through the in-memory
// transport: the client and the fake without the network.
func BenchmarkExecuteMemory(b *testing.B) {
	d := discordtest.NewMemory(b)
	d.SetBucket("1001", "bench", 1<<30, time.Hour)
	w, err := ParseWebhook("alerts", secret.Secret(d.Webhook("1001", testToken)))
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(d.Client())
	c.pace = rate.Inf
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Execute(ctx, w, Message{Content: "ACME guidance raised"}); err != nil {
			b.Fatal(err)
		}
	}
}
