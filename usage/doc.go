// Package usage writes the usage log (LLM_USAGE_LOG_PATH): one JSON line
// per upstream model call, with its tier, model, outcome, tokens, cost and
// latency, so that spending can be audited after the fact and the cost
// totals can be rebuilt when the service starts without Redis.
//
// The router's observer hears every call on the request's goroutine, so
// Write must cost that goroutine next to nothing and never wait on the
// disk: it hands the Record to a bounded channel and returns. One writer
// goroutine encodes the records and appends them through a buffer that it
// flushes whenever the channel runs empty, so lines reach the file within
// moments of the call even under light load, and in large writes under
// heavy load. When the disk cannot keep up and the channel is full, the
// record is dropped and counted (Stats.Dropped), never silently lost and
// never allowed to slow a request.
//
// A Record has no field for prompt text, answers, keys or URLs: nothing
// secret can reach the file by mistake.
//
// Log rotation follows the rename-then-reopen pattern: logrotate (or an
// operator) renames the file, then the service calls Reopen (on SIGHUP),
// and the writer switches to a new file at the path between two lines.
//
// Read and ReadFile parse a log back. A crash can leave the last line cut
// short; that line, and any other line that does not parse, is skipped
// and counted instead of failing the whole read.
package usage
