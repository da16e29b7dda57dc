// Package cost keeps the running totals of what the paid models cost, per
// day and per month in a chosen time zone, per provider and in all, so
// that Stats can show spending against the alert thresholds
// (LLM_COST_ALERT_DAILY, LLM_COST_ALERT_MONTHLY), the owner hears once when
// a threshold is crossed, and, with SENTIMENT_BUDGET_STOP, paid tiers stop
// for the rest of a period whose threshold was reached.
//
// The router's observer reports each call's cost to Totals.Add. Without
// Redis the totals live in this process and Add costs well under a
// microsecond; they are rebuilt at start from the usage log (RebuildFrom),
// so a restart does not forget the day's spending. With Redis (WithRedis)
// every replica adds to the same totals: one hash per period,
//
//	<prefix>:day:2026-12-01    fields: one per provider, and "total"
//	<prefix>:month:2026-12
//
// incremented with HINCRBYFLOAT and expiring a little after their period
// (two days, 35 days). Add then makes one round trip, bounded by a short
// timeout (500 ms by default); callers on a request path may run it on a
// goroutine of their own. All replicas must use the same zone, or they
// would count different days under the same keys.
//
// Why it is built this way:
//
//   - Thresholds alert once per period across replicas. The replica that
//     finds a total at or above a threshold claims
//     <prefix>:alerted:day:2026-12-01 with SET NX; only the winner logs
//     the crossing and calls the WithAlert callback. Without Redis a flag
//     in memory does the same for the one process.
//   - Stopped is on the request path, for every paid tier of every
//     request, so it reads one atomic pointer and the clock, never Redis.
//     The stop's state is recomputed whenever the totals change (Add, a
//     refresh, a rebuild), and Stopped lifts it by itself once the clock
//     passes the end of the period it was for. With Redis, another
//     replica's spending reaches this one's view through its own Adds and
//     through a refresh that Stopped starts in the background when the
//     view is more than a second old, so a stop reached elsewhere takes
//     hold here within about a second.
//   - Redis failing never loses a cost nor stops the service. While Redis
//     cannot be reached, Add counts in memory on top of the last figures
//     read from Redis (so thresholds and the stop keep working on the best
//     figures there are), the failure is counted and logged once, and
//     Snapshot reports the backend as "memory (redis unreachable: ...)".
//     After a back-off one call tries Redis again; when it answers, the
//     amounts counted in memory are written back to Redis in the same
//     transaction, so the shared totals include what was spent during the
//     outage. Should that transaction's answer be lost after Redis applied
//     it, the amounts are counted twice: the error is on the side of
//     spending less, never more.
//   - A restart does not repeat an alert. Without Redis the process cannot
//     know whether it alerted before it stopped, so a rebuild from the
//     usage log never calls the callback: a total already over a threshold
//     is taken as alerted, and the budget stop is set when it applies.
//     With Redis the alerted keys remember it.
package cost
