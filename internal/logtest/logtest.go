// Package logtest holds a log sink for tests that read what the service
// logged while goroutines were still writing.
package logtest

import (
	"strings"
	"sync"
)

// Buffer collects log output written from several goroutines.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
