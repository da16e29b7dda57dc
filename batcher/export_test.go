package batcher

import "time"

// RestTimer is the pending rest timer of a queue in Waves pacing, nil when
// none is pending, so that a test can tell whether Close stopped it.
func RestTimer(q *Queue) *time.Timer {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.restTimer
}
