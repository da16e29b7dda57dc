package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Scenario is every knob of the simulated world: one set per upstream and
// the card. It is what a scenario file holds, what PUT /_sim/scenario
// takes and what GET /_sim/scenario returns, so a state read back can be
// sent again.
type Scenario struct {
	// Seed seeds every random draw (latencies, which calls fail). 0 picks
	// one at start; the one in use is reported, so a run can be repeated.
	// Draws follow the order requests arrive in, so concurrent load
	// repeats only as far as its arrival order does.
	Seed      uint64   `json:"seed"`
	Ollama    Upstream `json:"ollama"`
	OpenAI    Upstream `json:"openai"`
	Gemini    Upstream `json:"gemini"`
	Anthropic Upstream `json:"anthropic"`
	Discord   Upstream `json:"discord"`
	GPU       GPU      `json:"gpu"`
}

// The upstreams' names, as the scenario, the state and the flags spell
// them.
const (
	NameOllama    = "ollama"
	NameOpenAI    = "openai"
	NameGemini    = "gemini"
	NameAnthropic = "anthropic"
	NameDiscord   = "discord"
)

// Names lists the upstreams; ModelNames those that judge (all but
// Discord), which a flag without a name applies to.
var (
	Names      = []string{NameOllama, NameOpenAI, NameGemini, NameAnthropic, NameDiscord}
	ModelNames = Names[:4]
)

// Upstream is how one upstream behaves.
type Upstream struct {
	// Latency is how long a call holds its slot before it is answered.
	Latency Latency `json:"latency"`
	// LoadLatency (Ollama only) is how long loading the model takes, on a
	// preload or on a call that finds the model unloaded.
	LoadLatency Latency `json:"load_latency,omitzero"`
	// Slots is how many calls are served at once; 0 is no limit.
	Slots int `json:"slots"`
	// Queue is how many calls may wait for a slot; one more is answered
	// at once as the server answers a full queue (Ollama's 503 "server
	// busy", or the crashed runner's 500 with CrashWhenFull).
	Queue int `json:"queue"`
	// CrashWhenFull answers a call that finds the queue full with the
	// format's 500 (Ollama: "llama runner process has terminated"), as the
	// owner's GPU did when it was sent too much, instead of 503.
	CrashWhenFull bool `json:"crash_when_full"`
	// Errors are the shares of calls that fail, by kind.
	Errors ErrorRates `json:"errors"`
	// RetryAfter is the wait a 429 of the "429" kind asks for.
	RetryAfter Duration `json:"retry_after"`
	// Storm starts a 429 storm when the scenario is applied: every call
	// gets a 429 asking to come back when the storm ends, for this long.
	// It is an action, not a setting: once started it shows as storm_left
	// in the state, and a scenario read back carries 0.
	Storm Duration `json:"storm,omitzero"`
	// APIKey (OpenAI, Gemini, Anthropic) makes calls without this key fail
	// as the provider fails a bad key.
	APIKey string `json:"api_key,omitzero"`
	// BucketLimit and BucketReset (Discord only) are each webhook's rate
	// limit: BucketLimit requests per BucketReset, Discord's 5 per 2 s by
	// default.
	BucketLimit int      `json:"bucket_limit,omitzero"`
	BucketReset Duration `json:"bucket_reset,omitzero"`
}

// ErrorRates are shares of calls, from 0 to 1, that fail in each way; at
// most 1 in all. One draw per call picks at most one.
type ErrorRates struct {
	// E500 is the format's 500 (Ollama: the crashed runner).
	E500 float64 `json:"500"`
	// E503 is the format's "overloaded": 503 (Anthropic: 529).
	E503 float64 `json:"503"`
	// E429 is the format's 429 asking for RetryAfter.
	E429 float64 `json:"429"`
	// Hang never answers: the call holds its slot until the client gives
	// up.
	Hang float64 `json:"hang"`
	// Reset drops the connection (TCP RST) after the latency.
	Reset float64 `json:"reset"`
	// Malformed answers 200 with the body cut off mid-JSON.
	Malformed float64 `json:"malformed"`
	// Prose answers 200 with the judgement wrapped in chatty prose and a
	// code fence ("Sure! Here is ...").
	Prose float64 `json:"prose"`
}

// Kinds of outcome counted in the state's errors, besides the drawn ones
// (Kind500 ... KindProse).
const (
	Kind500       = "500"
	Kind503       = "503"
	Kind429       = "429"
	KindHang      = "hang"
	KindReset     = "reset"
	KindMalformed = "malformed"
	KindProse     = "prose"
	// KindStorm is a 429 answered during a storm.
	KindStorm = "storm"
	// KindQueueFull is a call that found the slots and the queue full and
	// got the 503; KindCrash one that got the 500 (CrashWhenFull).
	KindQueueFull = "queue_full"
	KindCrash     = "crash"
	// KindOOM is an Ollama call or load that did not fit in VRAM: the
	// runner's 500 "out of memory".
	KindOOM = "oom"
	// KindAuth is a call without the configured API key.
	KindAuth = "auth"
	// KindBucket is a Discord request over its webhook's bucket.
	KindBucket = "bucket"
)

// Kinds lists every kind counted, in the order the state shows them.
var Kinds = []string{Kind500, Kind503, Kind429, KindHang, KindReset, KindMalformed, KindProse,
	KindStorm, KindQueueFull, KindCrash, KindOOM, KindAuth, KindBucket}

// draw picks the failure of one call from u, a uniform number in [0,1):
// "" for none.
func (e ErrorRates) draw(u float64) string {
	for _, k := range []struct {
		kind string
		p    float64
	}{{Kind500, e.E500}, {Kind503, e.E503}, {Kind429, e.E429}, {KindHang, e.Hang},
		{KindReset, e.Reset}, {KindMalformed, e.Malformed}, {KindProse, e.Prose}} {
		if u < k.p {
			return k.kind
		}
		u -= k.p
	}
	return ""
}

func (e ErrorRates) validate() error {
	sum := 0.0
	for name, p := range map[string]float64{Kind500: e.E500, Kind503: e.E503, Kind429: e.E429, KindHang: e.Hang,
		KindReset: e.Reset, KindMalformed: e.Malformed, KindProse: e.Prose} {
		if math.IsNaN(p) || p < 0 || p > 1 {
			return fmt.Errorf("errors.%s = %v: must be from 0 to 1", name, p)
		}
		sum += p
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("errors add up to %v: at most 1", sum)
	}
	return nil
}

// GPU is the simulated card: an AMD RX 6800 as the amdgpu driver shows it
// in sysfs, whose used VRAM follows the Ollama upstream.
type GPU struct {
	// TotalMiB is the card's VRAM (an RX 6800 reports 16368 MiB).
	TotalMiB uint64 `json:"total_mib"`
	// BaseMiB is what the desktop and other programs use.
	BaseMiB uint64 `json:"base_mib"`
	// ModelMiB is what a loaded model takes (size and size_vram in
	// /api/ps).
	ModelMiB uint64 `json:"model_mib"`
	// LeakMiBPerCall is what each Ollama model call leaves behind.
	LeakMiBPerCall uint64 `json:"leak_mib_per_call"`
	// FreeOnUnload frees the leak when a model is unloaded; false keeps
	// it, as Ollama on ROCm is known to (only a restart of the model
	// server, POST /_sim/ollama/restart, frees it then).
	FreeOnUnload bool `json:"free_on_unload"`
}

// MiB is a mebibyte, the unit of the GPU knobs.
const MiB = 1 << 20

// Default is the world with nothing going wrong: answers at once, Ollama
// with its own defaults (one slot, a queue of 512), Discord's buckets,
// and an RX 6800 with 1 GiB in use and a 7B model's 4.8 GiB to load.
func Default() Scenario {
	up := Upstream{RetryAfter: Duration(time.Second)}
	ollama := up
	ollama.Slots, ollama.Queue = 1, 512
	discord := up
	discord.BucketLimit, discord.BucketReset = 5, Duration(2*time.Second)
	return Scenario{
		Ollama: ollama, OpenAI: up, Gemini: up, Anthropic: up, Discord: discord,
		GPU: GPU{TotalMiB: 16368, BaseMiB: 1024, ModelMiB: 4899, FreeOnUnload: true},
	}
}

// Upstream returns the knobs of the upstream called name.
func (s *Scenario) Upstream(name string) (*Upstream, bool) {
	switch name {
	case NameOllama:
		return &s.Ollama, true
	case NameOpenAI:
		return &s.OpenAI, true
	case NameGemini:
		return &s.Gemini, true
	case NameAnthropic:
		return &s.Anthropic, true
	case NameDiscord:
		return &s.Discord, true
	}
	return nil, false
}

// Validate says what is wrong with s, naming the knob.
func (s Scenario) Validate() error {
	for _, name := range Names {
		u, _ := s.Upstream(name)
		if err := u.validate(name); err != nil {
			return fmt.Errorf("%s.%w", name, err)
		}
	}
	g := s.GPU
	switch {
	case g.TotalMiB == 0 || g.TotalMiB > 1<<24:
		return fmt.Errorf("gpu.total_mib = %d: must be from 1 to %d", g.TotalMiB, 1<<24)
	case g.BaseMiB > g.TotalMiB:
		return fmt.Errorf("gpu.base_mib = %d: more than total_mib %d", g.BaseMiB, g.TotalMiB)
	case g.ModelMiB > 1<<24 || g.LeakMiBPerCall > 1<<24:
		return errors.New("gpu: model_mib and leak_mib_per_call must be at most 16777216")
	}
	return nil
}

func (u Upstream) validate(name string) error {
	for knob, l := range map[string]Latency{"latency": u.Latency, "load_latency": u.LoadLatency} {
		if err := l.validate(); err != nil {
			return fmt.Errorf("%s: %w", knob, err)
		}
	}
	switch {
	case u.Slots < 0 || u.Slots > 100_000:
		return fmt.Errorf("slots = %d: must be from 0 (no limit) to 100000", u.Slots)
	case u.Queue < 0 || u.Queue > 1_000_000:
		return fmt.Errorf("queue = %d: must be from 0 to 1000000", u.Queue)
	case u.RetryAfter < 0 || u.Storm < 0 || u.BucketReset < 0:
		return errors.New("retry_after, storm and bucket_reset must not be negative")
	case u.BucketLimit < 0:
		return fmt.Errorf("bucket_limit = %d: must not be negative", u.BucketLimit)
	case name != NameOllama && !u.LoadLatency.zero():
		return errors.New("load_latency: Ollama's only (loading a model)")
	case name != NameDiscord && (u.BucketLimit != 0 || u.BucketReset != 0):
		return errors.New("bucket_limit, bucket_reset: Discord's only")
	case name == NameDiscord && (u.BucketLimit == 0 || u.BucketReset == 0):
		return errors.New("bucket_limit and bucket_reset must be above 0")
	case name == NameDiscord && (u.Errors.Malformed != 0 || u.Errors.Prose != 0):
		return errors.New("errors: malformed and prose are for model answers, not Discord's")
	case (name == NameOllama || name == NameDiscord) && u.APIKey != "":
		return errors.New("api_key: Ollama and Discord webhooks take no key")
	}
	if err := u.Errors.validate(); err != nil {
		return err
	}
	return nil
}

// ParseScenario reads a scenario in JSON over base: knobs the text leaves
// out keep base's values (Default() for a scenario file and for PUT, the
// current scenario for PATCH). An unknown knob is an error, so that a typo
// does not pass for a setting. An empty text (an empty file, a PUT with no
// body) is base itself.
func ParseScenario(data []byte, base Scenario) (Scenario, error) {
	sc := base
	if len(bytes.TrimSpace(data)) == 0 {
		return sc, sc.Validate()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return base, fmt.Errorf("reading the scenario: %w", err)
	}
	if dec.More() {
		return base, errors.New("reading the scenario: more than one JSON value")
	}
	if err := sc.Validate(); err != nil {
		return base, fmt.Errorf("scenario: %w", err)
	}
	return sc, nil
}

// Duration is a time.Duration written in JSON as Go writes durations
// ("1.5s", "200ms"); a JSON number is read as seconds.
type Duration time.Duration

// MarshalJSON writes d as "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "1.5s" or 1.5 (seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration %s: a string such as \"1.5s\" or a number of seconds", b)
	}
	if math.IsNaN(secs) || math.Abs(secs) > math.MaxInt64/1e9 {
		return fmt.Errorf("duration %s: out of range", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Latency is a delay drawn for each call: fixed, uniform between two
// bounds, or normal around a mean (drawn below zero counts as zero). Its
// text form, in flags and in JSON, is "200ms", "100ms-300ms" (uniform) or
// "200ms~50ms" (normal: mean~stddev); JSON also takes {"fixed": "200ms"},
// {"min": "100ms", "max": "300ms"} or {"mean": "200ms", "stddev": "50ms"}.
type Latency struct {
	dist latencyDist
	// a is the fixed value, the uniform's min or the normal's mean; b the
	// uniform's max or the normal's standard deviation.
	a, b time.Duration
}

type latencyDist int

const (
	fixed latencyDist = iota
	uniform
	normal
)

// Fixed is a latency of exactly d.
func Fixed(d time.Duration) Latency { return Latency{dist: fixed, a: d} }

// ParseLatency reads a latency's text form.
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	parse := func(part string) (time.Duration, error) {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return 0, fmt.Errorf("latency %q: %q is not a duration such as 200ms", s, part)
		}
		return d, nil
	}
	var l Latency
	var err error
	if mean, sd, ok := strings.Cut(s, "~"); ok {
		l.dist = normal
		if l.a, err = parse(mean); err == nil {
			l.b, err = parse(sd)
		}
	} else if lo, hi, ok := strings.Cut(s, "-"); ok && lo != "" {
		l.dist = uniform
		if l.a, err = parse(lo); err == nil {
			l.b, err = parse(hi)
		}
	} else {
		l.a, err = parse(s)
	}
	if err != nil {
		return Latency{}, err
	}
	if err := l.validate(); err != nil {
		return Latency{}, fmt.Errorf("latency %q: %w", s, err)
	}
	return l, nil
}

func (l Latency) validate() error {
	switch {
	case l.a < 0 || l.b < 0:
		return errors.New("durations must not be negative")
	case l.dist == uniform && l.b < l.a:
		return fmt.Errorf("min %v is above max %v", l.a, l.b)
	}
	return nil
}

func (l Latency) zero() bool { return l == Latency{} }

// String is the text form.
func (l Latency) String() string {
	switch l.dist {
	case uniform:
		return l.a.String() + "-" + l.b.String()
	case normal:
		return l.a.String() + "~" + l.b.String()
	}
	return l.a.String()
}

// Sample draws one delay from r.
func (l Latency) Sample(r *rand.Rand) time.Duration {
	switch l.dist {
	case uniform:
		if l.b == l.a {
			return l.a
		}
		return l.a + time.Duration(r.Int64N(int64(l.b-l.a)+1))
	case normal:
		d := float64(l.a) + r.NormFloat64()*float64(l.b)
		return time.Duration(max(0, min(d, math.MaxInt64/2)))
	}
	return l.a
}

// MarshalJSON writes the text form.
func (l Latency) MarshalJSON() ([]byte, error) { return json.Marshal(l.String()) }

// UnmarshalJSON reads the text form or one of the object forms.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := ParseLatency(s)
		if err != nil {
			return err
		}
		*l = v
		return nil
	}
	var o struct {
		Fixed, Min, Max, Mean, StdDev *Duration
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return fmt.Errorf("latency %s: a string (\"200ms\", \"100ms-300ms\", \"200ms~50ms\") or {fixed}, {min,max} or {mean,stddev}: %w", b, err)
	}
	var v Latency
	switch {
	case o.Fixed != nil && o.Min == nil && o.Max == nil && o.Mean == nil && o.StdDev == nil:
		v = Latency{dist: fixed, a: time.Duration(*o.Fixed)}
	case o.Min != nil && o.Max != nil && o.Fixed == nil && o.Mean == nil && o.StdDev == nil:
		v = Latency{dist: uniform, a: time.Duration(*o.Min), b: time.Duration(*o.Max)}
	case o.Mean != nil && o.StdDev != nil && o.Fixed == nil && o.Min == nil && o.Max == nil:
		v = Latency{dist: normal, a: time.Duration(*o.Mean), b: time.Duration(*o.StdDev)}
	default:
		return fmt.Errorf("latency %s: give fixed, or min and max, or mean and stddev", b)
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("latency %s: %w", b, err)
	}
	*l = v
	return nil
}

// newRand is the generator of a seed.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
