// Package limiter keeps every language-model provider inside its request
// quotas, so the router never earns a 429 and a cloud account is never
// billed or suspended for overuse.
//
// The composition root builds one Limiter (NewMemory, or NewRedis over the
// service's Redis client) with the limits of every provider, and hands
// each tier the Quota that For returns; a provider left out of the limits
// is an error there, at start, not a tier that is silently unlimited.
//
// The router calls Quota.Reserve before each upstream call: the limiter
// claims the next request slot that satisfies every window of the provider
// at once (per minute, per hour, per day, and the least interval between
// two calls) and says how long to wait for it. When that wait would not
// fit the caller's deadline, nothing is claimed and a *NoSlotError tells
// the router to skip the tier at once instead of waiting. When the call is
// then not made after all (the caller hung up while it waited, the GPU
// queue refused the item) the router cancels the Reservation and the slot
// is free again, as with golang.org/x/time/rate's Reservation.Cancel:
// slots claimed for calls never made would otherwise starve the quota.
//
// Why it is built this way:
//
//   - Exact, never over. Each window is an exact sliding-window log of slot
//     times: a slot at time t counts against every window of length T that
//     contains t, so no span of T ever holds more than the limit. Token
//     buckets and GCRA allow a burst on top of the steady rate (up to twice
//     the limit inside one sliding window) and fixed windows allow twice the
//     limit across a boundary; providers count in sliding windows, so those
//     would earn 429s. Slots are handed out in FIFO order, which keeps each
//     log sorted and makes the next slot a closed formula (see Reserve).
//     Logs drop what left the window and nothing else: a cancelled slot can
//     make an older one bind again, so a log cannot be cut to the limit's
//     count. Memory stays bounded by the limits times (1 + the longest wait
//     allowed / the window's length).
//   - Across replicas. With Redis the logs live there, one sorted set per
//     provider and window, and one Lua script claims a slot atomically over
//     all of them. The script reads Redis's own clock (TIME), so replicas
//     whose clocks disagree still agree on the windows.
//   - Never down because Redis is. When Redis cannot be reached each replica
//     falls back to an in-memory limiter holding its local share of every
//     quota (so N replicas with share 1/N stay inside the quota together),
//     counting what it already claimed through Redis. Once Redis answers
//     again, after a back-off, the slots claimed during the outage are
//     written back to Redis before it is trusted again, so windows that span
//     the outage stay exact. The same write-back happens when Redis comes
//     back empty (restarted without persistence, flushed): an epoch key per
//     provider shows it, and no replica then gets a fresh quota. A cancelled
//     slot leaves the set of slots to write back, so it is not brought back.
package limiter
