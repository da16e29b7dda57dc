package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/secret"
)

// The types below implement flag.Value for each kind of setting. Each
// checks its own range in Set, so the same message is given whether the
// value came from the environment or a flag.

type stringValue struct {
	p       *string
	allowed []string // empty: any value
}

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v stringValue) Set(s string) error {
	if len(v.allowed) > 0 {
		for _, a := range v.allowed {
			if s == a {
				*v.p = s
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(v.allowed, ", "))
	}
	*v.p = s
	return nil
}

// secretValue holds an API key, token or URL with credentials. It never
// prints its value: flag's -help output and error messages show only
// whether it is set.
type secretValue struct{ p *secret.Secret }

func (v secretValue) String() string {
	if v.p == nil || *v.p == "" {
		return ""
	}
	return redacted
}

func (v secretValue) Set(s string) error {
	*v.p = secret.Secret(strings.TrimSpace(s))
	return nil
}

func (secretValue) show(string) string { return redactedShown }

// redisURLValue is REDIS_URL. It is checked as go-redis will read it, and
// shown with its password replaced.
type redisURLValue struct{ p *secret.Secret }

func (v redisURLValue) String() string { return secretValue(v).String() }

func (v redisURLValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if _, err := ParseRedisURL(s); err != nil {
		// The cause is kept only when it cannot repeat the URL.
		var uerr *url.Error
		msg := "must be a Redis URL such as redis://localhost:6379/0 or rediss://:password@host:6380/0"
		if !errors.As(err, &uerr) {
			msg += " (" + scrubURL(strings.TrimPrefix(err.Error(), "redis: "), s) + ")"
		}
		return errors.New(msg)
	}
	*v.p = secret.Secret(s)
	return nil
}

func (redisURLValue) show(raw string) string { return fmt.Sprintf("%q", redactURL(raw)) }

// redactURL returns raw with its password, and any query value whose name
// speaks of one, replaced. A value with an "@" that does not parse as a
// URL with user info is not shown at all: it may hold a password in a
// form url cannot take apart.
func redactURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.User == nil {
		if strings.Contains(raw, "@") {
			return redacted
		}
		if err != nil {
			return raw
		}
	}
	if q := u.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if k := strings.ToLower(k); strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token") {
				q[k] = []string{"xxxxx"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// scrubURL removes the password of raw from msg.
func scrubURL(msg, raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

type intValue struct {
	p        *int
	min, max int
}

func (v intValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.Itoa(*v.p)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < v.min || n > v.max {
		return fmt.Errorf("must be an integer from %d to %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

type floatValue struct {
	p        *float64
	min, max float64
}

func (v floatValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f != f || f < v.min || f > v.max {
		return fmt.Errorf("must be a number from %g to %g", v.min, v.max)
	}
	*v.p = f
	return nil
}

// secondsValue is a duration written as seconds, as the bot's existing
// settings are (LLM_TIMEOUT_SECS=15, LLM_RETRY_DELAY=2.0). A Go duration
// ("1m30s") is accepted too.
type secondsValue struct {
	p        *time.Duration
	min, max time.Duration
}

func (v secondsValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatFloat(v.p.Seconds(), 'g', -1, 64)
}

func (v secondsValue) Set(s string) error {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f {
			return fmt.Errorf("must be a number of seconds from %g to %g", v.min.Seconds(), v.max.Seconds())
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < v.min || d > v.max {
		return fmt.Errorf("must be a number of seconds from %g to %g", v.min.Seconds(), v.max.Seconds())
	}
	*v.p = d
	return nil
}

// boolValue accepts the spellings the bot's .env files use: 1/0,
// true/false, yes/no, on/off.
type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return ""
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on":
		*v.p = true
	case "0", "false", "no", "off":
		*v.p = false
	default:
		return fmt.Errorf("must be 1 or 0 (true/false, yes/no, on/off)")
	}
	return nil
}

// IsBoolFlag lets `-flag` stand for `-flag=true`.
func (v boolValue) IsBoolFlag() bool { return true }

// minTokenChars is the shortest bearer token accepted: a short token is
// guessable, and a typo such as "tok" must not pass for protection.
const minTokenChars = 16

// tokensValue is the comma-separated bearer tokens. An entry that is blank
// (",,", a trailing comma, a value of spaces) is refused rather than
// dropped: a token list that silently shrinks to nothing would switch auth
// off.
type tokensValue struct{ p *[]secret.Secret }

func (v tokensValue) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return ""
	}
	return fmt.Sprintf("%d tokens, %s", len(*v.p), redacted)
}

func (v tokensValue) Set(s string) error {
	parts := strings.Split(s, ",")
	out := make([]secret.Secret, 0, len(parts))
	for i, t := range parts {
		t = strings.TrimSpace(t)
		switch n := utf8.RuneCountInString(t); {
		case n == 0:
			return fmt.Errorf("must be comma-separated bearer tokens of at least %d characters; entry %d of %d is blank", minTokenChars, i+1, len(parts))
		case n < minTokenChars:
			return fmt.Errorf("must be comma-separated bearer tokens of at least %d characters; entry %d of %d has %d", minTokenChars, i+1, len(parts), n)
		}
		out = append(out, secret.Secret(t))
	}
	*v.p = out
	return nil
}

func (tokensValue) show(string) string { return redactedShown }

// webhooksValue is a comma-separated list of channel=URL pairs. Webhook
// URLs carry their token, so they are secrets.
type webhooksValue struct{ p *map[string]secret.Secret }

func (v webhooksValue) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return ""
	}
	names := make([]string, 0, len(*v.p))
	for name := range *v.p {
		names = append(names, name+"="+redacted)
	}
	return strings.Join(names, ",")
}

func (v webhooksValue) Set(s string) error {
	if path, ok := strings.CutPrefix(strings.TrimSpace(s), "@"); ok {
		// A file keeps the URLs out of the process's environment: one
		// pair per line (or comma-separated), # comments.
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading the webhooks file: %v", err)
		}
		var lines []string
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				lines = append(lines, line)
			}
		}
		s = strings.Join(lines, ",")
	}
	m := map[string]secret.Secret{}
	for _, pair := range splitList(s) {
		name, raw, ok := strings.Cut(pair, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return fmt.Errorf("must be channel=https-URL pairs separated by commas (or @file)")
		}
		if !channelName.MatchString(name) {
			return fmt.Errorf("channel %q: a name is 1 to 64 letters, digits, '-', '_' or '.'", name)
		}
		if _, dup := m[name]; dup {
			return fmt.Errorf("channel %q is named twice", name)
		}
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// The URL itself is not repeated: it holds the webhook token.
			return fmt.Errorf("channel %q: must be an http(s) webhook URL", name)
		}
		m[name] = secret.Secret(strings.TrimSpace(raw))
	}
	*v.p = m
	return nil
}

// channelName is what a channel may be called: what callers write in
// alert.channel.
var channelName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func (webhooksValue) show(string) string { return redactedShown }

// endpointValue is an http(s) base URL. The owner's old LLM_ENDPOINT_URL
// ends in /api/generate; the path of a known API route is dropped so the
// base is what remains.
type endpointValue struct{ p *string }

func (v endpointValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v endpointValue) Set(s string) error {
	base, err := baseURL(s)
	if err != nil {
		return err
	}
	*v.p = base
	return nil
}

// show hides a password a user pasted into the URL; the error says why
// such a URL is refused.
func (endpointValue) show(raw string) string { return fmt.Sprintf("%q", redactURL(raw)) }

// knownRoutes are API paths a user may paste as part of an endpoint.
var knownRoutes = []string{"/api/generate", "/api/chat", "/v1/chat/completions", "/v1"}

func baseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("must be an http(s) URL such as http://localhost:11434")
	}
	if u.User != nil {
		return "", fmt.Errorf("must not carry credentials in the URL")
	}
	path := strings.TrimRight(u.Path, "/")
	for _, r := range knownRoutes {
		if strings.HasSuffix(path, r) {
			path = strings.TrimSuffix(path, r)
			break
		}
	}
	u.Path = path
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// durationStringValue is a Go duration kept as text, for upstreams that
// take the duration as a string (Ollama's keep_alive).
type durationStringValue struct{ p *string }

func (v durationStringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v durationStringValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if s != "0" {
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("must be a duration such as 30m, 24h, -1m (forever) or 0 (unload at once)")
		}
	}
	*v.p = s
	return nil
}

// pricesValue merges model=input/output pairs over the built-in table.
type pricesValue struct{ p *map[string]Price }

func (v pricesValue) String() string {
	if v.p == nil {
		return ""
	}
	names := make([]string, 0, len(*v.p))
	for m, p := range *v.p {
		names = append(names, fmt.Sprintf("%s=%g/%g", m, p.InputPerM, p.OutputPerM))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func (v pricesValue) Set(s string) error {
	m := map[string]Price{}
	for k, p := range *v.p {
		m[k] = p
	}
	for _, pair := range splitList(s) {
		model, prices, ok := strings.Cut(pair, "=")
		in, out, ok2 := strings.Cut(prices, "/")
		fin, err1 := strconv.ParseFloat(strings.TrimSpace(in), 64)
		fout, err2 := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if !ok || !ok2 || strings.TrimSpace(model) == "" || err1 != nil || err2 != nil || fin < 0 || fout < 0 || fin != fin || fout != fout {
			return fmt.Errorf("must be model=input/output pairs in USD per million tokens, e.g. gemini-2.5-flash=0.30/2.50")
		}
		m[strings.TrimSpace(model)] = Price{fin, fout}
	}
	*v.p = m
	return nil
}

// zoneValue is an IANA time zone name.
type zoneValue struct{ p **time.Location }

func (v zoneValue) String() string {
	if v.p == nil || *v.p == nil {
		return "UTC"
	}
	return (*v.p).String()
}

func (v zoneValue) Set(s string) error {
	loc, err := time.LoadLocation(strings.TrimSpace(s))
	if err != nil || strings.TrimSpace(s) == "" {
		return fmt.Errorf("must be an IANA time zone name such as UTC or America/New_York")
	}
	*v.p = loc
	return nil
}

// RedisOptions is REDIS_URL read as go-redis reads it: one server, a
// Cluster (more nodes given as addr=host:port query parameters), or a
// Sentinel-watched primary (master_name=...). Exactly one is set.
type RedisOptions struct {
	Single   *redis.Options
	Cluster  *redis.ClusterOptions
	Failover *redis.FailoverOptions
}

// ParseRedisURL reads REDIS_URL.
func ParseRedisURL(raw string) (RedisOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return RedisOptions{}, err
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(raw)
		return RedisOptions{Failover: o}, err
	case q.Has("addr"):
		o, err := redis.ParseClusterURL(raw)
		return RedisOptions{Cluster: o}, err
	}
	o, err := redis.ParseURL(raw)
	return RedisOptions{Single: o}, err
}
