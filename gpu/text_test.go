package gpu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/catalystbot/sentiment/ollama"
	"github.com/catalystbot/sentiment/upstream"
)

// Text from outside reaches Status, and Status becomes a protobuf message
// whose strings must be valid UTF-8. These tests put multi-byte runes
// across every cut and invalid bytes everywhere text comes in.

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "ok", 10, "ok"},
		{"exactly n", "abcde", 5, "abcde"},
		{"ascii cut", "abcdef", 3, "abc..."},
		{"two-byte rune across the cut", "abé", 3, "ab..."},
		{"two-byte rune ending at the cut", "abé!", 4, "abé..."},
		{"three-byte rune across the cut", "a€b", 2, "a..."},
		{"four-byte rune across the cut", "a😀b", 4, "a..."},
		{"Latin-1 byte", "r\xe9sum\xe9", 20, "r\uFFFDsum\uFFFD"},
		{"Latin-1 byte at the cut", "abc\xe9def", 4, "abc..."},
		{"invalid run is one replacement", "a\xff\xfe\xfdb", 20, "a\uFFFDb"},
		{"cut at zero", "é", 0, "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clip(tc.in, tc.n)
			if got != tc.want || !utf8.ValidString(got) {
				t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestOneLineAndFirstLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxDetail-1) + "é and more"
	if got := oneLine("a\n\t b  " + long); !utf8.ValidString(got) || !strings.HasSuffix(got, "x...") || strings.ContainsAny(got, "\n\t") {
		t.Errorf("oneLine cut %q", got[len(got)-10:])
	}
	line := strings.Repeat("x", maxLine-1) + "é and more"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"rune across the cut", "\n  " + line + "\nsecond", strings.Repeat("x", maxLine-1) + "..."},
		{"Latin-1", "caf\xe9 cr\xe8me\n", "caf\uFFFD cr\uFFFDme"},
		{"blank", " \n\t\n", ""},
	} {
		if got := firstLine([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: firstLine = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestCappedBufferKeepsWholeRunes: the cap never keeps the first bytes of
// a rune whose rest it drops, whether the cut falls inside one write or
// the rune was split across two.
func TestCappedBufferKeepsWholeRunes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"fits", []string{"abcé"}, "abcé"},
		{"cut inside a rune", []string{"abcdé"}, "abcd"},
		{"rune split across writes", []string{"abcd\xc3", "\xa9 and more"}, "abcd"},
		{"cut after a whole rune", []string{"abcé", "xyz"}, "abcé"},
		{"four-byte rune", []string{"ab😀"}, "ab"},
		{"Latin-1 kept as is", []string{"ab\xe9cdef"}, "ab\xe9cd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cappedBuffer{max: 5}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v; want all of it taken", w, n, err)
				}
			}
			if got := b.buf.String(); got != tc.want {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

// TestToolTextIsValid runs fake tools that print Latin-1 and a rune
// across the cut of their complaint, through the real exec path.
func TestToolTextIsValid(t *testing.T) {
	t.Parallel()
	_, err := NewNvidiaSMI(testdata(t, "bin", "nvidia-smi-garbled"), nil).Read(t.Context())
	want := " exited with status 3: " + strings.Repeat("x", maxLine-1) + "..."
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("error %q, want it to end with %q", err, want)
	}
	ds, err := NewNvidiaSMI(testdata(t, "bin", "nvidia-smi-latin1"), nil).Read(t.Context())
	if err != nil || len(ds) != 1 || ds[0].Name != "NVIDIA GeForce RTX 3090 \uFFFDdition sp\uFFFDciale" {
		t.Errorf("Read = %s, %v; want the name with U+FFFD for the Latin-1 bytes", fmtDevices(ds), err)
	}
	err = shellCommand(t.Context(), `printf 'unit \351chou\303\251e\n' >&2; exit 4`)
	if err == nil || !utf8.ValidString(err.Error()) || !strings.HasSuffix(err.Error(), "unit \uFFFDchouée") {
		t.Errorf("restart command error %q", err)
	}
}

// TestSysfsTextIsValid: a sysfs tree under a path with invalid bytes, a
// product name and a driver in Latin-1.
func TestSysfsTextIsValid(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "sys\xff")
	writeTree(t, root, merge(
		amdCard("card0", "0000:03:00.0", 16<<30, 4<<30, map[string]string{"product_name": "Radeon RX 6800 \xe9dition\n"}),
		amdCard("card1", "0000:0b:00.0", 16<<30, 4<<30, map[string]string{"uevent": "DRIVER=vfio-pci\xe9\n", "vendor": "0x1002\xff\n"}),
	))
	ds, err := NewSysfs(root).Read(t.Context())
	if err != nil || len(ds) != 1 {
		t.Fatalf("Read = %s, %v", fmtDevices(ds), err)
	}
	if ds[0].Name != "Radeon RX 6800 \uFFFDdition" {
		t.Errorf("name %q", ds[0].Name)
	}
	checkText(t, "device", ds[0])

	// Only the odd card: the error names its driver and vendor.
	writeTree(t, root, map[string]string{"class/drm/card0/device/driver": "-> ../../drivers/n\xe9vidia"})
	_, err = NewSysfs(root).Read(t.Context())
	if err == nil || !errors.Is(err, ErrNoDevice) {
		t.Fatalf("error %v, want ErrNoDevice", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "driver n\uFFFDvidia") || !strings.Contains(msg, "driver vfio-pci\uFFFD (vendor 0x1002\uFFFD)") {
		t.Errorf("error %q", msg)
	}
}

// checkText fails t for every string in v (struct fields, slices, nested)
// that is not valid UTF-8.
func checkText(t *testing.T, path string, v any) {
	t.Helper()
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			if !utf8.ValidString(v.String()) {
				t.Errorf("%s = %q: not valid UTF-8", path, v.String())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
			}
		case reflect.Pointer:
			if !v.IsNil() {
				walk(path, v.Elem())
			}
		}
	}
	walk(path, reflect.ValueOf(v))
}

// garbledReader reports one card whose every text field is invalid UTF-8,
// with an error that is too.
type garbledReader struct{}

func (garbledReader) Name() string { return "garbled\xff" }

func (garbledReader) Read(context.Context) ([]Device, error) {
	return []Device{{
		Name: "Radeon \xe9dition", Vendor: "amd\xff", PCIBusID: "0000:03:00.0\xfe",
		Source: "tool\xe9", VRAMTotal: 16 << 30, VRAMUsed: 4 << 30,
	}}, &CardError{Card: "card\xe91", Err: errors.New(strings.Repeat("é", maxErrText))}
}

// garbledController fails with invalid UTF-8 and runes across every cut.
type garbledController struct {
	mu      sync.Mutex
	warmErr error
}

func (c *garbledController) failWarm(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.warmErr = err
}

func (*garbledController) Model() string { return "mistral\xe9" }
func (c *garbledController) Warm(context.Context) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Second, c.warmErr
}
func (*garbledController) Unload(context.Context) error { return errors.New("unload \xe9chou\xe9") }
func (*garbledController) Loaded(context.Context) (ollama.LoadedModel, bool, error) {
	return ollama.LoadedModel{}, false, errors.New("api/ps: " + strings.Repeat("€", maxErrText) + "\xff")
}

// TestStatusTextIsValid drives a manager with a reader, a model server and
// reports that all speak garbled text, and checks every string of Status
// at each step: as GPUStatus would marshal it.
func TestStatusTextIsValid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctl := &garbledController{}
		m, err := NewManager(ManagerConfig{
			Reader:        garbledReader{},
			Controller:    ctl,
			Queue:         &fakeQueue{},
			MaxConcurrent: 2,
			Policy:        testPolicy(),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		go m.Run(t.Context())
		synctest.Wait()
		st := m.Status()
		checkText(t, "open", st)
		if !st.Admitting || st.Reader != "garbled\uFFFD" {
			t.Fatalf("after the warm-up: admitting %v (%q), reader %q", st.Admitting, st.GateReason, st.Reader)
		}

		// The crash report closes the gate; the cleanup that follows
		// unloads, finds the memory back, and fails to warm the model.
		ctl.failWarm(errors.New("http 500: " + strings.Repeat("é", maxDetail) + "\xe9"))
		detail := strings.Repeat("x", maxDetail-1) + "é\xff\nllama runner process has terminated"
		m.Report(upstream.SignalCrash, detail)
		checkText(t, "reported", m.Status())
		synctest.Wait()
		st = m.Status()
		checkText(t, "warm-up failed", st)
		if !strings.HasSuffix(st.LastCleanupReason, strings.Repeat("x", maxDetail-1)+"...") {
			t.Errorf("cleanup reason %q: want the detail cut before the rune", st.LastCleanupReason)
		}
		if st.Admitting || !strings.Contains(st.GateReason, "warm-up failed") || st.Model.Error == "" {
			t.Errorf("after a failed warm-up: %+v", st)
		}
	})
}

// TestStatusTextFromTools: the manager's status from real tool runs (not
// in a bubble: the tools are real processes).
func TestStatusTextFromTools(t *testing.T) {
	t.Parallel()
	for _, script := range []string{"nvidia-smi-garbled", "nvidia-smi-latin1"} {
		m, err := NewManager(ManagerConfig{Reader: NewNvidiaSMI(testdata(t, "bin", script), nil), Policy: testPolicy()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.poll(t.Context())
		st := m.Status()
		checkText(t, script, st)
		if st.ReaderError == "" && len(st.Devices) == 0 {
			t.Errorf("%s: no reading and no error: %+v", script, st)
		}
	}
}

// TestStatusReader: Status names the reader that found the cards, "auto"
// never; "none", with the reason, when no reader works.
func TestStatusReader(t *testing.T) {
	t.Parallel()
	rx6800 := testdata(t, "sysfs", "rx6800")
	nvidiaOnly := testdata(t, "sysfs", "nvidia-only")
	// A GPU in reset: the card is there, its counter does not read.
	inReset := t.TempDir()
	writeTree(t, inReset, amdCard("card0", "0000:03:00.0", 16<<30, 4<<30, map[string]string{"mem_info_vram_used": "<dir>"}))
	type reading struct {
		root    string            // sysfs root for this poll
		tools   map[string]string // tool -> script
		kind    string
		errHas  string // in ReaderError; "" for none
		devices int
	}
	for _, tc := range []struct {
		name     string
		kind     string
		readings []reading
	}{
		{"auto finds sysfs", KindAuto, []reading{{root: rx6800, kind: KindSysfs, devices: 1}}},
		{"auto finds nvidia-smi", KindAuto, []reading{{root: nvidiaOnly, tools: map[string]string{"nvidia-smi": "nvidia-smi-one"}, kind: KindNvidiaSMI, devices: 1}}},
		{"auto finds rocm-smi", KindAuto, []reading{{root: nvidiaOnly, tools: map[string]string{"rocm-smi": "rocm-smi-rx6800"}, kind: KindROCmSMI, devices: 1}}},
		{"auto finds nothing", KindAuto, []reading{{root: nvidiaOnly, kind: KindNone,
			errHas: "(card0: driver nvidia (vendor 0x10de), not amdgpu); rocm-smi: not installed"}}},
		{"a failing tool works not", KindNvidiaSMI, []reading{{tools: map[string]string{"nvidia-smi": "nvidia-smi-fail"}, kind: KindNone,
			errHas: "NVIDIA-SMI has failed"}}},
		{"the reader that answered last", KindAuto, []reading{
			{root: rx6800, tools: map[string]string{"nvidia-smi": "nvidia-smi-one"}, kind: KindSysfs, devices: 1},
			{root: nvidiaOnly, tools: map[string]string{"nvidia-smi": "nvidia-smi-one"}, kind: KindNvidiaSMI, devices: 1},
			{root: nvidiaOnly, kind: KindNone, errHas: "nvidia-smi: not installed"},
		}},
		{"a card that does not read keeps its reader", KindAuto, []reading{
			{root: rx6800, kind: KindSysfs, devices: 1},
			{root: inReset, kind: KindSysfs, errHas: "mem_info_vram_used: is a directory"},
			{root: nvidiaOnly, kind: KindNone, errHas: "sysfs: no amdgpu card"},
		}},
		{"a card that never read", KindSysfs, []reading{{root: inReset, kind: KindNone, errHas: "is a directory"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var root string
			var tools map[string]string
			sysRoot := t.TempDir()
			run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
				script, ok := tools[filepath.Base(name)]
				if !ok {
					return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
				}
				return ExecRunner(ctx, testdata(t, "bin", script), args...)
			}
			r, err := Select(tc.kind, sysRoot, run)
			if err != nil {
				t.Fatal(err)
			}
			// The sysfs reader reads sysRoot, a link moved from tree to tree.
			link := filepath.Join(sysRoot, "class")
			m, err := NewManager(ManagerConfig{Reader: r, Policy: testPolicy()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st := m.Status(); st.Reader != KindNone || st.ReaderError != "no reading yet" {
				t.Errorf("before a reading: %q, %q", st.Reader, st.ReaderError)
			}
			for i, rd := range tc.readings {
				root, tools = rd.root, rd.tools
				relink(t, link, root)
				m.poll(t.Context())
				st := m.Status()
				if st.Reader != rd.kind || len(st.Devices) != rd.devices ||
					(rd.errHas == "") != (st.ReaderError == "") || !strings.Contains(st.ReaderError, rd.errHas) {
					t.Errorf("reading %d: reader %q, %d devices, error %q; want %q, %d, an error with %q",
						i, st.Reader, len(st.Devices), st.ReaderError, rd.kind, rd.devices, rd.errHas)
				}
			}
		})
	}
}

// relink points link at root's class directory; root "" removes it.
func relink(t *testing.T, link, root string) {
	t.Helper()
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if root == "" {
		return
	}
	if err := os.Symlink(filepath.Join(root, "class"), link); err != nil {
		t.Fatal(err)
	}
}
