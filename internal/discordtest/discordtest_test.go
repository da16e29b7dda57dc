package discordtest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type answer struct {
	status int
	header http.Header
	body   []byte
}

// decode reads the answer's JSON body into a map.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %q: not a JSON object: %v", a.status, a.body, err)
	}
	return m
}

func send(ctx context.Context, hc *http.Client, method, url, body string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}, err
}

func mustSend(t *testing.T, hc *http.Client, method, url, body string) answer {
	t.Helper()
	a, err := send(t.Context(), hc, method, url, body)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return a
}

// eachTransport runs fn over the loopback listener and in memory (inside a
// synctest bubble).
func eachTransport(t *testing.T, fn func(t *testing.T, s *Server)) {
	t.Run("tcp", func(t *testing.T) { fn(t, New(t)) })
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { fn(t, NewMemory(t)) })
	})
}

func TestPostEditRead(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *Server) {
		hc := s.Client()
		url := s.Webhook("1001", "tok-A")
		if want := s.URL + "/api/webhooks/1001/tok-A"; url != want {
			t.Fatalf("Webhook URL %q, want %q", url, want)
		}
		a := mustSend(t, hc, http.MethodPost, url+"?wait=true",
			`{"content":"ACME up","embeds":[{"title":"ACME","fields":[{"name":"Verdict","value":"pending"}]}],"allowed_mentions":{"parse":[]}}`)
		if a.status != http.StatusOK {
			t.Fatalf("post: %d %s", a.status, a.body)
		}
		var msg Message
		if err := json.Unmarshal(a.body, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.ID == "" || msg.ChannelID == "" || msg.WebhookID != "1001" || msg.Content != "ACME up" ||
			len(msg.Embeds) != 1 || msg.Embeds[0].Type != "rich" || msg.Timestamp == "" || msg.EditedTimestamp != nil || !msg.Author.Bot {
			t.Errorf("posted message %+v", msg)
		}
		if _, err := time.Parse(time.RFC3339Nano, msg.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", msg.Timestamp, err)
		}

		// Without wait: 204 and no body, but the message is posted.
		if a := mustSend(t, hc, http.MethodPost, url, `{"content":"quiet"}`); a.status != http.StatusNoContent || len(a.body) != 0 {
			t.Errorf("post without wait: %d %q", a.status, a.body)
		}

		// A versioned path reaches the same webhook.
		edit := s.URL + "/api/v10/webhooks/1001/tok-A/messages/" + msg.ID
		a = mustSend(t, hc, http.MethodPatch, edit, `{"content":"ACME up: bullish","embeds":[]}`)
		if a.status != http.StatusOK {
			t.Fatalf("edit: %d %s", a.status, a.body)
		}
		got, ok := s.Message(msg.ID)
		if !ok || got.Content != "ACME up: bullish" || len(got.Embeds) != 0 || got.EditedTimestamp == nil {
			t.Errorf("edited message %+v", got)
		}
		// Fields left out keep their value.
		mustSend(t, hc, http.MethodPatch, edit, `{"embeds":[{"title":"again"}]}`)
		if got, _ := s.Message(msg.ID); got.Content != "ACME up: bullish" || len(got.Embeds) != 1 {
			t.Errorf("partial edit: %+v", got)
		}
		if a := mustSend(t, hc, http.MethodGet, edit, ""); a.status != http.StatusOK || a.json(t)["id"] != msg.ID {
			t.Errorf("read: %d %s", a.status, a.body)
		}

		if n := len(s.Messages()); n != 2 {
			t.Errorf("%d messages, want 2", n)
		}
		if p := s.Posts(); len(p) != 2 || p[0].Body.Content == nil || *p[0].Body.Content != "ACME up" ||
			p[0].Query != "wait=true" || p[0].Status != 200 || p[1].Status != 204 || p[0].WebhookID != "1001" ||
			p[0].Body.AllowedMentions == nil || len(p[0].Body.AllowedMentions.Parse) != 0 {
			t.Errorf("posts %+v", p)
		}
		if e := s.Edits(msg.ID); len(e) != 2 || e[0].MessageID != msg.ID || e[0].Status != 200 {
			t.Errorf("edits %+v", e)
		}
		reqs, err := s.Await(t.Context(), 5)
		if err != nil || len(reqs) != 5 {
			t.Fatalf("Await: %d, %v", len(reqs), err)
		}
		for i, r := range reqs {
			if r.Seq != i+1 {
				t.Errorf("request %d has Seq %d", i, r.Seq)
			}
		}
	})
}

func TestErrorAnswers(t *testing.T) {
	eachTransport(t, func(t *testing.T, s *Server) {
		hc := s.Client()
		url := s.Webhook("1001", "tok-A")
		other := s.Webhook("1002", "tok-B")
		s.SetBucket("1001", "big", 100, time.Minute)
		a := mustSend(t, hc, http.MethodPost, other+"?wait=true", `{"content":"theirs"}`)
		theirs := a.json(t)["id"].(string)
		s.Webhook("1003", "tok-C")
		s.DeleteWebhook("1003")
		tests := []struct {
			name, method, url, body string
			status, code            int
		}{
			{"unknown webhook", "POST", s.URL + "/api/webhooks/999/tok-A?wait=true", `{"content":"x"}`, 404, CodeUnknownWebhook},
			{"deleted webhook", "POST", s.URL + "/api/webhooks/1003/tok-C?wait=true", `{"content":"x"}`, 404, CodeUnknownWebhook},
			{"wrong token", "POST", s.URL + "/api/webhooks/1001/tok-X?wait=true", `{"content":"x"}`, 401, CodeInvalidWebhookToken},
			{"unknown message", "PATCH", url + "/messages/123", `{"content":"x"}`, 404, CodeUnknownMessage},
			{"another webhook's message", "PATCH", url + "/messages/" + theirs, `{"content":"x"}`, 404, CodeUnknownMessage},
			{"empty message", "POST", url + "?wait=true", `{"content":"   ","embeds":[]}`, 400, CodeEmptyMessage},
			{"edit to empty", "PATCH", other + "/messages/" + theirs, `{"content":""}`, 400, CodeEmptyMessage},
			{"invalid JSON", "POST", url + "?wait=true", `{"content":`, 400, CodeInvalidJSON},
			{"invalid UTF-8", "POST", url + "?wait=true", "{\"content\":\"\xff\"}", 400, CodeInvalidJSON},
			{"over a limit", "POST", url + "?wait=true", `{"embeds":[{"title":"` + strings.Repeat("x", 257) + `"}]}`, 400, CodeInvalidFormBody},
			{"unknown path", "POST", s.URL + "/api/channels/1/messages", `{"content":"x"}`, 404, 0},
			{"wrong method", "DELETE", url, ``, 405, 0},
		}
		// No t.Run: subtests cannot start inside a synctest bubble.
		for _, tt := range tests {
			a := mustSend(t, hc, tt.method, tt.url, tt.body)
			if a.status != tt.status {
				t.Errorf("%s: status %d, want %d: %s", tt.name, a.status, tt.status, a.body)
				continue
			}
			m := a.json(t)
			if code, _ := m["code"].(float64); int(code) != tt.code || m["message"] == "" {
				t.Errorf("%s: body %s, want code %d", tt.name, a.body, tt.code)
			}
		}
	})
}

func TestLimitsInRunes(t *testing.T) {
	s := New(t)
	hc := s.Client()
	url := s.Webhook("1001", "tok-A") + "?wait=true"
	s.SetBucket("1001", "big", 100, time.Minute)
	emoji, cjk := "😀", "株"
	field := func(name, value string) map[string]any { return map[string]any{"name": name, "value": value} }
	fields := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = field("n", "v")
		}
		return out
	}
	tests := []struct {
		name string
		body map[string]any
		path string // in the errors tree; empty: accepted
	}{
		{"content 2000 emoji", map[string]any{"content": strings.Repeat(emoji, 2000)}, ""},
		{"content 2001 emoji", map[string]any{"content": strings.Repeat(emoji, 2001)}, "content"},
		{"content trimmed before counting", map[string]any{"content": "  " + strings.Repeat(cjk, 2000) + "\n"}, ""},
		{"title 256 CJK", map[string]any{"embeds": []any{map[string]any{"title": strings.Repeat(cjk, 256)}}}, ""},
		{"title 257", map[string]any{"embeds": []any{map[string]any{"title": strings.Repeat(cjk, 257)}}}, "embeds.0.title"},
		{"description 4097", map[string]any{"embeds": []any{map[string]any{"description": strings.Repeat("d", 4097)}}}, "embeds.0.description"},
		{"25 fields", map[string]any{"embeds": []any{map[string]any{"fields": fields(25)}}}, ""},
		{"26 fields", map[string]any{"embeds": []any{map[string]any{"fields": fields(26)}}}, "embeds.0.fields"},
		{"field name 257", map[string]any{"embeds": []any{map[string]any{"fields": []any{field(strings.Repeat(emoji, 257), "v")}}}}, "embeds.0.fields.0.name"},
		{"field value 1025", map[string]any{"embeds": []any{map[string]any{"fields": []any{field("n", strings.Repeat(emoji, 1025))}}}}, "embeds.0.fields.0.value"},
		{"empty field name", map[string]any{"embeds": []any{map[string]any{"fields": []any{field(" ", "v")}}}}, "embeds.0.fields.0.name"},
		{"footer 2049", map[string]any{"embeds": []any{map[string]any{"footer": map[string]any{"text": strings.Repeat("f", 2049)}}}}, "embeds.0.footer.text"},
		{"author 257", map[string]any{"embeds": []any{map[string]any{"author": map[string]any{"name": strings.Repeat("a", 257)}}}}, "embeds.0.author.name"},
		{"11 embeds", map[string]any{"embeds": make([]any, 11)}, "embeds"},
		{"color over 0xffffff", map[string]any{"embeds": []any{map[string]any{"title": "t", "color": 0x1000000}}}, "embeds.0.color"},
		{"bad timestamp", map[string]any{"embeds": []any{map[string]any{"title": "t", "timestamp": "yesterday"}}}, "embeds.0.timestamp"},
		{"6000 in all", map[string]any{"embeds": []any{
			map[string]any{"description": strings.Repeat(cjk, 4000)},
			map[string]any{"description": strings.Repeat(emoji, 2000)},
		}}, ""},
		{"6001 in all", map[string]any{"embeds": []any{
			map[string]any{"description": strings.Repeat(cjk, 4000)},
			map[string]any{"description": strings.Repeat(emoji, 2000), "title": "x"},
		}}, "embeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(tt.body)
			a := mustSend(t, hc, http.MethodPost, url, string(b))
			if tt.path == "" {
				if a.status != http.StatusOK {
					t.Fatalf("refused: %d %s", a.status, a.body)
				}
				return
			}
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", a.status)
			}
			m := a.json(t)
			if code, _ := m["code"].(float64); code != CodeInvalidFormBody {
				t.Fatalf("body %s, want code 50035", a.body)
			}
			node, _ := m["errors"].(map[string]any)
			for _, k := range strings.Split(tt.path, ".") {
				node, _ = node[k].(map[string]any)
			}
			if _, ok := node["_errors"]; !ok {
				t.Errorf("errors tree %s has no _errors at %s", a.body, tt.path)
			}
		})
	}
}

func TestBuckets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemory(t)
		hc := s.Client()
		a := s.Webhook("1001", "tok-A") + "?wait=true"
		b := s.Webhook("1002", "tok-B") + "?wait=true"
		c := s.Webhook("1003", "tok-C") + "?wait=true"
		s.SetBucket("1001", "shared", 3, time.Second)
		s.SetBucket("1002", "shared", 3, time.Second)
		body := `{"content":"x"}`

		// The default bucket: 5 per 2 s, its window starting at the first request.
		for i := range 5 {
			r := mustSend(t, hc, http.MethodPost, c, body)
			if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "5" ||
				r.header.Get("X-RateLimit-Remaining") != string(rune('4'-i)) ||
				r.header.Get("X-RateLimit-Reset-After") != "2.000" || r.header.Get("X-RateLimit-Bucket") == "" {
				t.Fatalf("request %d: %d %v", i, r.status, r.header)
			}
		}
		r := mustSend(t, hc, http.MethodPost, c, body)
		if r.status != 429 || r.header.Get("X-RateLimit-Scope") != "user" || r.header.Get("Retry-After") != "2" ||
			r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("over the bucket: %d %v %s", r.status, r.header, r.body)
		}
		if m := r.json(t); m["retry_after"] != 2.0 || m["global"] != false {
			t.Errorf("429 body %s", r.body)
		}
		time.Sleep(1500 * time.Millisecond)
		if r := mustSend(t, hc, http.MethodPost, c, body); r.status != 429 || r.header.Get("X-RateLimit-Reset-After") != "0.500" {
			t.Errorf("still over: %d %v", r.status, r.header)
		}
		time.Sleep(500 * time.Millisecond)
		if r := mustSend(t, hc, http.MethodPost, c, body); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "4" {
			t.Errorf("after the reset: %d %v", r.status, r.header)
		}

		// A shared bucket counts both webhooks' requests.
		for i, url := range []string{a, b, a} {
			if r := mustSend(t, hc, http.MethodPost, url, body); r.status != 200 || r.header.Get("X-RateLimit-Bucket") != "shared" {
				t.Fatalf("shared request %d: %d %v", i, r.status, r.header)
			}
		}
		if r := mustSend(t, hc, http.MethodPost, b, body); r.status != 429 {
			t.Errorf("shared bucket spent: %d", r.status)
		}
	})
}

func TestBehaviors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemory(t)
		hc := s.Client()
		a := s.Webhook("1001", "tok-A") + "?wait=true"
		b := s.Webhook("1002", "tok-B") + "?wait=true"
		s.SetBucket("1001", "big", 100, time.Minute)
		s.SetBucket("1002", "big", 100, time.Minute)
		body := `{"content":"x"}`
		post := func(url string) answer { return mustSend(t, hc, http.MethodPost, url, body) }

		// A route 429 whose headers say requests remain; early retries get
		// it again.
		s.Push("1001", RateLimited(1500*time.Millisecond, ScopeShared))
		r := post(a)
		if r.status != 429 || r.header.Get("X-RateLimit-Remaining") != "99" || r.header.Get("X-RateLimit-Scope") != "shared" ||
			r.header.Get("Retry-After") != "2" || r.json(t)["retry_after"] != 1.5 {
			t.Fatalf("route 429: %d %v %s", r.status, r.header, r.body)
		}
		time.Sleep(time.Second)
		if r := post(a); r.status != 429 {
			t.Errorf("retry within the wait: %d", r.status)
		}
		if r := post(b); r.status != 200 {
			t.Errorf("other webhook during a route wait: %d", r.status)
		}
		time.Sleep(500 * time.Millisecond)
		if r := post(a); r.status != 200 {
			t.Errorf("after the wait: %d", r.status)
		}

		// A global 429 holds every webhook, without bucket headers.
		s.Push("1001", GlobalRateLimited(2*time.Second))
		r = post(a)
		if r.status != 429 || r.header.Get("X-RateLimit-Global") != "true" || r.header.Get("X-RateLimit-Bucket") != "" ||
			r.json(t)["global"] != true {
			t.Fatalf("global 429: %d %v %s", r.status, r.header, r.body)
		}
		if r := post(b); r.status != 429 || r.header.Get("X-RateLimit-Scope") != "global" {
			t.Errorf("other webhook during a global wait: %d %v", r.status, r.header)
		}
		time.Sleep(2 * time.Second)
		if r := post(b); r.status != 200 {
			t.Errorf("after the global wait: %d", r.status)
		}

		for _, tt := range []struct {
			b      Behavior
			status int
			in     string // in the body
			rl     bool   // carries the bucket's headers
		}{
			{ServerError(500), 500, `"500: Internal Server Error"`, false},
			{ServerError(502), 502, "<title>502 Bad Gateway</title>", false},
			{ServerError(503), 503, "upstream connect error", false},
			{InvalidToken(), 401, `"code":50027`, true},
			{UnknownWebhook(), 404, `"code":10015`, true},
			{Raw(418, "text/plain", "teapot", "Retry-After", "3"), 418, "teapot", false},
			{OK(), 200, `"content":"x"`, true},
		} {
			s.Push("1001", tt.b)
			r := post(a)
			if r.status != tt.status || !strings.Contains(string(r.body), tt.in) || (r.header.Get("X-RateLimit-Bucket") != "") != tt.rl {
				t.Errorf("behaviour answering %d: got %d %v %s", tt.status, r.status, r.header, r.body)
			}
		}

		s.Push("1001", Delay(1500*time.Millisecond, ServerError(500)))
		start := time.Now()
		if r := post(a); r.status != 500 || time.Since(start) != 1500*time.Millisecond {
			t.Errorf("delayed 500: %d after %v", r.status, time.Since(start))
		}

		// A hang ends with the request's context; it is recorded, unanswered.
		s.Push("1001", Hang())
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		start = time.Now()
		_, err := send(ctx, hc, http.MethodPost, a, body)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Errorf("hang: %v after %v", err, time.Since(start))
		}
		if reqs := s.Requests(); reqs[len(reqs)-1].Status != 0 {
			t.Errorf("hung request recorded with status %d", reqs[len(reqs)-1].Status)
		}

		s.Push("1001", Reset())
		if _, err := send(t.Context(), hc, http.MethodPost, a, body); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("reset: %v", err)
		}
		s.Close()
		if _, err := send(t.Context(), hc, http.MethodPost, a, body); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("closed: %v", err)
		}
	})
}

// TestAwait orders on the fake's records: a waiter wakes on the n-th
// request, including one that hangs.
func TestAwait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemory(t)
		url := s.Webhook("1001", "tok-A") + "?wait=true"
		s.Push("1001", Hang())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := send(ctx, s.Client(), http.MethodPost, url, `{"content":"x"}`)
			done <- err
		}()
		reqs, err := s.Await(t.Context(), 1)
		if err != nil || len(reqs) != 1 || reqs[0].Status != 0 {
			t.Fatalf("Await: %+v, %v", reqs, err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("canceled hang: %v", err)
		}
		short, cancel2 := context.WithTimeout(t.Context(), time.Second)
		defer cancel2()
		if _, err := s.Await(short, 2); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Await past its deadline: %v", err)
		}
	})
}

func TestResetOverTCP(t *testing.T) {
	s := New(t)
	url := s.Webhook("1001", "tok-A") + "?wait=true"
	s.Push("1001", Reset())
	if _, err := send(t.Context(), s.Client(), http.MethodPost, url, `{"content":"x"}`); err == nil {
		t.Error("reset: no error")
	}
	s.Push("1001", Hang())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := send(ctx, s.Client(), http.MethodPost, url, `{"content":"x"}`); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
}
