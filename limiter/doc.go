// Package limiter keeps every language-model provider inside its request
// quotas, so the router never earns a 429 and a cloud account is never
// billed or suspended for overuse.
//
// The router calls Reserve before each upstream call: the limiter claims the
// next request slot that satisfies every window of the provider at once (per
// minute, per hour, per day, and the least interval between two calls) and
// says how long to wait for it. When that wait would not fit the caller's
// deadline, nothing is claimed and a *NoSlotError tells the router to skip
// the tier at once instead of waiting.
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
//     Logs keep at most the limit of entries and drop what left the window,
//     so memory stays bounded by the limits.
//   - Across replicas. With REDIS_URL set the logs live in Redis, one sorted
//     set per provider and window, and one Lua script claims a slot
//     atomically over all of them. The script reads Redis's own clock (TIME),
//     so replicas whose clocks disagree still agree on the windows.
//   - Never down because Redis is. When Redis cannot be reached each replica
//     falls back to an in-memory limiter holding RedisLocalShare of every
//     quota (so N replicas with share 1/N stay inside the quota together),
//     counting what it already claimed through Redis. Once Redis answers
//     again, after a back-off, the slots claimed during the outage are
//     written back to Redis before it is trusted again, so windows that span
//     the outage stay exact. The same write-back happens when Redis comes
//     back empty (restarted without persistence, flushed): an epoch key per
//     provider shows it, and no replica then gets a fresh quota.
package limiter
