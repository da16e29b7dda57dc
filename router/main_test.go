package router

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// clients, the fake upstreams and the router all start goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
