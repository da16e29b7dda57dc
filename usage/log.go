package usage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is how many records wait for the writer before Write
// starts dropping them: at a few hundred bytes each, about a megabyte,
// and minutes of calls at the rates the quotas allow.
const DefaultBuffer = 4096

// bufSize is the writer's buffer: large enough that a burst becomes a few
// big writes.
const bufSize = 64 << 10

// warnEvery bounds how often drops and write errors are logged: a disk
// that stays full must not flood the service's own log.
const warnEvery = time.Minute

// ErrClosed is returned by Reopen once the log is closed.
var ErrClosed = errors.New("usage: log closed")

// Option adjusts a Log.
type Option func(*options)

type options struct {
	buffer int
	log    *slog.Logger
	now    func() time.Time
	wrap   func(io.Writer) io.Writer
}

// WithBuffer sets how many records may wait for the writer (default
// DefaultBuffer). It must be at least 1.
func WithBuffer(n int) Option { return func(o *options) { o.buffer = n } }

// WithLogger sets where dropped records and failed writes are reported,
// each at most once a minute; nil discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithClock sets the clock that stamps records whose Time is zero and
// paces the warnings (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// withWriter wraps the file's writer (and the next file's, after Reopen),
// so that tests can block or fail the writes.
func withWriter(wrap func(io.Writer) io.Writer) Option {
	return func(o *options) { o.wrap = wrap }
}

// Stats counts a log's lines.
type Stats struct {
	// Path is the file written.
	Path string
	// Written counts the lines flushed to the file.
	Written uint64
	// Dropped counts the records that never reached the writer: its
	// buffer was full (the disk could not keep up), or the log was closed.
	Dropped uint64
	// WriteErrors counts the records lost because writing to the file
	// failed (disk full, I/O error).
	WriteErrors uint64
}

// Log appends Records to the usage log. It is safe for concurrent use.
type Log struct {
	path string
	log  *slog.Logger
	now  func() time.Time
	wrap func(io.Writer) io.Writer

	// mu orders Write's send against Close's close of ch: Write holds it
	// shared, so a record is either in ch before Close closes it (and
	// written) or counted as dropped, never stranded.
	mu     sync.RWMutex
	closed bool
	ch     chan Record

	reopen    chan chan error
	done      chan struct{} // closed when the writer has finished
	closeOnce sync.Once
	closeErr  error // set by the writer before done is closed

	written, dropped, writeErrors atomic.Uint64
	lastDropWarn                  atomic.Int64 // Unix ns; 0: never
}

// sink is the file side, owned by the writer goroutine.
type sink struct {
	f       *os.File
	w       io.Writer // f, or what withWriter made of it
	bw      *bufio.Writer
	line    []byte
	pending uint64 // records in bw, not yet flushed
	// torn says the file may end in a partial line (a crash, a failed
	// write): the next line starts with a newline, so that the fragment
	// stays a line of its own that Read skips instead of spoiling a good
	// record.
	torn     bool
	lastWarn time.Time
	flushErr error // the last flush's error, for Close
}

// Open opens the usage log at path for appending, creating it (mode 0640)
// when missing, and starts its writer. Close must be called to write out
// the records still buffered.
func Open(path string, opts ...Option) (*Log, error) {
	o := options{buffer: DefaultBuffer, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if path == "" {
		return nil, errors.New("usage: a path is required")
	}
	if o.buffer < 1 {
		return nil, fmt.Errorf("usage: a buffer of %d records: must be at least 1", o.buffer)
	}
	if o.wrap == nil {
		o.wrap = func(w io.Writer) io.Writer { return w }
	}
	f, torn, err := openFile(path)
	if err != nil {
		return nil, fmt.Errorf("usage: opening the usage log: %w", err)
	}
	l := &Log{
		path:   path,
		log:    o.log,
		now:    o.now,
		wrap:   o.wrap,
		ch:     make(chan Record, o.buffer),
		reopen: make(chan chan error),
		done:   make(chan struct{}),
	}
	w := l.wrap(f)
	s := &sink{f: f, w: w, bw: bufio.NewWriterSize(w, bufSize), line: make([]byte, 0, 512), torn: torn}
	go l.run(s)
	return l, nil
}

// openFile opens path for appending and says whether it ends in a
// partial line.
func openFile(path string) (f *os.File, torn bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if errors.Is(err, fs.ErrPermission) {
		// Writable but not readable: append without checking the end.
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		return f, false, err
	}
	if err != nil {
		return nil, false, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, err
	}
	if st.Size() > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size()-1); err == nil {
			torn = last[0] != '\n'
		}
	}
	return f, torn, nil
}

// Write queues r for the log and returns at once: it never waits for the
// disk. When the buffer is full, or the log is closed, r is dropped and
// counted in Stats.Dropped. A zero r.Time is stamped with the log's clock.
func (l *Log) Write(r Record) {
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	l.mu.RLock()
	if !l.closed {
		select {
		case l.ch <- r:
			l.mu.RUnlock()
			return
		default:
		}
	}
	closed := l.closed
	l.mu.RUnlock()
	l.drop(closed)
}

// drop counts a dropped record and warns at most once a minute.
func (l *Log) drop(closed bool) {
	n := l.dropped.Add(1)
	now := l.now().UnixNano()
	last := l.lastDropWarn.Load()
	if last != 0 && now-last < int64(warnEvery) {
		return
	}
	if !l.lastDropWarn.CompareAndSwap(last, now) {
		return
	}
	why := "buffer full: the disk is not keeping up"
	if closed {
		why = "log closed"
	}
	l.log.Warn("usage log: records dropped", "path", l.path, "reason", why, "dropped_total", n)
}

// Reopen makes the writer close the file and open the path again, between
// two lines: after logrotate (or an operator) renamed the file, lines go
// to a new file at the path. Records queued before Reopen was called are
// written to the old file first; records written after it returns land in
// the new one. When the path cannot be opened, the writer keeps the old
// file and Reopen says why.
func (l *Log) Reopen() error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	reply := make(chan error, 1)
	select {
	case l.reopen <- reply:
		return <-reply
	case <-l.done:
		return ErrClosed
	}
}

// Close stops taking records (later Writes count as dropped), writes out
// every record already queued, flushes and closes the file. Its error says
// the last lines could not be written or the file not closed (earlier
// losses are in Stats.WriteErrors). It is safe to call more than once;
// each call returns the first's result.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.ch)
		l.mu.Unlock()
	})
	<-l.done
	return l.closeErr
}

// Stats returns the log's counts so far.
func (l *Log) Stats() Stats {
	return Stats{
		Path:        l.path,
		Written:     l.written.Load(),
		Dropped:     l.dropped.Load(),
		WriteErrors: l.writeErrors.Load(),
	}
}

// run is the writer goroutine.
func (l *Log) run(s *sink) {
	defer close(l.done)
	for {
		select {
		case r, ok := <-l.ch:
			if !ok {
				l.closeErr = l.finish(s)
				return
			}
			l.put(s, r)
			if len(l.ch) == 0 {
				l.flush(s)
			}
		case reply := <-l.reopen:
			for n := len(l.ch); n > 0; n-- {
				r, ok := <-l.ch
				if !ok {
					break
				}
				l.put(s, r)
			}
			reply <- l.reopenFile(s)
		}
	}
}

// put encodes r into the buffer, flushing first when it would not fit, so
// that the file only ever receives whole lines from this process.
func (l *Log) put(s *sink, r Record) {
	s.line = s.line[:0]
	if s.torn {
		s.line = append(s.line, '\n')
		s.torn = false
	}
	s.line = r.appendJSON(s.line)
	s.line = append(s.line, '\n')
	if s.bw.Available() < len(s.line) && s.bw.Buffered() > 0 {
		l.flush(s)
	}
	s.pending++
	if _, err := s.bw.Write(s.line); err != nil {
		l.failed(s, err)
	}
}

// flush writes the buffer out and counts its records as written.
func (l *Log) flush(s *sink) {
	if s.bw.Buffered() == 0 && s.pending == 0 {
		return
	}
	if err := s.bw.Flush(); err != nil {
		l.failed(s, err)
		return
	}
	l.written.Add(s.pending)
	s.pending = 0
	s.flushErr = nil
}

// failed counts the buffered records as lost to a write error and starts
// a fresh buffer: bufio's error is sticky, and a disk that comes back must
// get the next lines.
func (l *Log) failed(s *sink, err error) {
	l.writeErrors.Add(s.pending)
	lost := s.pending
	s.pending = 0
	s.bw.Reset(s.w)
	s.torn = true
	s.flushErr = err
	if now := l.now(); s.lastWarn.IsZero() || now.Sub(s.lastWarn) >= warnEvery {
		s.lastWarn = now
		l.log.Warn("usage log: write failed, records lost", "path", l.path, "lost", lost,
			"write_errors_total", l.writeErrors.Load(), "err", err)
	}
}

// reopenFile switches to a new file at the path, keeping the old one
// when the path cannot be opened.
func (l *Log) reopenFile(s *sink) error {
	l.flush(s)
	f, torn, err := openFile(l.path)
	if err != nil {
		return fmt.Errorf("usage: reopening the usage log: %w", err)
	}
	old := s.f
	s.f, s.w, s.torn = f, l.wrap(f), torn
	s.bw.Reset(s.w)
	if err := old.Close(); err != nil {
		// Its lines were flushed already; nothing was lost.
		l.log.Warn("usage log: closing the previous file", "path", l.path, "err", err)
	}
	return nil
}

// finish writes out what is left and closes the file.
func (l *Log) finish(s *sink) error {
	l.flush(s)
	ferr := s.flushErr
	cerr := s.f.Close()
	if ferr != nil {
		return fmt.Errorf("usage: writing the usage log: %w", ferr)
	}
	if cerr != nil {
		return fmt.Errorf("usage: closing the usage log: %w", cerr)
	}
	return nil
}
