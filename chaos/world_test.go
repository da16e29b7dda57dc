package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// startTimeout bounds how long a process may take to print LISTENING and
// a replica to open its local tier.
const startTimeout = 60 * time.Second

// binaries builds (or finds) sentimentd and llmsim. SENTIMENTD_BIN and
// LLMSIM_BIN name binaries already built (make builds bin/ first);
// otherwise both are built without -race into a temporary directory: the
// race detector belongs to this test's own process, not to the servers
// under load.
func binaries(t *testing.T) (sentimentd, llmsim string) {
	t.Helper()
	sentimentd, llmsim = os.Getenv("SENTIMENTD_BIN"), os.Getenv("LLMSIM_BIN")
	if sentimentd != "" && llmsim != "" {
		for _, b := range []string{sentimentd, llmsim} {
			if st, err := os.Stat(b); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				t.Fatalf("%s is not an executable file (SENTIMENTD_BIN, LLMSIM_BIN): %v", b, err)
			}
		}
		return sentimentd, llmsim
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("SENTIMENTD_BIN and LLMSIM_BIN are unset and go is not on PATH to build them: %v", err)
	}
	dir := t.TempDir()
	start := time.Now()
	cmd := exec.Command(goBin, "build", "-o", dir+string(os.PathSeparator),
		"github.com/catalystbot/sentiment/cmd/sentimentd", "github.com/catalystbot/sentiment/cmd/llmsim")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sentimentd ./cmd/llmsim: %v\n%s", err, out)
	}
	t.Logf("built sentimentd and llmsim in %s", time.Since(start).Round(100*time.Millisecond))
	return filepath.Join(dir, "sentimentd"), filepath.Join(dir, "llmsim")
}

// proc is one child process: its first stdout line is LISTENING host:port,
// its stderr goes to a file, line by line, past a watcher.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	addr    string
	done    chan struct{} // closed once the process has exited
	waitErr error         // set before done is closed
}

// lineWriter writes a child's stderr to a file and hands each complete
// line to onLine.
type lineWriter struct {
	mu     sync.Mutex
	f      *os.File
	buf    []byte
	onLine func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.f.Write(p)
	if w.onLine == nil {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.onLine(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// startProc runs bin and waits for its LISTENING line.
func startProc(name, bin string, args, env []string, logPath string, onLine func(string)) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	// The children die with this process, should it be killed before
	// its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = &lineWriter{f: f, onLine: onLine}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		first <- line
		_, _ = io.Copy(io.Discard, r)
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	select {
	case line := <-first:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
		if !ok {
			<-p.done
			return nil, fmt.Errorf("%s: first stdout line %q, want LISTENING host:port (exit: %v)\n%s", name, line, p.waitErr, tail(logPath, 20))
		}
		p.addr = addr
		return p, nil
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s printed no LISTENING line within %s\n%s", name, startTimeout, tail(logPath, 20))
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the last n lines of a log file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + filepath.Base(path) + " (last lines) ---\n" + strings.Join(lines, "\n")
}

// --- llmsim -------------------------------------------------------------

// simWorld is the llmsim process and its control API.
type simWorld struct {
	proc  *proc
	base  string // http://host:port
	sysfs string
	http  *http.Client
}

func startSim(bin, dir string, seed uint64, scenario string) (*simWorld, error) {
	sysfs := filepath.Join(dir, "sysfs")
	scFile := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(scFile, []byte(scenario), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("llmsim", bin,
		[]string{"--addr", "127.0.0.1:0", "--sysfs", sysfs, "--scenario", scFile, "--seed", strconv.FormatUint(seed, 10)},
		minimalEnv(nil), filepath.Join(dir, "llmsim.log"), nil)
	if err != nil {
		return nil, err
	}
	return &simWorld{proc: p, base: "http://" + p.addr, sysfs: sysfs, http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// control sends one control request; a status other than 2xx is an error.
func (s *simWorld) control(method, path, body string, out any) error {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("llmsim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("llmsim %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// simUpstream is the part of llmsim's state the checks read.
type simUpstream struct {
	Requests    int64            `json:"requests"`
	OK          int64            `json:"ok"`
	MaxInFlight int              `json:"max_in_flight"`
	MaxQueued   int              `json:"max_queued"`
	Canceled    int64            `json:"canceled"`
	Errors      map[string]int64 `json:"errors"`
}

type simState struct {
	Upstreams map[string]simUpstream `json:"upstreams"`
	Ollama    struct {
		Loads   int `json:"loads"`
		Unloads int `json:"unloads"`
	} `json:"ollama"`
}

func (s *simWorld) state() (simState, error) {
	var st simState
	err := s.control(http.MethodGet, "/_sim/state", "", &st)
	return st, err
}

// --- the cloud proxy ----------------------------------------------------

// cloudProxy stands between the replicas and llmsim's Gemini and Anthropic
// and records when each call arrived, so that the quota check can count
// calls in any sliding minute (llmsim's state only has totals).
type cloudProxy struct {
	srv *http.Server
	url string
	mu  sync.Mutex
	at  map[string][]time.Time // provider -> arrivals
}

func startCloudProxy(target string) (*cloudProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cp := &cloudProxy{url: "http://" + lis.Addr().String(), at: map[string][]time.Time{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(u) },
		Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
		ErrorLog: log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	cp.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			provider := ""
			switch {
			case strings.HasPrefix(r.URL.Path, "/v1beta/models/"):
				provider = "gemini"
			case r.URL.Path == "/v1/messages":
				provider = "anthropic"
			}
			if provider != "" {
				cp.mu.Lock()
				cp.at[provider] = append(cp.at[provider], time.Now())
				cp.mu.Unlock()
			}
			rp.ServeHTTP(w, r)
		})}
	go func() { _ = cp.srv.Serve(lis) }()
	return cp, nil
}

func (cp *cloudProxy) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = cp.srv.Shutdown(ctx)
}

func (cp *cloudProxy) arrivals(provider string) []time.Time {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return append([]time.Time(nil), cp.at[provider]...)
}

// --- sentimentd replicas ------------------------------------------------

// Replica states: a replica is sent work only while up.
const (
	stateUp int32 = iota
	stateDraining
	stateDown
)

// replica is one incarnation of a sentimentd process.
type replica struct {
	name    string // "a" or "b"
	gen     int    // incarnation, from 1
	proc    *proc
	metrics string // http://host:port
	conn    *grpc.ClientConn
	client  pb.SentimentServiceClient
	state   atomic.Int32
	// last holds the breaker transitions per tier at the last reading.
	last map[pb.Tier]uint64
}

func (r *replica) label() string { return fmt.Sprintf("%s#%d", r.name, r.gen) }

// minimalEnv is PATH and HOME plus extra: nothing of the developer's shell
// (model keys, REDIS_URL, webhooks) reaches the children.
func minimalEnv(extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

// startReplica starts sentimentd and waits until it serves; with
// needLocal, also until its local tier admits work (the model is warm).
// A replica started again in the middle of a failing phase may find the
// model server being cleaned up by the other replica, its gate closed for
// as long as that takes: it serves meanwhile, from the other tiers.
func startReplica(bin, dir, name string, gen int, env map[string]string, needLocal bool) (*replica, error) {
	metricsAddr := make(chan string, 1)
	var once sync.Once
	onLine := func(line string) {
		if !strings.Contains(line, `"msg":"serving"`) {
			return
		}
		var m struct {
			Metrics string `json:"metrics"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Metrics != "" {
			once.Do(func() { metricsAddr <- m.Metrics })
		}
	}
	logPath := filepath.Join(dir, fmt.Sprintf("sentimentd-%s%d.log", name, gen))
	p, err := startProc("sentimentd "+name, bin, nil, minimalEnv(env), logPath, onLine)
	if err != nil {
		return nil, err
	}
	r := &replica{name: name, gen: gen, proc: p, last: map[pb.Tier]uint64{}}
	fail := func(err error) (*replica, error) {
		p.stop(5 * time.Second)
		if r.conn != nil {
			r.conn.Close()
		}
		return nil, fmt.Errorf("%s: %w\n%s", r.label(), err, tail(logPath, 30))
	}
	select {
	case m := <-metricsAddr:
		r.metrics = "http://" + m
	case <-time.After(10 * time.Second):
		return fail(errors.New("no serving line with the metrics address on stderr"))
	}
	r.conn, err = grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fail(err)
	}
	r.client = pb.NewSentimentServiceClient(r.conn)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		h, herr := healthpb.NewHealthClient(r.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "catalyst.sentiment.v1.SentimentService"})
		if herr == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			if !needLocal {
				return r, nil
			}
			if st, gerr := r.client.GPUStatus(ctx, &pb.GPUStatusRequest{}); gerr == nil && st.GetLocalAdmitting() {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("not serving with its local tier open within %s (health %v %v)", startTimeout, h, herr))
		case <-p.done:
			return fail(fmt.Errorf("exited during start-up: %v", p.waitErr))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// terminate sends SIGTERM and waits for the drain to end (bounded).
func (r *replica) terminate(bound time.Duration) error {
	r.state.Store(stateDraining)
	if err := r.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-r.proc.done:
		r.state.Store(stateDown)
		if r.proc.waitErr != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM, want status 0", r.label(), r.proc.waitErr)
		}
		return nil
	case <-time.After(bound):
		_ = r.proc.cmd.Process.Kill()
		<-r.proc.done
		r.state.Store(stateDown)
		return fmt.Errorf("%s did not exit within %s of SIGTERM", r.label(), bound)
	}
}

// stats reads the replica's Stats.
func (r *replica) stats() (*pb.StatsResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return r.client.Stats(ctx, &pb.StatsRequest{})
}

// goroutines reads go_goroutines from /metrics.
func (r *replica) goroutines() (int, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(r.metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, errors.New("no go_goroutines in /metrics")
}

// rssMiB reads the process's resident set from /proc/<pid>/status.
func (r *replica) rssMiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.proc.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, errors.New("no VmRSS line")
}

// quiet waits, bounded, until the replica's goroutine count holds still
// across two readings, and returns it with the RSS then.
func (r *replica) quiet(bound time.Duration) (goroutines int, rss float64, err error) {
	deadline := time.Now().Add(bound)
	prev := -1
	for {
		g, err := r.goroutines()
		if err != nil {
			return 0, 0, err
		}
		if g == prev || time.Now().After(deadline) {
			rss, err := r.rssMiB()
			return g, rss, err
		}
		prev = g
		time.Sleep(500 * time.Millisecond)
	}
}
