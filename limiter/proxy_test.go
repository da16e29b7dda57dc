package limiter

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/redistest"
)

// cutProxy forwards TCP to a Redis and can cut the network (every
// connection closed, new ones refused) and restore it on the same address:
// an outage in which Redis keeps its data.
type cutProxy struct {
	tb     testing.TB
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newCutProxy(tb testing.TB, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &cutProxy{tb: tb, target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	tb.Cleanup(p.Cut)
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[u] = struct{}{}, struct{}{}
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			p.wg.Go(func() { pipe(u, c) })
			p.wg.Go(func() { pipe(c, u) })
		}
	})
}

// Cut closes the listener and every connection and waits for the copiers.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

// Restore listens again on the same address.
func (p *cutProxy) Restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.tb.Fatalf("proxy listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// TestRedisPartition: the network to Redis is cut while Redis keeps its
// data. The local share answers; when the network is back the slots claimed
// locally are written back, and the ones Redis already had are not counted
// twice, so exactly the rest of the shared minute is handed out.
func TestRedisPartition(t *testing.T) {
	srv := redistest.Start(t)
	px := newCutProxy(t, srv.Addr())
	c := redis.NewClient(&redis.Options{Addr: px.addr, ContextTimeoutEnabled: true, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	l := newRedis(t, c, testPrefix, map[Provider]Limits{ProviderGemini: {PerMinute: 20}}, 0.5, nil,
		WithRetryBackoff(50*time.Millisecond), WithRedisTimeout(500*time.Millisecond))
	ctx := context.Background()
	q := quota(t, l, ProviderGemini)
	count := func(n int) int { return admitted(t, q, n) }
	if got := count(4); got != 4 {
		t.Fatalf("before the cut: admitted %d of 4", got)
	}
	px.Cut()
	if got := count(50); got != 8 {
		t.Fatalf("admitted %d during the cut, want 8 (half of the 16 left)", got)
	}
	if b := l.Backend(); !strings.HasPrefix(b, "memory (redis unreachable: ") {
		t.Fatalf("backend %q during the cut", b)
	}
	px.Restore()
	after := 0
	deadline := time.Now().Add(10 * time.Second)
	for l.Backend() != "redis" {
		if time.Now().After(deadline) {
			t.Fatalf("still %q 10s after the network came back", l.Backend())
		}
		after += count(1)
		time.Sleep(10 * time.Millisecond)
	}
	after += count(50)
	if after != 8 {
		t.Fatalf("admitted %d after the cut, want 8 (4 + 8 + 8 = 20)", after)
	}
	n, err := c.ZCard(ctx, testPrefix+":{gemini}:minute").Result()
	if err != nil || n != 20 {
		t.Fatalf("minute log holds %d (%v), want 20", n, err)
	}
}
