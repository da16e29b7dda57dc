package sim

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/catalystbot/sentiment/notifier"
	"github.com/catalystbot/sentiment/secret"
)

// TestDiscordPostAndEdit drives the simulated Discord with the service's
// own webhook client (which sends versioned paths): the post and the edit
// are recorded, readable through GET /_sim/discord, and the message holds
// the edit.
func TestDiscordPostAndEdit(t *testing.T) {
	w := newWorld(t, Options{}, nil)
	hook, err := notifier.ParseWebhook("alerts", secret.Secret(w.url+"/api/webhooks/1/sim"))
	if err != nil {
		t.Fatal(err)
	}
	c := notifier.NewClient(w.hc)
	id, err := c.Execute(t.Context(), hook, notifier.Message{Content: "📈 ACME Alert", Embeds: []notifier.Embed{{Title: "ACME", Description: "⏳ Processing..."}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Edit(t.Context(), hook, id, notifier.Message{Content: "📈 ACME Alert", Embeds: []notifier.Embed{{Title: "ACME", Description: "bullish"}}}); err != nil {
		t.Fatal(err)
	}

	var d DiscordState
	if code := w.control(http.MethodGet, "/_sim/discord", "", &d); code != http.StatusOK {
		t.Fatalf("GET /_sim/discord: %d", code)
	}
	if len(d.Posts) != 1 || d.Posts[0].MessageID != id || d.Posts[0].Status != 200 || d.Posts[0].WebhookID != "1" ||
		d.Posts[0].Content == nil || *d.Posts[0].Content != "📈 ACME Alert" {
		t.Errorf("posts %+v", d.Posts)
	}
	if len(d.Edits) != 1 || d.Edits[0].MessageID != id || d.Edits[0].Status != 200 || d.Edits[0].Embeds == nil ||
		(*d.Edits[0].Embeds)[0].Description != "bullish" || d.Edits[0].Seq != 2 {
		t.Errorf("edits %+v", d.Edits)
	}
	if len(d.Messages) != 1 || d.Messages[0].Embeds[0].Description != "bullish" || d.Messages[0].EditedTimestamp == nil {
		t.Errorf("messages %+v", d.Messages)
	}
	if u := w.state().Upstreams[NameDiscord]; u.Posts != 1 || u.Edits != 1 || u.OK != 2 || u.Requests != 2 {
		t.Errorf("state %+v", u)
	}
}

// TestDiscordLimits checks the raw answers: the bucket's headers, a
// storm's global 429, the bucket's own 429, and a second token for a
// webhook refused as Discord refuses it.
func TestDiscordLimits(t *testing.T) {
	w := newWorld(t, Options{}, func(sc *Scenario) { sc.Discord.BucketLimit = 2 })
	post := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := w.hc.Post(w.url+path+"?wait=true", "application/json", strings.NewReader(`{"content":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, _ := post("/api/v10/webhooks/7/tok")
	if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Limit") != "2" || resp.Header.Get("X-RateLimit-Remaining") != "1" ||
		resp.Header.Get("X-RateLimit-Bucket") == "" || resp.Header.Get("X-RateLimit-Reset-After") == "" {
		t.Errorf("post: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := post("/api/webhooks/7/other"); resp.StatusCode != 401 || !strings.Contains(body, "50027") {
		t.Errorf("another token: %d %s", resp.StatusCode, body)
	}
	post("/api/webhooks/7/tok")
	if resp, body := post("/api/webhooks/7/tok"); resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Scope") != "user" ||
		resp.Header.Get("X-RateLimit-Remaining") != "0" || !strings.Contains(body, `"retry_after"`) {
		t.Errorf("over the bucket: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	w.patch(`{"discord":{"storm":"10s"}}`)
	if resp, body := post("/api/webhooks/8/tok"); resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Global") != "true" ||
		resp.Header.Get("Retry-After") != "10" || !strings.Contains(body, `"global":true`) {
		t.Errorf("storm: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	u := w.state().Upstreams[NameDiscord]
	if u.Errors[KindBucket] != 1 || u.Errors[KindStorm] != 1 || u.Status["401"] != 1 || u.Status["429"] != 2 || u.OK != 2 {
		t.Errorf("state %+v", u)
	}
	var d DiscordState
	w.control(http.MethodGet, "/_sim/discord", "", &d)
	if len(d.Posts) != 5 || d.Posts[2].Fault != "" || d.Posts[3].Fault != KindBucket || d.Posts[4].Fault != KindStorm || d.Posts[4].Status != 429 {
		t.Errorf("records %+v", d.Posts)
	}
}
