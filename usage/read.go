package usage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// maxLine bounds a line Read will parse. Real lines are a few hundred
// bytes; anything longer is not one of ours and is skipped as malformed
// without being held in memory.
const maxLine = 64 << 10

// ReadStats says what a read found.
type ReadStats struct {
	// Records counts the records handed to the callback.
	Records int
	// Malformed counts the complete lines that did not parse (or were
	// longer than any record); empty lines are not counted.
	Malformed int
	// Torn is set when the last line had no newline and did not parse:
	// the process was stopped in the middle of writing it.
	Torn bool
}

// Read calls fn with each record of a usage log, in file order. A line
// that does not parse is skipped and counted, not fatal: a log that a
// crash cut short, or that an operator edited, still gives back every
// good line. An error from fn stops the read and is returned as it is; an
// error reading r is returned wrapped, with the stats so far.
func Read(r io.Reader, fn func(Record) error) (ReadStats, error) {
	return read(r, time.Time{}, fn)
}

// ReadFile is Read over the file at path, skipping the records older than
// since (a zero since keeps them all): the cost totals rebuild only the
// current month. A file that does not exist holds no records, since Open
// creates it on the first start.
func ReadFile(path string, since time.Time, fn func(Record) error) (ReadStats, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ReadStats{}, nil
	}
	if err != nil {
		return ReadStats{}, fmt.Errorf("usage: opening the usage log to read: %w", err)
	}
	defer f.Close()
	return read(f, since, fn)
}

var timePrefix = []byte(`{"time":"`)

func read(r io.Reader, since time.Time, fn func(Record) error) (ReadStats, error) {
	var st ReadStats
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			st.Malformed++
			if err := skipLine(br); err != nil {
				if errors.Is(err, io.EOF) {
					return st, nil
				}
				return st, fmt.Errorf("usage: reading the usage log: %w", err)
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return st, fmt.Errorf("usage: reading the usage log: %w", err)
		}
		last := err != nil
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		body := bytes.TrimSpace(line)
		if len(body) > 0 && !olderThan(body, since) {
			rec, jerr := decode(body)
			if jerr != nil {
				if complete {
					st.Malformed++
				} else {
					st.Torn = true
				}
			} else if since.IsZero() || !rec.Time.Before(since) {
				st.Records++
				if ferr := fn(rec); ferr != nil {
					return st, ferr
				}
			}
		}
		if last {
			return st, nil
		}
	}
}

// olderThan says, from the time at the start of a line as Log writes it,
// whether the line's record is older than since, so that a month's rebuild
// does not decode every older line. Lines in any other shape are decoded.
func olderThan(line []byte, since time.Time) bool {
	if since.IsZero() || !bytes.HasPrefix(line, timePrefix) {
		return false
	}
	rest := line[len(timePrefix):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	return err == nil && t.Before(since)
}

// skipLine discards the rest of an overlong line.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}
