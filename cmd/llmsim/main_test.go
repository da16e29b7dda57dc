package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/catalystbot/sentiment/gpu"
	"github.com/catalystbot/sentiment/internal/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunServesUntilStopped runs the command as a script would: port 0,
// a scenario file with flags over it, a sysfs tree. It prints LISTENING
// first, serves the control API and the card, and stops cleanly.
func TestRunServesUntilStopped(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, out := io.Pipe()
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--addr", "127.0.0.1:0", "--sysfs", root, "--scenario", "testdata/rocm-leak.json",
			"--slots", "ollama=3", "--latency", "discord=0s", "--seed", "11", "--leak-mib", "64"}, out, io.Discard)
		out.Close()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
	if _, _, err := net.SplitHostPort(addr); !ok || err != nil {
		t.Fatalf("first line %q, want LISTENING host:port", line)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + addr + "/_sim/state")
	if err != nil {
		t.Fatal(err)
	}
	var st sim.State
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	sc := st.Scenario
	if st.Seed != 11 || sc.Ollama.Slots != 3 || sc.Ollama.Queue != 8 || !sc.Ollama.CrashWhenFull ||
		sc.Ollama.Latency.String() != "150ms-400ms" || sc.Discord.Latency.String() != "0s" ||
		sc.Gemini.Latency.String() != "300ms~80ms" || sc.GPU.LeakMiBPerCall != 64 || sc.GPU.FreeOnUnload {
		t.Errorf("scenario in force %+v: want the file's, with the flags over it", sc)
	}
	devs, err := gpu.NewSysfs(root).Read(t.Context())
	if err != nil || len(devs) != 1 || devs[0].VRAMTotal != 16368*sim.MiB {
		t.Errorf("the card through the sysfs reader: %+v %v", devs, err)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit %d after the stop, want 0", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"latency", []string{"--latency", "fast"}, 2, `-latency "fast"`},
		{"count", []string{"--slots", "ollama=x"}, 2, `"x" is not a count`},
		{"upstream", []string{"--queue", "mistral=1"}, 2, `no upstream "mistral"`},
		{"pair", []string{"--latency", "ollama=1s,2s"}, 2, `"2s" is not name=value`},
		{"missing file", []string{"--scenario", "testdata/none.json"}, 2, "none.json"},
		{"bad knob", []string{"--vram-mib", "0"}, 2, "gpu.total_mib"},
		{"argument", []string{"serve"}, 2, `unexpected argument "serve"`},
		{"address", []string{"--addr", "256.0.0.1:0"}, 1, "256.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			code := run(t.Context(), tc.args, io.Discard, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

func TestHelpDocumentsSchemaAndControl(t *testing.T) {
	var stderr strings.Builder
	if code := run(t.Context(), []string{"-help"}, io.Discard, &stderr); code != 0 {
		t.Errorf("-help: exit %d", code)
	}
	for _, want := range []string{"-latency", "-sysfs", `"crash_when_full"`, `"free_on_unload"`, "PATCH /_sim/scenario", "GET   /_sim/discord", "max_in_flight"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-help does not mention %q", want)
		}
	}
}
