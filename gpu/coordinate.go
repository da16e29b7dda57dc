package gpu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Coordinator lets one replica at a time clean up a model server that
// several share: an unload by one in the middle of another's reload would
// leave the model server empty, or loaded twice.
type Coordinator interface {
	// Lead takes the cleanup lease, or renews it when this replica holds
	// it; false when another replica does.
	Lead(ctx context.Context) (bool, error)
	// Release gives the lease back, if this replica holds it.
	Release(ctx context.Context) error
	// Other reports whether another replica holds the lease now.
	Other(ctx context.Context) (bool, error)
}

// CleanupLeaseTTL bounds how long a cleanup lease outlives a replica that
// died holding it; a running cleanup renews it at every step.
const CleanupLeaseTTL = 2 * time.Minute

// coordTimeout bounds each call to the lease's store.
const coordTimeout = time.Second

// RedisCoordinator is a Coordinator on Redis: one key holding the leading
// replica's id, with an expiry.
type RedisCoordinator struct {
	rdb redis.UniversalClient
	key string
	id  string
	ttl time.Duration
}

// NewRedisCoordinator keeps the lease under key.
func NewRedisCoordinator(rdb redis.UniversalClient, key string) *RedisCoordinator {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &RedisCoordinator{rdb: rdb, key: key, id: hex.EncodeToString(b[:]), ttl: CleanupLeaseTTL}
}

var leadScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Lead implements Coordinator.
func (c *RedisCoordinator) Lead(ctx context.Context) (bool, error) {
	n, err := leadScript.Run(ctx, c.rdb, []string{c.key}, c.id, c.ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("taking the GPU cleanup lease: %w", err)
	}
	return n == 1, nil
}

// Release implements Coordinator.
func (c *RedisCoordinator) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, c.rdb, []string{c.key}, c.id).Err(); err != nil {
		return fmt.Errorf("releasing the GPU cleanup lease: %w", err)
	}
	return nil
}

// Other implements Coordinator.
func (c *RedisCoordinator) Other(ctx context.Context) (bool, error) {
	v, err := c.rdb.Get(ctx, c.key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("reading the GPU cleanup lease: %w", err)
	}
	return v != c.id, nil
}

// errPeerCleanup is the gate's reason while another replica cleans up.
const peerCleanupGate = "GPU gate closed: another replica is cleaning up the model server"

// mayBegin reports whether a cleanup ev would begin may go ahead: with a
// Coordinator, only while this replica leads. A store that cannot be
// asked does not stop a cleanup: a replica alone with its GPU in trouble
// must still recover it.
func (m *Manager) mayBegin(ctx context.Context, ev event) bool {
	if m.cfg.Coordinator == nil {
		return true
	}
	if _, ok := ev.(evTrigger); !ok {
		return true
	}
	if next(m.state(), ev, m.rules).phase != phaseDraining {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, coordTimeout)
	defer cancel()
	ok, err := m.cfg.Coordinator.Lead(cctx)
	if err != nil {
		m.log.Warn("GPU cleanup: the cleanup lease cannot be asked; cleaning up without it", "err", err)
		return true
	}
	if !ok {
		m.peerBusy.Store(true)
		m.log.Info("GPU cleanup: another replica is cleaning up the model server; this one waits with its gate closed")
		return false
	}
	m.leading = true
	return true
}

// coordinate renews the lease while this replica's cleanup runs and gives
// it back when the cleanup is over; otherwise it reads whether another
// replica cleans up, for the gate.
func (m *Manager) coordinate(ctx context.Context) {
	c := m.cfg.Coordinator
	if c == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, coordTimeout)
	defer cancel()
	if m.leading {
		switch m.state().phase {
		case phaseOpen, phaseOff, phasePending:
			m.leading = false
			if err := c.Release(cctx); err != nil {
				m.log.Warn("GPU cleanup: releasing the cleanup lease; it expires by itself", "err", err, "within", CleanupLeaseTTL)
			}
		default:
			if _, err := c.Lead(cctx); err != nil {
				m.log.Warn("GPU cleanup: renewing the cleanup lease", "err", err)
			}
		}
		return
	}
	other, err := c.Other(cctx)
	if err != nil {
		other = false // a store that cannot be asked closes no gate
	}
	if m.peerBusy.Swap(other) && !other {
		m.log.Info("GPU cleanup: the other replica's cleanup is over; the gate follows this replica's own state again")
	}
}
