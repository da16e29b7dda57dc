package batcher_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/catalystbot/sentiment/batcher"
	"github.com/catalystbot/sentiment/internal/redistest"
	"github.com/catalystbot/sentiment/upstream"
)

func redisClient(t *testing.T, srv *redistest.Server) redis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.MaxRetries = -1
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestReplicasShareTheSlots: three replicas, each allowed 4 calls, in
// front of one 4-slot GPU: together they never run more than 4, and every
// item starts.
func TestReplicasShareTheSlots(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisClient(t, srv)
	const slots, perReplica = 4, 40
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		q := newQueue(t, batcher.Config{MaxConcurrent: slots, QueueSize: perReplica},
			batcher.WithLeases(batcher.NewRedisLeases(rdb, "{gpu}:leases", 0), 0.5, quiet()))
		for range perReplica {
			wg.Go(func() {
				rel, err := q.AcquireRanked(t.Context(), 30*time.Second, batcher.Rank{})
				if err != nil {
					t.Error(err)
					return
				}
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(2 * time.Millisecond) // the call; not an ordering
				running.Add(-1)
				rel(upstream.SignalOK)
			})
		}
	}
	wg.Wait()
	if p := peak.Load(); p > slots || p == 0 {
		t.Errorf("%d calls ran at once across the replicas, want at most %d", p, slots)
	}
	if n, err := rdb.ZCard(context.Background(), "{gpu}:leases").Result(); err != nil || n != 0 {
		t.Errorf("%d leases left after every call ended (%v)", n, err)
	}
}

// TestLeaseOfADeadReplicaExpires: a lease nobody renews or releases (its
// replica was killed) frees its slot after the TTL.
func TestLeaseOfADeadReplicaExpires(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisClient(t, srv)
	l := batcher.NewRedisLeases(rdb, "{gpu}:leases", 300*time.Millisecond)
	ctx := t.Context()
	if _, ok, err := l.TryAcquire(ctx, 1); !ok || err != nil {
		t.Fatalf("first lease: %v %v", ok, err)
	}
	if _, ok, err := l.TryAcquire(ctx, 1); ok || err != nil {
		t.Fatalf("second lease of one slot: %v %v; want refused", ok, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ok, err := l.TryAcquire(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead replica's lease never expired")
		}
		time.Sleep(20 * time.Millisecond) // polling Redis's clock
	}
}

// TestRenewedLeaseOutlivesItsTTL: a call longer than the TTL keeps its
// slot while it runs.
func TestRenewedLeaseOutlivesItsTTL(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisClient(t, srv)
	l := batcher.NewRedisLeases(rdb, "{gpu}:leases", 300*time.Millisecond)
	ctx := t.Context()
	lease, ok, err := l.TryAcquire(ctx, 1)
	if !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	for range 5 {
		time.Sleep(100 * time.Millisecond) // a third of the TTL
		if err := l.Renew(ctx, lease); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := l.TryAcquire(ctx, 1); ok {
			t.Fatal("a renewed lease's slot was taken")
		}
	}
	if err := l.Release(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := l.TryAcquire(ctx, 1); !ok {
		t.Fatal("a released lease's slot is still held")
	}
}

// TestLeasesFallBackToTheLocalShare: with Redis down a replica runs its
// local share of the slots, says so, and shares again once Redis is back.
func TestLeasesFallBackToTheLocalShare(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redisClient(t, srv)
	q := newQueue(t, batcher.Config{MaxConcurrent: 4, QueueSize: 8},
		batcher.WithLeases(batcher.NewRedisLeases(rdb, "{gpu}:leases", 0), 0.5, quiet()))
	srv.Stop()
	var held []func(upstream.Signal)
	for range 2 {
		rel, err := q.AcquireRanked(t.Context(), time.Second, batcher.Rank{})
		if err != nil {
			t.Fatalf("within the local share: %v", err)
		}
		held = append(held, rel)
	}
	if _, err := q.AcquireRanked(t.Context(), 50*time.Millisecond, batcher.Rank{}); err == nil {
		t.Fatal("a third call ran with Redis down: the local share is 2 of 4")
	}
	s := q.Stats()
	if !strings.HasPrefix(s.Shared, "memory (redis unreachable") || s.LeaseFallbacks != 3 || s.InFlight != 2 {
		t.Errorf("stats %+v; want the fallback said and counted, the refused item's slot given back", s)
	}
	for _, rel := range held {
		rel(upstream.SignalOK)
	}
	srv.Start()
	rel, err := q.AcquireRanked(t.Context(), 5*time.Second, batcher.Rank{})
	if err != nil {
		t.Fatal(err)
	}
	rel(upstream.SignalOK)
	if s := q.Stats(); s.Shared != "redis" {
		t.Errorf("after Redis came back: %q, want redis", s.Shared)
	}
}
