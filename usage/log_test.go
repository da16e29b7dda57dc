package usage

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catalystbot/sentiment/internal/clocktest"
	"github.com/catalystbot/sentiment/internal/logtest"
)

// openLog opens a log in a fresh directory and closes it in Cleanup.
func openLog(t *testing.T, opts ...Option) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	l, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// readAll reads the file at path back.
func readAll(t *testing.T, path string) ([]Record, ReadStats) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []Record
	st, err := Read(f, func(r Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return recs, st
}

func rec(id string) Record {
	return Record{Time: day, RequestID: id, Tier: "gemini", Model: "gemini-2.5-flash", Outcome: OutcomeOK,
		TokensIn: 400, TokensOut: 40, CostUSD: 0.0001, Latency: 800 * time.Millisecond}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts []Option
		want string
	}{
		{"no path", "", nil, "a path is required"},
		{"no buffer", filepath.Join(dir, "a"), []Option{WithBuffer(0)}, "must be at least 1"},
		{"missing directory", filepath.Join(dir, "no", "such", "dir"), nil, "opening the usage log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Open(tc.path, tc.opts...)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestOpenCreatesWithMode(t *testing.T) {
	l, path := openLog(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&^0o640 != 0 {
		t.Fatalf("mode %v, want at most 0640", st.Mode().Perm())
	}
}

// TestConcurrentWriters: with a buffer that holds everything, records from
// many goroutines all reach the file, each as one whole line, exactly once.
func TestConcurrentWriters(t *testing.T) {
	const writers, each = 8, 5000
	l, path := openLog(t, WithBuffer(writers*each))
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				l.Write(rec(fmt.Sprintf("%d-%d", g, i)))
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	recs, st := readAll(t, path)
	if st != (ReadStats{Records: writers * each}) {
		t.Fatalf("read %+v, want %d records and nothing malformed", st, writers*each)
	}
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		if seen[r.RequestID] {
			t.Fatalf("record %s written twice", r.RequestID)
		}
		seen[r.RequestID] = true
		if r != rec(r.RequestID) {
			t.Fatalf("record read back as %+v", r)
		}
	}
	if got := l.Stats(); got != (Stats{Path: path, Written: writers * each}) {
		t.Fatalf("stats %+v", got)
	}
}

// gate is a writer that blocks every write until released, and says when
// the first write arrived.
type gate struct {
	w        io.Writer
	entered  chan struct{}
	once     sync.Once
	released chan struct{}
}

func newGate() *gate { return &gate{entered: make(chan struct{}), released: make(chan struct{})} }

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.released
	return g.w.Write(p)
}

func (g *gate) wrap(w io.Writer) io.Writer {
	g.w = w
	return g
}

// TestDropsWhenWriterBlocked: while the writer is stuck on the disk, Write
// still returns at once, the records beyond the buffer are counted as
// dropped, and the drops are logged once a minute, not once each.
func TestDropsWhenWriterBlocked(t *testing.T) {
	g := newGate()
	clk := clocktest.New(day)
	var logs logtest.Buffer
	l, path := openLog(t, WithBuffer(2), withWriter(g.wrap), WithClock(clk.Now),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	l.Write(rec("first"))
	<-g.entered // the writer holds "first" and is blocked flushing it
	for i := range 10 {
		l.Write(rec(fmt.Sprint(i)))
	}
	if got := l.Stats().Dropped; got != 8 {
		t.Fatalf("dropped %d, want 8 (2 fit the buffer)", got)
	}
	clk.Advance(59 * time.Second)
	l.Write(rec("late"))
	if n := strings.Count(logs.String(), "records dropped"); n != 1 {
		t.Fatalf("%d drop warnings within a minute, want 1:\n%s", n, logs.String())
	}
	clk.Advance(time.Second)
	l.Write(rec("later"))
	if n := strings.Count(logs.String(), "records dropped"); n != 2 || !strings.Contains(logs.String(), "dropped_total=10") {
		t.Fatalf("want a second warning a minute on, with the total of 10:\n%s", logs.String())
	}

	close(g.released)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	recs, _ := readAll(t, path)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.RequestID)
	}
	if strings.Join(ids, ",") != "first,0,1" {
		t.Fatalf("file holds %v, want first,0,1", ids)
	}
	if got := l.Stats(); got.Written != 3 || got.Dropped != 10 || got.WriteErrors != 0 {
		t.Fatalf("stats %+v", got)
	}
}

func TestWriteAfterClose(t *testing.T) {
	l, path := openLog(t)
	l.Write(rec("kept"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Write(rec("dropped"))
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Reopen(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reopen after Close: %v, want ErrClosed", err)
	}
	recs, _ := readAll(t, path)
	if len(recs) != 1 || recs[0].RequestID != "kept" {
		t.Fatalf("file holds %+v", recs)
	}
	if got := l.Stats(); got.Written != 1 || got.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 written and 1 dropped", got)
	}
}

// TestReopenAfterRename is logrotate's rename-then-reopen: what was written
// before Reopen is in the renamed file, what came after in a new one.
func TestReopenAfterRename(t *testing.T) {
	l, path := openLog(t)
	for i := range 3 {
		l.Write(rec(fmt.Sprint("old-", i)))
	}
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	for i := range 2 {
		l.Write(rec(fmt.Sprint("new-", i)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path   string
		prefix string
		n      int
	}{{rotated, "old-", 3}, {path, "new-", 2}} {
		recs, st := readAll(t, tc.path)
		if len(recs) != tc.n || st.Malformed != 0 {
			t.Fatalf("%s holds %d records (%+v), want %d", tc.path, len(recs), st, tc.n)
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.RequestID, tc.prefix) {
				t.Fatalf("%s holds %s", tc.path, r.RequestID)
			}
		}
	}
	if got := l.Stats().Written; got != 5 {
		t.Fatalf("written %d, want 5", got)
	}
}

func TestReopenKeepsOldFileWhenPathFails(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "usage.jsonl")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil || !strings.Contains(err.Error(), "reopening") {
		t.Fatalf("Reopen into a missing directory: %v", err)
	}
	l.Write(rec("still-written"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _ := readAll(t, filepath.Join(moved, "usage.jsonl"))
	if len(recs) != 1 || recs[0].RequestID != "still-written" {
		t.Fatalf("old file holds %+v", recs)
	}
}

// failing writes half of what it is given and fails while fail is set,
// as a disk that fills up mid-write does.
type failing struct {
	w    io.Writer
	fail *atomic.Bool
}

func (f failing) Write(p []byte) (int, error) {
	if f.fail.Load() {
		n, _ := f.w.Write(p[:len(p)/2])
		return n, errors.New("no space left on device")
	}
	return f.w.Write(p)
}

// TestWriteErrorsCounted: records lost to a failing disk are counted, and
// once it recovers the next line is whole, apart from the torn one.
func TestWriteErrorsCounted(t *testing.T) {
	var fail atomic.Bool
	var logs logtest.Buffer
	l, path := openLog(t, withWriter(func(w io.Writer) io.Writer { return failing{w, &fail} }),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	fail.Store(true)
	l.Write(rec("lost"))
	// Reopen waits for the queue to be written: a barrier without sleeps.
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats(); got.WriteErrors != 1 || got.Written != 0 {
		t.Fatalf("stats %+v, want 1 write error", got)
	}
	fail.Store(false)
	l.Write(rec("kept"))
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	recs, st := readAll(t, path)
	if len(recs) != 1 || recs[0].RequestID != "kept" || st.Malformed != 1 {
		t.Fatalf("read %+v (%+v), want the kept record and the torn half line", recs, st)
	}
	if !strings.Contains(logs.String(), "write failed") {
		t.Fatalf("write error not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "gemini-2.5") {
		t.Fatalf("log carries record contents:\n%s", logs.String())
	}
}

// TestOpenAfterCrash: a file left ending in a partial line gets the next
// line on a line of its own.
func TestOpenAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	good := line(day, "gemini", 1)
	if err := os.WriteFile(path, []byte(good+good[:25]), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(rec("after"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs, st := readAll(t, path)
	if len(recs) != 2 || recs[1].RequestID != "after" || st.Malformed != 1 || st.Torn {
		t.Fatalf("read %d records, %+v", len(recs), st)
	}
}

func TestWriteStampsZeroTime(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 2, 3, 4, 5, 6, time.UTC))
	l, path := openLog(t, WithClock(clk.Now))
	l.Write(Record{Tier: "local", Outcome: OutcomeOK})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs, _ := readAll(t, path)
	if len(recs) != 1 || !recs[0].Time.Equal(clk.Now()) {
		t.Fatalf("read %+v, want the clock's time", recs)
	}
}
