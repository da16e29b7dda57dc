package upstream

import "fmt"

// Signal is what one call says about the upstream's health. The router
// reads every call's outcome into one Signal, once; the GPU queue adapts
// its concurrency to it and the GPU manager decides on it whether the
// model server needs a cleanup. Neither reads error text.
type Signal int

// Signals, from "nothing learned" to each way a server fails.
const (
	// SignalNone says nothing about the upstream: the caller went away,
	// its deadline cut the call below a fair budget, the provider refused
	// this one item, or a quota answered 429.
	SignalNone Signal = iota
	// SignalOK: the upstream answered.
	SignalOK
	// SignalBusy: the server said it cannot take more now (503, a full
	// queue): back off, it is not failing.
	SignalBusy
	// SignalCrash: the model's runner process died mid-call, a GPU fault
	// on a local server.
	SignalCrash
	// SignalDown: nothing listened: the server is not running.
	SignalDown
	// SignalHung: no answer within a fair budget.
	SignalHung
	// SignalServerError: another 5xx, or a connection that broke mid-call.
	SignalServerError
	// SignalBadAnswer: a 200 whose body held no valid answer.
	SignalBadAnswer
	// SignalRejected: the request's own fault (a 4xx other than 429).
	SignalRejected
)

// Overload reports whether the signal means the server has more than it
// can take: fewer calls at once should follow.
func (s Signal) Overload() bool {
	switch s {
	case SignalBusy, SignalCrash, SignalDown, SignalHung, SignalServerError:
		return true
	}
	return false
}

// Failure reports whether the signal is a failure of the server to be
// held against it (counted toward a cleanup): not OK, not None, and not a
// server that only asked to wait.
func (s Signal) Failure() bool {
	return s != SignalNone && s != SignalOK && s != SignalBusy
}

// Fatal reports whether the signal means the model server is gone or its
// runner died: waiting for more failures would only burn calls.
func (s Signal) Fatal() bool { return s == SignalCrash || s == SignalDown }

func (s Signal) String() string {
	switch s {
	case SignalNone:
		return "none"
	case SignalOK:
		return "ok"
	case SignalBusy:
		return "busy"
	case SignalCrash:
		return "runner crashed"
	case SignalDown:
		return "connection refused"
	case SignalHung:
		return "hung"
	case SignalServerError:
		return "server error"
	case SignalBadAnswer:
		return "bad answer"
	case SignalRejected:
		return "rejected"
	}
	return fmt.Sprintf("Signal(%d)", int(s))
}
