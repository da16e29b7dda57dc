package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// maxLineBytes bounds one input line: far above what the server accepts
// (a title of 1000 and a summary of 10000 characters), so an over-long
// item still reaches the server and comes back as its error entry.
const maxLineBytes = 1 << 20

// utf8BOM starts files saved by some spreadsheet programs.
var utf8BOM = []byte("\xef\xbb\xbf")

type format int

const (
	formatJSONL format = iota
	formatCSV
)

// formatOf decides a batch input's format: by the file's extension, or
// else by its first character ('{' is JSON lines, anything else CSV).
func formatOf(name string, head []byte) format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return formatCSV
	case ".jsonl", ".ndjson", ".json":
		return formatJSONL
	}
	head = bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if len(head) > 0 && head[0] == '{' {
		return formatJSONL
	}
	return formatCSV
}

// lineReader yields a batch input's items with the line each starts on;
// io.EOF at the end. Its errors name no file: items adds it.
type lineReader interface {
	next() (*pb.NewsItem, int, error)
}

func newLineReader(r io.Reader, f format) lineReader {
	if f == formatCSV {
		cr := csv.NewReader(r)
		cr.ReuseRecord = true
		return &csvReader{r: cr}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLineBytes)
	return &jsonlReader{sc: sc}
}

// jsonlReader reads one NewsItem in protojson per line; blank lines are
// skipped.
type jsonlReader struct {
	sc   *bufio.Scanner
	line int
}

func (j *jsonlReader) next() (*pb.NewsItem, int, error) {
	for j.sc.Scan() {
		j.line++
		b := bytes.TrimSpace(j.sc.Bytes())
		if j.line == 1 {
			b = bytes.TrimPrefix(b, utf8BOM)
		}
		if len(b) == 0 {
			continue
		}
		item := &pb.NewsItem{}
		if err := protojson.Unmarshal(b, item); err != nil {
			return nil, j.line, fmt.Errorf("not a NewsItem in JSON: %v", err)
		}
		return item, j.line, nil
	}
	err := j.sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		err = fmt.Errorf("line longer than %d bytes", maxLineBytes)
	}
	if err != nil {
		return nil, j.line + 1, err
	}
	return nil, j.line, io.EOF
}

// csvColumns are the columns a CSV input may have, by header name.
var csvColumns = []string{"id", "ticker", "title", "summary", "source", "url"}

// csvReader reads CSV with a header line naming its columns (any order,
// any case): id and title are required; ticker, summary, source and url
// may be there.
type csvReader struct {
	r    *csv.Reader
	cols map[string]int
}

func (c *csvReader) next() (*pb.NewsItem, int, error) {
	if c.cols == nil {
		if err := c.header(); err != nil {
			return nil, 1, err
		}
	}
	rec, err := c.r.Read()
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				return nil, pe.StartLine, fmt.Errorf("%d fields, the header has %d", len(rec), len(c.cols))
			}
			return nil, pe.Line, pe.Err
		}
		return nil, 0, err
	}
	line, _ := c.r.FieldPos(0)
	field := func(name string) string {
		if i, ok := c.cols[name]; ok {
			return rec[i]
		}
		return ""
	}
	return &pb.NewsItem{
		Id:      strings.TrimSpace(field("id")),
		Ticker:  strings.TrimSpace(field("ticker")),
		Title:   field("title"),
		Summary: field("summary"),
		Source:  field("source"),
		Url:     strings.TrimSpace(field("url")),
	}, line, nil
}

func (c *csvReader) header() error {
	rec, err := c.r.Read()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return fmt.Errorf("CSV header: %v", err)
	}
	cols := make(map[string]int, len(rec))
	for i, h := range rec {
		if i == 0 {
			h = strings.TrimPrefix(h, string(utf8BOM))
		}
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, k := range csvColumns {
			known = known || h == k
		}
		if !known {
			return fmt.Errorf("CSV header: unknown column %q (columns: id,ticker,title[,summary,source,url])", h)
		}
		if _, dup := cols[h]; dup {
			return fmt.Errorf("CSV header: column %q twice", h)
		}
		cols[h] = i
	}
	for _, need := range []string{"id", "title"} {
		if _, ok := cols[need]; !ok {
			return fmt.Errorf("CSV header: no %q column (columns: id,ticker,title[,summary,source,url])", need)
		}
	}
	c.cols = cols
	return nil
}

// items reads a batch input and checks what only the whole input shows:
// every item has an id, and no id comes twice (results are matched to
// items by id). What the server checks (title, lengths) is left to it: a
// bad item there is an error entry, not a stop.
type items struct {
	name string
	r    lineReader
	seen map[string]int // id -> line
}

func newItems(name string, r io.Reader, f format) *items {
	return &items{name: name, r: newLineReader(r, f), seen: make(map[string]int)}
}

// next returns the next item, io.EOF at the end, or an error naming
// file:line with exit status 2.
func (s *items) next() (*pb.NewsItem, error) {
	item, line, err := s.r.next()
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, badInput(s.name, line, err)
	}
	if item.GetId() == "" {
		return nil, badInput(s.name, line, errors.New("the item has no id (every item needs one, unique in the input)"))
	}
	if first, dup := s.seen[item.GetId()]; dup {
		return nil, badInput(s.name, line, fmt.Errorf("id %q again (first on line %d)", item.GetId(), first))
	}
	s.seen[item.GetId()] = line
	return item, nil
}

// sniff peeks at the start of br up to its first character that is not a
// byte-order mark or white space, and no further: a producer that writes
// one line at a time is not waited for beyond its first.
func sniff(br *bufio.Reader) []byte {
	for n := 1; ; n++ {
		head, err := br.Peek(n)
		partialBOM := len(head) < len(utf8BOM) && bytes.HasPrefix(utf8BOM, head)
		if err != nil || (!partialBOM && len(bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")) > 0) {
			return head
		}
	}
}

// input is a batch's opened input.
type input struct {
	items *items
	// total is the number of items, -1 when unknown (stdin).
	total int
	close func()
}

// openInput opens path, or stdin for "-". A file is read through once
// first: a bad line stops the command before anything is sent, and the
// total is known for the progress bar. Stdin is read as it streams.
func openInput(path string, stdin io.Reader) (*input, error) {
	if path == "-" {
		br := bufio.NewReader(stdin)
		return &input{items: newItems("stdin", br, formatOf("", sniff(br))), total: -1, close: func() {}}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	fmtOf := formatOf(path, head[:n])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, &exitError{code: exitUsage, err: err}
	}
	total := 0
	check := newItems(path, bufio.NewReader(f), fmtOf)
	for {
		_, err := check.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		total++
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, &exitError{code: exitUsage, err: err}
	}
	return &input{items: newItems(path, bufio.NewReader(f), fmtOf), total: total, close: func() { f.Close() }}, nil
}
