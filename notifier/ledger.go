package notifier

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ledger remembers which items have alerted on which channel, and the
// message each one posted, for a while: in memory, bounded by count and
// age. Every entry lives as long, so the oldest is always first to go.
type ledger struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	byKey map[string]*list.Element
	order *list.List // of *entry, oldest first
}

type entry struct {
	key  string
	id   string
	born time.Time
}

func newLedger(max int, ttl time.Duration, now func() time.Time) *ledger {
	return &ledger{max: max, ttl: ttl, now: now, byKey: make(map[string]*list.Element), order: list.New()}
}

// claim records key as alerting now, unless it already is: then it
// returns false and the message id recorded ("" while the first post is
// on its way).
func (l *ledger) claim(key string) (first bool, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for e := l.order.Front(); e != nil; e = l.order.Front() {
		if ent := e.Value.(*entry); now.Sub(ent.born) < l.ttl && l.order.Len() < l.max {
			break
		}
		l.remove(e)
	}
	if e, ok := l.byKey[key]; ok {
		return false, e.Value.(*entry).id
	}
	l.byKey[key] = l.order.PushBack(&entry{key: key, born: now})
	return true, ""
}

// record keeps the message id the key's post got.
func (l *ledger) record(key, id string) {
	l.mu.Lock()
	if e, ok := l.byKey[key]; ok {
		e.Value.(*entry).id = id
	}
	l.mu.Unlock()
}

// release forgets key: its post failed, and a later call may try again.
func (l *ledger) release(key string) {
	l.mu.Lock()
	if e, ok := l.byKey[key]; ok {
		l.remove(e)
	}
	l.mu.Unlock()
}

func (l *ledger) remove(e *list.Element) {
	delete(l.byKey, e.Value.(*entry).key)
	l.order.Remove(e)
}

// redisWait bounds each dedupe call to Redis; past it the replica's own
// memory decides.
const redisWait = time.Second

// claim decides whether a's item alerts now: first in this process, then,
// with Redis, first among the replicas (SET NX with the dedupe TTL). A
// Redis that cannot answer leaves the decision to this process's memory.
func (n *Notifier) claim(ctx context.Context, a *alert) (first bool, id string) {
	if first, id = n.seen.claim(a.key); !first || n.rdb == nil {
		return first, id
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisWait)
	defer cancel()
	key := n.redisKey(a.key)
	ok, err := n.rdb.SetNX(ctx, key, "", n.cfg.DedupeTTL).Result()
	if err != nil {
		n.log.Warn("alert dedupe: Redis did not answer; this replica alone decides", "err", err)
		return true, ""
	}
	if ok {
		return true, ""
	}
	// Another replica has the item. Forget it here, so that a repeat asks
	// Redis again and learns the id once that replica has posted.
	n.seen.release(a.key)
	id, err = n.rdb.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		n.log.Warn("alert dedupe: reading the first alert's message id", "err", err)
	}
	return false, id
}

// recordShared keeps the message id in Redis for the other replicas'
// repeats.
func (n *Notifier) recordShared(key, id string) {
	if n.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisWait)
	defer cancel()
	if err := n.rdb.SetArgs(ctx, n.redisKey(key), id, redis.SetArgs{Mode: "XX", KeepTTL: true}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		n.log.Warn("alert dedupe: recording the message id in Redis", "err", err)
	}
}

// releaseShared lets a later call try again after a failed post.
func (n *Notifier) releaseShared(key string) {
	if n.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisWait)
	defer cancel()
	if err := n.rdb.Del(ctx, n.redisKey(key)).Err(); err != nil {
		n.log.Warn("alert dedupe: releasing a failed alert in Redis", "err", err)
	}
}

func (n *Notifier) redisKey(key string) string { return n.cfg.RedisPrefix + "alert:" + key }
