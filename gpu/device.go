package gpu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Device is one card's reading at one moment.
//
// VRAM figures are device-wide: they include every process on the card, the
// desktop's too. Attribute Ollama's share with its /api/ps size_vram.
type Device struct {
	// Index is the card's position as its source numbers it: the GPU index
	// for rocm-smi, amd-smi and nvidia-smi; for sysfs, the position among
	// the amdgpu cards in PCI-address order (never the cardN number, which
	// changes across boots).
	Index int
	// Name is the product name when the source knows it, otherwise a
	// generic name with the PCI ids ("AMD GPU 1002:73bf").
	Name string
	// Vendor is "amd" or "nvidia".
	Vendor string
	// PCIBusID is the PCI address in sysfs form ("0000:03:00.0": lower
	// case, a domain of at least four digits), so that readings from
	// different sources can be matched. Empty when the source does not say.
	PCIBusID string
	// VRAMTotal, VRAMUsed and VRAMFree are bytes. VRAMFree is the source's
	// own free figure where it has one (nvidia-smi and amd-smi: it can be
	// less than total minus used, the driver reserving some), otherwise
	// total minus used.
	//
	// For an Integrated device read from sysfs they cover the VRAM carve-out
	// plus GTT (system memory mapped for the GPU), which is where an APU
	// keeps a model; see Integrated.
	VRAMTotal, VRAMUsed, VRAMFree uint64
	// BusyPercent is GPU load, 0-100; nil when the source cannot tell.
	BusyPercent *float64
	// TemperatureC is the edge temperature in degrees Celsius (another
	// sensor when the card has no edge sensor); nil when unknown.
	TemperatureC *float64
	// Integrated marks an APU that shares system memory: its "VRAM" is a
	// small carve-out (commonly 512 MiB) and the rest of what it uses is
	// GTT. Told by a VRAM total under 1 GiB, as Ollama does. The policy
	// should not read a full carve-out as pressure on a discrete card.
	Integrated bool
	// Source says where the figures came from, e.g.
	// "sysfs:/sys/class/drm/card1/device" or "nvidia-smi".
	Source string
}

// UsedFraction is VRAMUsed/VRAMTotal, or 0 for a device with no total.
func (d Device) UsedFraction() float64 {
	if d.VRAMTotal == 0 {
		return 0
	}
	return float64(d.VRAMUsed) / float64(d.VRAMTotal)
}

// Reader reads every GPU its source can see.
//
// Read returns one Device per card it could read. When some cards read and
// others fail (a GPU in reset, a tool printing N/A), it returns the readable
// ones together with an error that names the others (CardError values,
// joined); callers treat the cards in the error as unknown, never as empty.
// The error can also name a card that is returned, when a secondary file
// failed (gpu_busy_percent answering EPERM while the GPU is in reset): its
// VRAM figures are good, the failed field is nil, and the failure itself
// is a health signal. A file that does not exist is not an error, only nil.
// When nothing could be read it returns no devices and an error that says
// why: ErrNotInstalled for a missing tool, ErrNoDevice when the source sees
// no card of its kind.
type Reader interface {
	// Name is the reader's kind as configuration spells it ("sysfs",
	// "rocm-smi", "amd-smi", "nvidia-smi", "auto").
	Name() string
	Read(ctx context.Context) ([]Device, error)
}

// Runner runs a command and returns its standard output. A command that
// exits non-zero returns its output so far and an error (for ExecRunner an
// *exec.ExitError carrying the start of standard error). Tests substitute
// their own; nil means ExecRunner.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Errors that callers branch on.
var (
	// ErrNotInstalled: the command-line tool a reader needs is not on this
	// machine.
	ErrNotInstalled = errors.New("not installed")
	// ErrNoDevice: the source works but sees no GPU it can report.
	ErrNoDevice = errors.New("no GPU found")
)

// CardError is the failure to read one card; a reader joins one per card
// that failed.
type CardError struct {
	// Card names the card as the source does ("card1", "GPU 0").
	Card string
	// PCIBusID is the card's PCI address when known.
	PCIBusID string
	Err      error
}

func (e *CardError) Error() string {
	if e.PCIBusID != "" {
		return fmt.Sprintf("%s (%s): %v", e.Card, e.PCIBusID, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Card, e.Err)
}

func (e *CardError) Unwrap() error { return e.Err }

// Limits of the command runner.
const (
	// maxToolOutput bounds what ExecRunner keeps of a tool's standard
	// output. A 16-GPU node prints a few tens of KiB; anything past this is
	// not an output we can parse.
	maxToolOutput = 1 << 20
	// maxToolStderr bounds the standard error kept for the error message.
	maxToolStderr = 4 << 10
	// toolWaitDelay is how long ExecRunner waits for the tool's output
	// pipes to close after the context ends or the tool exits, so that a
	// grandchild holding them open cannot hang a poll.
	toolWaitDelay = 2 * time.Second
)

// ExecRunner runs name with args through os/exec under ctx, returning its
// standard output (at most 1 MiB). A tool that is not installed gives an
// error matching exec.ErrNotFound or fs.ErrNotExist; one that exits non-zero
// gives its output and an *exec.ExitError whose Stderr holds the start of
// what it printed there.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr cappedBuffer
	stdout.max, stderr.max = maxToolOutput, maxToolStderr
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = toolWaitDelay
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		ee.Stderr = stderr.buf.Bytes()
	}
	if err == nil && stdout.over {
		err = fmt.Errorf("output longer than %d bytes", maxToolOutput)
	}
	return stdout.buf.Bytes(), err
}

// cappedBuffer keeps the first max bytes written to it and drops the rest,
// so a runaway tool cannot grow memory without bound. It never fails a
// write: a failed write would kill the tool with SIGPIPE and hide its exit
// status.
type cappedBuffer struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.over {
		return len(p), nil
	}
	if room := b.max - b.buf.Len(); room < len(p) {
		b.over = true
		b.buf.Write(p[:max(room, 0)])
		b.dropPartialRune()
		return len(p), nil
	}
	return b.buf.Write(p)
}

// dropPartialRune removes a rune the cap cut in two from the end of what
// was kept: its first bytes are no use without the rest, and would show as
// U+FFFD in the message.
func (b *cappedBuffer) dropPartialRune() {
	kept := b.buf.Bytes()
	for i := len(kept) - 1; i >= 0 && i >= len(kept)-utf8.UTFMax; i-- {
		if utf8.RuneStart(kept[i]) {
			if !utf8.FullRune(kept[i:]) {
				b.buf.Truncate(i)
			}
			return
		}
	}
}

// runTool runs a tool through run and turns its failures into errors that
// say what happened: ErrNotInstalled for a missing binary, the exit status
// and the tool's first line of complaint otherwise. The output is returned
// even with an error, for tools that print usable JSON and still exit
// non-zero.
func runTool(ctx context.Context, run Runner, path string, args ...string) ([]byte, error) {
	if run == nil {
		run = ExecRunner
	}
	out, err := run(ctx, path, args...)
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		return out, fmt.Errorf("running %s: %w", path, ctx.Err())
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		if !strings.ContainsRune(path, '/') {
			return nil, fmt.Errorf("%w (no %s in $PATH)", ErrNotInstalled, path)
		}
		return nil, fmt.Errorf("%w (no %s)", ErrNotInstalled, path)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// The reader's name prefixes the message; a path is worth repeating
		// only when it is not the bare name.
		who := ""
		if strings.ContainsRune(path, '/') {
			who = path + " "
		}
		msg := firstLine(ee.Stderr)
		if msg == "" {
			// nvidia-smi prints its complaints on standard output.
			msg = firstLine(out)
		}
		if msg != "" {
			return out, fmt.Errorf("%sexited with status %d: %s", who, ee.ExitCode(), msg)
		}
		return out, fmt.Errorf("%sexited with status %d", who, ee.ExitCode())
	}
	return out, fmt.Errorf("running %s: %w", path, err)
}

// firstLine returns the first non-blank line of b, trimmed and clipped,
// for error messages.
func firstLine(b []byte) string {
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return clip(line, maxLine)
		}
	}
	return ""
}

// normalizePCI writes a PCI address in sysfs form: lower case, a domain of
// at least four digits. nvidia-smi prints "00000000:01:00.0"; sysfs and
// the AMD tools print "0000:01:00.0". Anything that does not look like an
// address is returned trimmed and lower-cased.
func normalizePCI(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	domain, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.Contains(rest, ":") {
		return s
	}
	// sysfs prints the domain with %04x: drop leading zeros down to four.
	for len(domain) > 4 && domain[0] == '0' {
		domain = domain[1:]
	}
	return domain + ":" + rest
}

// vramFree is total minus used, or 0 when used exceeds total (a reading taken
// while the two files changed under us).
func vramFree(total, used uint64) uint64 {
	if used > total {
		return 0
	}
	return total - used
}

const mib = 1 << 20

// mibToBytes converts a MiB figure from a tool into bytes, refusing values
// that are negative, not finite, or too large for a uint64.
func mibToBytes(v float64) (uint64, error) {
	if !(v >= 0) || v > float64(^uint64(0)/mib) {
		return 0, fmt.Errorf("memory figure %v MiB out of range", v)
	}
	return uint64(v * mib), nil
}

// parsePercent parses a percentage, allowing a trailing "%"; out-of-range
// or unparsable values give nil, as does "N/A".
func parsePercent(s string) *float64 {
	v, ok := parseMetric(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if !ok || v < 0 || v > 100 {
		return nil
	}
	return &v
}

// parseTemperature parses degrees Celsius; implausible values (a sensor
// reporting -273 or 65535) give nil.
func parseTemperature(s string) *float64 {
	v, ok := parseMetric(s)
	if !ok || v < -50 || v > 200 {
		return nil
	}
	return &v
}

// parseMetric parses a decimal figure, rejecting the placeholders tools
// print for unknown values ("N/A", "[N/A]", "[Not Supported]") and
// non-finite numbers.
func parseMetric(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != v || v > 1e300 || v < -1e300 {
		return 0, false
	}
	return v, true
}

// joinErrors is errors.Join on one line: the messages separated by "; ",
// so a reading's error stays one log line. Nil errors are dropped; no
// errors at all is nil.
func joinErrors(errs ...error) error {
	var kept multiError
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return kept
}

type multiError []error

func (m multiError) Error() string {
	msgs := make([]string, len(m))
	for i, err := range m {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (m multiError) Unwrap() []error { return m }
