package batcher_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// waiters, the fake GPU server and its HTTP clients all start goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
