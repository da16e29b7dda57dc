package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/catalystbot/sentiment/gen/go/catalyst/sentiment/v1"
)

// headlines are judged bullish, bearish and neutral by the lexicon, and
// some are near the prefilter's threshold: a batch of them covers every
// label.
var headlines = []string{
	"Acme raises full-year guidance after record quarter",
	"Acme misses estimates and cuts guidance",
	"Acme will hold its annual general meeting on May 4",
	"Acme files for Chapter 11 bankruptcy after missing debt payment",
	"Acme soars after FDA approval of its cancer drug",
	"Acme, Inc. to present at investor conference",
	"Operating profit rose to EUR 5.2 mn from EUR 3.1 mn a year earlier",
	"Net sales decreased by 12% in the third quarter",
}

func headline(i int) string { return fmt.Sprintf("%s (item %d)", headlines[i%len(headlines)], i) }

// writeJSONL writes n items as JSON lines, ids "0" to n-1.
func writeJSONL(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		line, err := protojson.Marshal(&pb.NewsItem{Id: strconv.Itoa(i), Ticker: "ACME", Title: headline(i)})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return writeFile(t, "items.jsonl", b.String())
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkResults checks a batch's output line by line: every line is a
// ClassifyBatchResponse in JSON, every id of 0..n-1 comes exactly once,
// answers carry a valid label and their own id. It returns the labels
// counted.
func checkResults(t *testing.T, out string, n int) map[string]int {
	t.Helper()
	seen := make(map[string]int, n)
	labels := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %s", line, sc.Text())
		}
		var r pb.ClassifyBatchResponse
		if err := protojson.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v: %s", line, err, sc.Text())
		}
		if first, ok := seen[r.GetId()]; ok {
			t.Errorf("id %q on lines %d and %d", r.GetId(), first, line)
		}
		seen[r.GetId()] = line
		res := r.GetResult()
		if res == nil {
			t.Errorf("line %d: no answer: %s", line, sc.Text())
			continue
		}
		if res.GetId() != r.GetId() {
			t.Errorf("line %d: answer for %q under id %q", line, res.GetId(), r.GetId())
		}
		switch res.GetLabel() {
		case pb.Label_LABEL_BULLISH, pb.Label_LABEL_BEARISH, pb.Label_LABEL_NEUTRAL:
			labels[labelName(res.GetLabel())]++
		default:
			t.Errorf("line %d: label %v", line, res.GetLabel())
		}
	}
	if len(seen) != n || line != n {
		t.Errorf("%d lines with %d ids, want %d", line, len(seen), n)
	}
	for i := range n {
		if _, ok := seen[strconv.Itoa(i)]; !ok {
			t.Errorf("id %d not answered", i)
		}
	}
	return labels
}

var progressLine = regexp.MustCompile(`^progress (\d+)/1000 (\d+)% \d+\.\d items/s eta \d+s bullish=(\d+) bearish=(\d+) neutral=(\d+) errors=0$`)

// TestBatchJSONLinesPlainProgress: 1,000 items from a JSON-lines file over
// one stream; every id answered once; a plain progress line at every
// tenth (the clock moves 1 ms a reading, so no 2 s line comes between);
// the summary adds up to the answers written.
func TestBatchJSONLinesPlainProgress(t *testing.T) {
	addr := startServer(t, testConfig())
	file := writeJSONL(t, 1000)
	r := runCLI(t, invocation{now: newStepClock(time.Millisecond).now}, "batch", file, "--addr", addr, "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	labels := checkResults(t, r.stdout, 1000)
	if labels["bullish"] == 0 || labels["bearish"] == 0 || labels["neutral"] == 0 {
		t.Errorf("labels %v: the headlines should give all three", labels)
	}

	var progress []string
	var rest []string
	for l := range strings.Lines(r.stderr) {
		l = strings.TrimSuffix(l, "\n")
		if strings.HasPrefix(l, "progress ") {
			progress = append(progress, l)
		} else {
			rest = append(rest, l)
		}
	}
	if len(progress) != 10 {
		t.Fatalf("%d progress lines, want one per tenth:\n%s", len(progress), r.stderr)
	}
	for i, l := range progress {
		m := progressLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("progress line %q does not match %s", l, progressLine)
		}
		done, _ := strconv.Atoi(m[1])
		if want := (i + 1) * 100; done != want || m[2] != strconv.Itoa(want/10) {
			t.Errorf("progress line %d: %q, want %d done", i, l, want)
		}
		b, _ := strconv.Atoi(m[3])
		be, _ := strconv.Atoi(m[4])
		n, _ := strconv.Atoi(m[5])
		if b+be+n != done {
			t.Errorf("progress line %q: labels add up to %d", l, b+be+n)
		}
	}
	wantLast := fmt.Sprintf("bullish=%d bearish=%d neutral=%d errors=0", labels["bullish"], labels["bearish"], labels["neutral"])
	if !strings.HasSuffix(progress[9], wantLast) {
		t.Errorf("last progress line %q, want the output's counts %s", progress[9], wantLast)
	}
	summary := strings.Join(rest, "\n")
	for _, want := range []string{
		"1000 items in ",
		"1000 answered, 0 errors, 0 unanswered",
		fmt.Sprintf("labels: bullish=%d bearish=%d neutral=%d", labels["bullish"], labels["bearish"], labels["neutral"]),
		"tiers: lexicon=1000",
		"cache hits 0 (exact 0, near 0)",
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

// TestBatchCSVToFileWithJSONSummary: a CSV file (quoted commas, a summary
// column, columns in another order), results to -o FILE, and with --json
// the summary as one JSON object, the last line on stderr, whose counts
// add up.
func TestBatchCSVToFileWithJSONSummary(t *testing.T) {
	addr := startServer(t, testConfig())
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"title", "id", "ticker", "summary"})
	for i := range 1000 {
		w.Write([]string{headline(i), strconv.Itoa(i), "ACME", "The company said so, in a statement."})
	}
	w.Flush()
	file := writeFile(t, "items.csv", b.String())
	outFile := filepath.Join(t.TempDir(), "results.jsonl")

	r := runCLI(t, invocation{}, "--addr", addr, "--json", "batch", file, "-o", outFile)
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout with -o: %s", r.stdout)
	}
	out, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	labels := checkResults(t, string(out), 1000)

	// auto off a terminal with --json: no progress, only the summary.
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr has %d lines, want the summary only:\n%s", len(lines), r.stderr)
	}
	var s summary
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("summary %q: %v", lines[0], err)
	}
	if s.Total != 1000 || s.Sent != 1000 || s.Answered != 1000 || s.Errors != 0 || s.Unanswered != 0 {
		t.Errorf("summary %+v", s)
	}
	sum := 0
	for k, n := range s.Labels {
		sum += n
		if labels[k] != n {
			t.Errorf("summary says %s=%d, the output has %d", k, n, labels[k])
		}
	}
	if sum != 1000 || s.Tiers["lexicon"] != 1000 {
		t.Errorf("labels add up to %d, tiers %v", sum, s.Tiers)
	}
	if s.ElapsedSeconds <= 0 || s.ItemsPerSecond <= 0 {
		t.Errorf("elapsed %v, rate %v", s.ElapsedSeconds, s.ItemsPerSecond)
	}
}

// TestBatchProgressBarOnTerminal: with stderr on a pseudo-terminal and
// --progress left at auto, the bar redraws in place (carriage returns
// that do not end lines) and the summary follows.
func TestBatchProgressBarOnTerminal(t *testing.T) {
	addr := startServer(t, testConfig())
	file := writeJSONL(t, 1000)
	ptmx, tty := openPTY(t)
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	screen := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(ptmx) // ends with EIO once the tty is closed
		screen <- string(b)
	}()

	var stdout bytes.Buffer
	r := runCLI(t, invocation{env: map[string]string{"TERM": "xterm-256color"}, stdout: &stdout, stderr: tty},
		"batch", "--addr", addr, file)
	tty.Close()
	got := <-screen
	if r.code != 0 {
		t.Fatalf("exit status %d\nterminal: %q", r.code, got)
	}
	checkResults(t, stdout.String(), 1000)
	// The terminal turns "\n" into "\r\n"; a bare "\r" is the bar's.
	redraws := strings.Count(strings.ReplaceAll(got, "\r\n", "\n"), "\r")
	if redraws < 2 {
		t.Errorf("%d carriage returns: the bar did not redraw in place:\n%q", redraws, got)
	}
	for _, want := range []string{"█", "100%", "(1000/1000", "items/s", "bullish=", "errors=0", "1000 answered, 0 errors, 0 unanswered"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, got)
		}
	}
	if strings.Contains(got, "progress 100/1000") {
		t.Errorf("plain progress lines on a terminal:\n%q", got)
	}
}

// TestBatchFromStdin: "-" reads stdin as it streams; the total is unknown,
// so the progress line has a count and no ETA.
func TestBatchFromStdin(t *testing.T) {
	addr := startServer(t, testConfig())
	data, err := os.ReadFile(writeJSONL(t, 50))
	if err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, invocation{stdin: bytes.NewReader(data), now: newStepClock(time.Millisecond).now},
		"batch", "-", "--addr", addr, "--progress", "plain", "--concurrency", "4")
	if r.code != 0 {
		t.Fatalf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
	checkResults(t, r.stdout, 50)
	if !regexp.MustCompile(`(?m)^progress 50 \d+\.\d items/s bullish=\d+ bearish=\d+ neutral=\d+ errors=0$`).MatchString(r.stderr) {
		t.Errorf("no final progress line with the count:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "eta") {
		t.Errorf("an ETA without a total:\n%s", r.stderr)
	}
}

// TestBatchBadLine: a bad input line stops the command with status 2,
// naming file:line, before anything is sent.
func TestBatchBadLine(t *testing.T) {
	addr := closedAddr(t) // nothing may be sent: the file is checked first
	good := `{"id":"1","ticker":"ACME","title":"Acme beats estimates"}`
	tests := []struct {
		name, file, content, want string
	}{
		{"not JSON", "a.jsonl", good + "\n\n{\"id\":\"2\",\"title\":\n", "a.jsonl:3: not a NewsItem in JSON"},
		{"unknown field", "b.jsonl", good + "\n{\"id\":\"2\",\"headline\":\"x\"}\n", `b.jsonl:2: not a NewsItem in JSON`},
		{"no id", "c.jsonl", good + "\n{\"title\":\"Acme beats\"}\n", "c.jsonl:2: the item has no id"},
		{"id twice", "d.jsonl", good + "\n" + good + "\n", `d.jsonl:2: id "1" again (first on line 1)`},
		{"wrapped item", "e.jsonl", `{"item":{"id":"1","title":"x"}}` + "\n", `e.jsonl:1: not a NewsItem in JSON`},
		{"CSV field count", "f.csv", "id,ticker,title\n1,ACME,Acme beats\n2,ACME\n", "f.csv:3: 2 fields, the header has 3"},
		{"CSV no title", "g.csv", "id,ticker\n1,ACME\n", `g.csv:1: CSV header: no "title" column`},
		{"CSV unknown column", "h.csv", "id,ticker,headline\n1,ACME,x\n", `h.csv:1: CSV header: unknown column "headline"`},
		{"CSV quote", "i.csv", "id,title\n1,\"Acme beats\n", "i.csv:2:"},
		{"CSV by content", "items.txt", "id,title\n1,Acme beats\n,Acme misses\n", "items.txt:3: the item has no id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.content)
			r := runCLI(t, invocation{}, "batch", "--addr", addr, path)
			if r.code != exitUsage {
				t.Errorf("exit status %d, want 2\nstderr: %s", r.code, r.stderr)
			}
			want := filepath.Join(filepath.Dir(path), tt.want)
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
			if strings.Contains(r.stderr, "cannot reach") || r.stdout != "" {
				t.Errorf("something was sent: stdout %q, stderr %q", r.stdout, r.stderr)
			}
		})
	}
}

// TestBatchBadLineOnStdin: on stdin the items before a bad line are
// already sent; they are answered and written, then the command stops
// with status 2 naming stdin:line.
func TestBatchBadLineOnStdin(t *testing.T) {
	addr := startServer(t, testConfig())
	var in strings.Builder
	for i := range 5 {
		fmt.Fprintf(&in, `{"id":"%d","title":%q}`+"\n", i, headline(i))
	}
	in.WriteString("{oops}\n")
	in.WriteString(`{"id":"9","title":"never sent"}` + "\n")
	r := runCLI(t, invocation{stdin: strings.NewReader(in.String())}, "batch", "-", "--addr", addr, "--progress", "none")
	if r.code != exitUsage {
		t.Errorf("exit status %d, want 2\nstderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "stdin:6: not a NewsItem in JSON") {
		t.Errorf("stderr does not name stdin:6:\n%s", r.stderr)
	}
	checkResults(t, r.stdout, 5)
	if !strings.Contains(r.stderr, "5 items in") {
		t.Errorf("no summary of the 5 sent:\n%s", r.stderr)
	}
}

// TestBatchRejectedItem: an item the server rejects (a title over 1000
// characters) is an error line in the output, counted in the summary, and
// makes the exit status 1; the others are answered.
func TestBatchRejectedItem(t *testing.T) {
	addr := startServer(t, testConfig())
	long := strings.Repeat("x", 1001)
	content := fmt.Sprintf("{\"id\":\"a\",\"title\":%q}\n{\"id\":\"long\",\"title\":%q}\n{\"id\":\"b\",\"title\":%q}\n",
		headlines[0], long, headlines[1])
	file := writeFile(t, "items.jsonl", content)
	r := runCLI(t, invocation{}, "batch", "--addr", addr, "--progress", "plain", file)
	if r.code != exitFailed {
		t.Errorf("exit status %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	var answered, rejected int
	for l := range strings.Lines(r.stdout) {
		var resp pb.ClassifyBatchResponse
		if err := protojson.Unmarshal([]byte(l), &resp); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if e := resp.GetError(); e != nil {
			rejected++
			if resp.GetId() != "long" || codes.Code(e.GetCode()) != codes.InvalidArgument || e.GetField() != "item.title" {
				t.Errorf("error entry %v", &resp)
			}
		} else {
			answered++
		}
	}
	if answered != 2 || rejected != 1 {
		t.Errorf("%d answered, %d rejected; want 2 and 1:\n%s", answered, rejected, r.stdout)
	}
	for _, want := range []string{"errors=1", "2 answered, 1 errors, 0 unanswered", "errors: InvalidArgument=1"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestBatchEmptyInput: nothing to send is a success with a zero summary.
func TestBatchEmptyInput(t *testing.T) {
	addr := startServer(t, testConfig())
	file := writeFile(t, "empty.jsonl", "\n\n")
	r := runCLI(t, invocation{}, "batch", "--addr", addr, "--progress", "bar", file)
	if r.code != 0 || !strings.Contains(r.stderr, "0 items in") {
		t.Errorf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
}

// TestBatchOutputNotWritable: an output file that cannot be created is a
// usage error, before anything is sent.
func TestBatchOutputNotWritable(t *testing.T) {
	file := writeJSONL(t, 1)
	out := filepath.Join(t.TempDir(), "no-such-dir", "out.jsonl")
	r := runCLI(t, invocation{}, "batch", "--addr", closedAddr(t), "-o", out, file)
	if r.code != exitUsage || !strings.Contains(r.stderr, out) {
		t.Errorf("exit status %d\nstderr: %s", r.code, r.stderr)
	}
}

func TestPendingSetKeepsSendOrder(t *testing.T) {
	p := &pendingSet{ids: map[string]int{}, items: map[string]*pb.NewsItem{}}
	for _, id := range []string{"c", "a", "b", "d"} {
		p.add(&pb.NewsItem{Id: id, Title: "title " + id})
	}
	if !p.done("a") || p.done("a") || p.done("unknown") {
		t.Error("done: want true once for a sent item, false after and for an unknown one")
	}
	if got := strings.Join(p.left(), ","); got != "c,b,d" || p.sent != 4 {
		t.Errorf("left %s, sent %d; want c,b,d and 4", got, p.sent)
	}
	if items := p.unanswered(); len(items) != 3 || items[1].GetTitle() != "title b" {
		t.Errorf("unanswered %v, want c, b, d's items", items)
	}
}

// TestBatchInterrupted: Ctrl-C (the context's end) while stdin is still
// open ends the batch at once, though stdin has not ended: status 1, the
// answers so far written, the summary says it was interrupted. Stdin's
// first item is read without waiting for more input.
func TestBatchInterrupted(t *testing.T) {
	addr := startServer(t, testConfig())
	stdin, feed := io.Pipe()
	defer feed.Close() // lets the sender, still reading stdin, end
	go func() {
		for i := range 3 {
			fmt.Fprintf(feed, `{"id":"%d","title":%q}`+"\n", i, headline(i))
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lineCanceller{after: 3, cancel: cancel}
	r := runCLI(t, invocation{ctx: ctx, stdin: stdin, stdout: out}, "batch", "-", "--addr", addr, "--progress", "none")
	if r.code != exitFailed {
		t.Errorf("exit status %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	checkResults(t, out.String(), 3)
	for _, want := range []string{"batch: interrupted", "3 items in", "3 answered, 0 errors, 0 unanswered", "the stream ended early"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// lineCanceller cancels a context once it has been written `after` lines.
type lineCanceller struct {
	mu     sync.Mutex
	b      bytes.Buffer
	after  int
	cancel context.CancelFunc
}

func (w *lineCanceller) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Count(w.b.String(), "\n") >= w.after {
		w.cancel()
	}
	return n, err
}

func (w *lineCanceller) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
