package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

func TestFormatOf(t *testing.T) {
	tests := []struct {
		name, head string
		want       format
	}{
		{"x.csv", `{"id":"1"}`, formatCSV}, // the extension decides
		{"x.CSV", "", formatCSV},
		{"x.jsonl", "id,title", formatJSONL},
		{"x.ndjson", "", formatJSONL},
		{"x.json", "", formatJSONL},
		{"x.txt", "  \n{\"id\":\"1\"}", formatJSONL},
		{"x", "\xef\xbb\xbf{\"id\":\"1\"}", formatJSONL},
		{"", "id,ticker,title", formatCSV},
		{"", "", formatCSV},
	}
	for _, tt := range tests {
		if got := formatOf(tt.name, []byte(tt.head)); got != tt.want {
			t.Errorf("formatOf(%q, %q) = %v, want %v", tt.name, tt.head, got, tt.want)
		}
	}
}

// readAll reads every item, or stops at the first error.
func readAll(t *testing.T, content string, f format) ([]*pb.NewsItem, error) {
	t.Helper()
	s := newItems("in", strings.NewReader(content), f)
	var out []*pb.NewsItem
	for {
		item, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
}

func TestReadCSV(t *testing.T) {
	content := "\xef\xbb\xbf Title ,ID,summary,Ticker\n" +
		"\"Acme, Inc. beats\",a1,\"two\nlines\", ACME \n" +
		"\n" +
		"Acme misses,a2,,\n"
	items, err := readAll(t, content, formatCSV)
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.NewsItem{
		{Id: "a1", Ticker: "ACME", Title: "Acme, Inc. beats", Summary: "two\nlines"},
		{Id: "a2", Title: "Acme misses"},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i := range want {
		if items[i].String() != want[i].String() {
			t.Errorf("item %d: %v, want %v", i, items[i], want[i])
		}
	}
	// The record after a quoted newline and a blank line is named by the
	// line it is on.
	_, err = readAll(t, content+"Acme again,a1,,\n", formatCSV)
	var ie *inputError
	if !errors.As(err, &ie) || ie.line != 6 || !strings.Contains(err.Error(), `id "a1" again (first on line 2)`) {
		t.Errorf("duplicate id: %v", err)
	}
}

func TestReadJSONLines(t *testing.T) {
	content := "\xef\xbb\xbf{\"id\":\"1\",\"title\":\"Acme beats\",\"published_at\":\"2026-03-02T09:30:00Z\"}\n" +
		"   \n" +
		"{\"id\":\"2\",\"ticker\":\"ACME\",\"title\":\"Acme misses\",\"url\":\"https://example.com/a\"}" // no final newline
	items, err := readAll(t, content, formatJSONL)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].GetPublishedAt().GetSeconds() == 0 || items[1].GetUrl() == "" {
		t.Errorf("items %v", items)
	}
	_, err = readAll(t, content+"\n"+strings.Repeat(" ", maxLineBytes+1)+"\n", formatJSONL)
	if err == nil || !strings.Contains(err.Error(), "in:4: line longer than") {
		t.Errorf("over-long line: %v", err)
	}
}

// FuzzItems: any input is read without a panic, and a bad one is an
// error naming a line of it, with exit status 2.
func FuzzItems(f *testing.F) {
	for _, seed := range []string{
		`{"id":"1","title":"Acme beats"}` + "\n" + `{"id":"2","title":"x","ticker":"A"}`,
		`{"id":"1"` + "\n",
		"id,ticker,title\n1,ACME,Acme beats\n2,ACME,\"quoted, \"\"twice\"\"\"\n",
		"id,title\n1,\"open\n",
		"title\nno id column\n",
		"\xef\xbb\xbfid,title\n1,x\n1,y\n",
		"",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, content string, csv bool) {
		fm := formatJSONL
		if csv {
			fm = formatCSV
		}
		lines := strings.Count(content, "\n") + 1
		s := newItems("in", strings.NewReader(content), fm)
		for range lines + 1 {
			item, err := s.next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var ie *inputError
				if !errors.As(err, &ie) || ie.line < 1 || ie.line > lines+1 || exitCode(err) != exitUsage {
					t.Fatalf("error %v (line %v) does not name a line of the input", err, ie)
				}
				return
			}
			if item.GetId() == "" {
				t.Fatalf("an item without an id: %v", item)
			}
		}
		t.Fatalf("more items than lines")
	})
}
