package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/catalystbot/sentiment/internal/app"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
)

// killableListener is a replica's listener that can drop every
// connection at once, as a killed process does.
type killableListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *killableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *killableListener) kill() {
	l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// replica is a server whose model calls wait for release, each announced
// on arrived.
type replica struct {
	lis     *killableListener
	arrived chan struct{}
}

func startReplica(t *testing.T, release <-chan struct{}) *replica {
	t.Helper()
	r := &replica{arrived: make(chan struct{}, 64)}
	local := upstreamtest.New(t, upstreamtest.Ollama)
	local.SetDefault(upstreamtest.Func(func(c *upstreamtest.Call) {
		r.arrived <- struct{}{}
		select {
		case <-release:
			upstreamtest.Answer(upstreamtest.BullishJSON)(c)
		case <-c.R.Context().Done():
		}
	}))
	cfg := testConfig()
	cfg.Local.Enabled, cfg.Local.Endpoint, cfg.Local.MaxConcurrent = true, local.URL, 8
	a, err := app.New(t.Context(), cfg, slog.New(slog.DiscardHandler), app.WithoutGPUManager())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.lis = &killableListener{Listener: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Server().Serve(r.lis) // a killed replica's Serve fails
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Server().Shutdown(ctx)
		<-done
		a.Close()
	})
	return r
}

// TestBatchResumesOnAnotherReplica: two replicas behind one name; the one
// carrying a batch is killed with four items in flight. The batch goes on
// on the other: the unanswered are sent again, the input goes on, every item is
// written once, and the summary says it resumed.
func TestBatchResumesOnAnotherReplica(t *testing.T) {
	release := make(chan struct{})
	reps := []*replica{startReplica(t, release), startReplica(t, release)}
	rb := manual.NewBuilderWithScheme("ctlresume")
	rb.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: reps[0].lis.Addr().String()}, {Addr: reps[1].lis.Addr().String()}}})
	resolver.Register(rb)

	stdin, feed := io.Pipe()
	line := func(i int) string {
		return fmt.Sprintf(`{"id":"r-%d","ticker":"ACME","title":"Acme wins order %d and raises guidance"}`+"\n", i, i)
	}
	done := make(chan result, 1)
	go func() {
		done <- runCLI(t, invocation{stdin: stdin}, "batch", "--addr", "ctlresume:///replicas", "--progress", "none", "--timeout", "60s", "-")
	}()
	for i := range 4 {
		if _, err := io.WriteString(feed, line(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The four reach one replica's model and wait there.
	var victim *replica
	for range 4 {
		select {
		case <-reps[0].arrived:
			victim = reps[0]
		case <-reps[1].arrived:
			victim = reps[1]
		case r := <-done:
			t.Fatalf("the batch ended early: %d\n%s", r.code, r.stderr)
		}
	}
	victim.lis.kill()
	close(release)
	go func() {
		defer feed.Close()
		for i := 4; i < 8; i++ {
			if _, err := io.WriteString(feed, line(i)); err != nil {
				return
			}
		}
	}()
	r := <-done
	stdin.Close() // a batch that ended early leaves the writer blocked
	if r.code != 0 {
		t.Fatalf("exit status %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for i := range 8 {
		if n := strings.Count(r.stdout, fmt.Sprintf(`{"id":"r-%d","result"`, i)); n != 1 {
			t.Errorf("item r-%d written %d times, want once\n%s", i, n, r.stdout)
		}
	}
	// The four in flight at least; the next may have been sent on the
	// dead stream before its end was seen.
	if !regexp.MustCompile(`resumed on another replica: .*\(([4-8]) unanswered items sent again\)`).MatchString(r.stderr) ||
		!strings.Contains(r.stderr, "8 answered, 0 errors, 0 unanswered") {
		t.Errorf("summary:\n%s", r.stderr)
	}
}
