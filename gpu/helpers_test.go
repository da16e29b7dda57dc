package gpu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fp is a *float64 for expected Devices.
func fp(v float64) *float64 { return &v }

// testdata returns the absolute path of a file under testdata/.
func testdata(t *testing.T, elem ...string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(append([]string{"testdata"}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// scripts is a Runner that runs the fake tool scripts named in m (tool
// name -> script under testdata/bin) through ExecRunner, the real exec
// path, and answers like a missing binary for every other tool. Each call
// is counted in calls, when not nil.
func scripts(t *testing.T, m map[string]string, calls map[string]int) Runner {
	t.Helper()
	paths := make(map[string]string, len(m))
	for tool, script := range m {
		paths[tool] = testdata(t, "bin", script)
	}
	return func(ctx context.Context, name string, args ...string) ([]byte, error) {
		tool := filepath.Base(name)
		if calls != nil {
			calls[tool]++
		}
		p, ok := paths[tool]
		if !ok {
			return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
		}
		return ExecRunner(ctx, p, args...)
	}
}

// checkDevices compares devices field by field, pointers by value.
func checkDevices(t *testing.T, got, want []Device) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d devices, want %d:\n got %s\nwant %s", len(got), len(want), fmtDevices(got), fmtDevices(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("device %d:\n got %s\nwant %s", i, fmtDevice(got[i]), fmtDevice(want[i]))
		}
	}
}

func fmtDevices(ds []Device) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmtDevice(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func fmtDevice(d Device) string {
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{Index:%d Name:%q Vendor:%s PCI:%s Total:%d Used:%d Free:%d Busy:%s Temp:%s Integrated:%v Source:%q}",
		d.Index, d.Name, d.Vendor, d.PCIBusID, d.VRAMTotal, d.VRAMUsed, d.VRAMFree,
		f(d.BusyPercent), f(d.TemperatureC), d.Integrated, d.Source)
}

// writeTree creates files under root: a value "-> target" makes a symlink,
// "<dir>" an empty directory (a directory where a file is expected reads
// with an error, as a sysfs attribute does while the GPU is in reset).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(content, "-> "):
			err = os.Symlink(strings.TrimPrefix(content, "-> "), p)
		case content == "<dir>":
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// amdCard returns the files of a plain-directory amdgpu card under
// class/drm/<card>/device, for writeTree; over replaces or adds files.
func amdCard(card, slot string, total, used uint64, over map[string]string) map[string]string {
	dev := "class/drm/" + card + "/device/"
	m := map[string]string{
		dev + "vendor":              "0x1002\n",
		dev + "device":              "0x73bf\n",
		dev + "uevent":              "DRIVER=amdgpu\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=" + slot + "\n",
		dev + "mem_info_vram_total": fmt.Sprintf("%d\n", total),
		dev + "mem_info_vram_used":  fmt.Sprintf("%d\n", used),
		dev + "gpu_busy_percent":    "10\n",
	}
	for k, v := range over {
		if v == "" {
			delete(m, dev+k)
			continue
		}
		m[dev+k] = v
	}
	return m
}

func merge(ms ...map[string]string) map[string]string {
	out := make(map[string]string)
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
