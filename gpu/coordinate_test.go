package gpu

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/internal/upstreamtest"
)

// memLease is the cleanup lease as Redis keeps it, in memory, for the
// managers' tests inside a synctest bubble (no sockets there); the Redis
// implementation has its own test below.
type memLease struct {
	mu     sync.Mutex
	holder string
}

type memCoord struct {
	l  *memLease
	id string
}

func (c memCoord) Lead(context.Context) (bool, error) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.l.holder == "" || c.l.holder == c.id {
		c.l.holder = c.id
		return true, nil
	}
	return false, nil
}

func (c memCoord) Release(context.Context) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.l.holder == c.id {
		c.l.holder = ""
	}
	return nil
}

func (c memCoord) Other(context.Context) (bool, error) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.l.holder != "" && c.l.holder != c.id, nil
}

// TestOneReplicaCleansUpAtATime: two replicas in front of one model
// server both ask for a cleanup at once: one cleans up, the other keeps
// its gate closed meanwhile and opens it once the first is done.
func TestOneReplicaCleansUpAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lease := &memLease{}
		a := newManagerEnv(t, func(c *ManagerConfig) { c.Coordinator = memCoord{lease, "a"} })
		b := newManagerEnv(t, func(c *ManagerConfig) { c.Coordinator = memCoord{lease, "b"} })
		a.start()
		b.start()
		step(time.Second)
		if ok, _ := a.m.Admit(); !ok {
			t.Fatal("replica a not open after its warm-up")
		}
		// a's unload is quick, its reload takes 3 s.
		a.ollama.PushLoad(upstreamtest.OllamaModelControl(), upstreamtest.Delay(3*time.Second, upstreamtest.OllamaModelControl()))
		if err := a.m.RequestCleanup("test a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if err := b.m.RequestCleanup("test b"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ok, why := b.m.Admit()
		if a.m.Status().Phase == "open" {
			t.Fatalf("replica a's cleanup is already over (%+v): the test cannot see the overlap", a.m.Status())
		}
		if ok || why != peerCleanupGate {
			t.Errorf("replica b during a's cleanup: admit %v (%q); want its gate closed for the other replica", ok, why)
		}
		step(time.Minute)
		sa, sb := a.m.Status(), b.m.Status()
		if sa.Cleanups != 1 || sb.Cleanups != 0 {
			t.Errorf("cleanups: a %d, b %d; want a alone", sa.Cleanups, sb.Cleanups)
		}
		if !sa.Admitting || !sb.Admitting {
			t.Errorf("after a's cleanup: a admitting %v, b %v (%q); want both open", sa.Admitting, sb.Admitting, sb.GateReason)
		}
		if lease.holder != "" {
			t.Errorf("the lease is still held by %q", lease.holder)
		}
	})
}

func TestRedisCoordinator(t *testing.T) {
	srv := redistest.Start(t)
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	a, b := NewRedisCoordinator(rdb, "{gpu}:cleanup"), NewRedisCoordinator(rdb, "{gpu}:cleanup")
	ctx := t.Context()
	check := func(what string, got bool, err error, want bool) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s: %v (%v), want %v", what, got, err, want)
		}
	}
	ok, err := a.Lead(ctx)
	check("a leads", ok, err, true)
	ok, err = b.Lead(ctx)
	check("b leads while a does", ok, err, false)
	ok, err = b.Other(ctx)
	check("b sees another", ok, err, true)
	ok, err = a.Other(ctx)
	check("a sees another", ok, err, false)
	ok, err = a.Lead(ctx)
	check("a renews", ok, err, true)
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err = b.Lead(ctx)
	check("b's release freed nothing of a's", ok, err, false)
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err = b.Lead(ctx)
	check("b leads once a released", ok, err, true)
	if ttl, err := rdb.PTTL(ctx, "{gpu}:cleanup").Result(); err != nil || ttl <= 0 || ttl > CleanupLeaseTTL {
		t.Errorf("lease ttl %v (%v): a dead replica's lease must expire", ttl, err)
	}
}
