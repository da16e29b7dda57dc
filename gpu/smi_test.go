package gpu

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// Figures of the recorded-style outputs under testdata/smi.
const (
	rx6700XTBytes = 12868124672 // 12272 MiB
	rtx3090MiB    = 24576
	h100MiB       = 81559
)

// toolCase is one run of a fake tool script through the real exec path.
type toolCase struct {
	name     string
	script   string // under testdata/bin; a missing one tests "not installed"
	want     []Device
	wantErr  string // substring; "" for no error
	wantCard string // a CardError for this card is in the error
}

func runToolCases(t *testing.T, newReader func(path string) Reader, tests []toolCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReader(testdata(t, "bin", tc.script))
			got, err := r.Read(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Read: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Read error = %v, want one containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if err != nil && !strings.HasPrefix(err.Error(), r.Name()+": ") {
				t.Errorf("error %q does not start with the reader's name %q", err, r.Name())
			}
			if tc.wantCard != "" {
				var ce *CardError
				if !errors.As(err, &ce) || ce.Card != tc.wantCard {
					t.Errorf("error %v: want a CardError for %q", err, tc.wantCard)
				}
			}
			checkDevices(t, got, tc.want)
		})
	}
}

func TestROCmSMI(t *testing.T) {
	t.Parallel()
	rx6800 := Device{
		Index: 0, Name: navi21, Vendor: "amd", PCIBusID: "0000:03:00.0",
		VRAMTotal: rx6800GB, VRAMUsed: 5637144576, VRAMFree: rx6800GB - 5637144576,
		BusyPercent: fp(37), TemperatureC: fp(52), Source: "rocm-smi",
	}
	rx6700Old := Device{
		Index: 1, Name: "Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT]", Vendor: "amd",
		PCIBusID: "0000:0b:00.0", VRAMTotal: rx6700XTBytes, VRAMUsed: 1166016512,
		VRAMFree: rx6700XTBytes - 1166016512, TemperatureC: fp(48), Source: "rocm-smi",
	}
	runToolCases(t, func(p string) Reader { return NewROCmSMI(p, nil) }, []toolCase{
		{name: "one card after a warning line", script: "rocm-smi-rx6800", want: []Device{rx6800}},
		{name: "two cards, old key spelling, N/A load", script: "rocm-smi-two", want: []Device{rx6800, rx6700Old}},
		{name: "N/A VRAM on one card", script: "rocm-smi-na", want: []Device{rx6700Old},
			wantErr: `"VRAM Total Memory (B)" is N/A`, wantCard: "card0"},
		{name: "non-zero exit with every card's VRAM", script: "rocm-smi-partial-exit", want: []Device{rx6800}},
		{name: "driver not loaded", script: "rocm-smi-fail",
			wantErr: "exited with status 1: ERROR:root:Driver not initialized (amdgpu not found in modules)"},
		{name: "not installed", script: "rocm-smi-absent", wantErr: "rocm-smi: not installed (no /"},
	})
}

func TestAMDSMI(t *testing.T) {
	t.Parallel()
	rx6800 := Device{
		Index: 0, Name: "AMD GPU 0", Vendor: "amd",
		VRAMTotal: 16368 * mib, VRAMUsed: 5376 * mib, VRAMFree: 10992 * mib,
		BusyPercent: fp(37), TemperatureC: fp(52), Source: "amd-smi",
	}
	second := Device{
		Index: 1, Name: "AMD GPU 1", Vendor: "amd",
		VRAMTotal: 12272 * mib, VRAMUsed: 1112 * mib, VRAMFree: 11160 * mib,
		TemperatureC: fp(48), Source: "amd-smi", // edge N/A: the hotspot sensor
	}
	runToolCases(t, func(p string) Reader { return NewAMDSMI(p, nil) }, []toolCase{
		{name: "gpu_data shape", script: "amd-smi-rx6800", want: []Device{rx6800}},
		{name: "bare list shape, N/A load and edge", script: "amd-smi-two-list", want: []Device{rx6800, second}},
		{name: "N/A memory on one GPU", script: "amd-smi-na",
			want: []Device{{
				Index: 1, Name: "AMD GPU 1", Vendor: "amd",
				VRAMTotal: 12272 * mib, VRAMUsed: 1112 * mib, VRAMFree: 11160 * mib,
				BusyPercent: fp(4), TemperatureC: fp(44), Source: "amd-smi",
			}},
			wantErr: `total_vram is "N/A"`, wantCard: "GPU 0"},
		{name: "not installed", script: "amd-smi-absent", wantErr: "amd-smi: not installed"},
	})
}

func TestNvidiaSMI(t *testing.T) {
	t.Parallel()
	rtx3090 := Device{
		Index: 0, Name: "NVIDIA GeForce RTX 3090", Vendor: "nvidia", PCIBusID: "0000:01:00.0",
		VRAMTotal: rtx3090MiB * mib, VRAMUsed: 1234 * mib, VRAMFree: 23050 * mib,
		BusyPercent: fp(5), TemperatureC: fp(41), Source: "nvidia-smi",
	}
	h100 := Device{
		Index: 1, Name: "NVIDIA H100 80GB HBM3", Vendor: "nvidia", PCIBusID: "0000:41:00.0",
		VRAMTotal: h100MiB * mib, VRAMUsed: 0, VRAMFree: 80994 * mib,
		BusyPercent: fp(0), TemperatureC: fp(31), Source: "nvidia-smi",
	}
	rtx3090NA := rtx3090
	rtx3090NA.BusyPercent, rtx3090NA.TemperatureC = nil, nil
	runToolCases(t, func(p string) Reader { return NewNvidiaSMI(p, nil) }, []toolCase{
		{name: "one GPU", script: "nvidia-smi-one", want: []Device{rtx3090}},
		{name: "two GPUs, free below total minus used", script: "nvidia-smi-two", want: []Device{rtx3090, h100}},
		{name: "N/A fields", script: "nvidia-smi-na", want: []Device{rtx3090NA},
			wantErr: "memory.total is [N/A]", wantCard: "GPU 1"},
		{name: "driver not reachable", script: "nvidia-smi-fail",
			wantErr: "exited with status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"},
		{name: "not installed", script: "nvidia-smi-absent", wantErr: "nvidia-smi: not installed"},
	})
}

// TestToolNotInPath checks the bare-name case: exec's $PATH search fails
// with exec.ErrNotFound, which must read as "not installed".
func TestToolNotInPath(t *testing.T) {
	t.Parallel()
	for _, r := range []Reader{
		NewROCmSMI("catalyst-test-no-such-rocm-smi", nil),
		NewAMDSMI("catalyst-test-no-such-amd-smi", nil),
		NewNvidiaSMI("catalyst-test-no-such-nvidia-smi", nil),
	} {
		got, err := r.Read(context.Background())
		if !errors.Is(err, ErrNotInstalled) || got != nil {
			t.Errorf("%s: Read = %v, %v; want ErrNotInstalled", r.Name(), got, err)
			continue
		}
		if !strings.Contains(err.Error(), "not installed (no catalyst-test-no-such-") || !strings.Contains(err.Error(), "in $PATH)") {
			t.Errorf("%s: error %q does not say what is missing", r.Name(), err)
		}
	}
}

func TestToolDefaultsAndCancel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		r    Reader
		name string
		path string
	}{
		{NewROCmSMI("", nil), "rocm-smi", "rocm-smi"},
		{NewAMDSMI("", nil), "amd-smi", "amd-smi"},
		{NewNvidiaSMI("", nil), "nvidia-smi", "nvidia-smi"},
	} {
		if tc.r.Name() != tc.name {
			t.Errorf("Name() = %q, want %q", tc.r.Name(), tc.name)
		}
		// A cancelled context stops the tool before it runs and says so.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := tc.r.Read(ctx)
		if err == nil || (!errors.Is(err, context.Canceled) && !errors.Is(err, ErrNotInstalled)) {
			t.Errorf("%s on a cancelled context: %v", tc.name, err)
		}
	}
	// With a script that exists, cancellation is the error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewNvidiaSMI(testdata(t, "bin", "nvidia-smi-one"), nil).Read(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("nvidia-smi on a cancelled context: %v, want context.Canceled", err)
	}
}

// TestParseNvidiaSMILenient covers the column handling the fake scripts
// do not: a header, units left in, a name with a comma, garbage lines.
func TestParseNvidiaSMILenient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		wantN    int
		wantErr  string
		check    func(t *testing.T, ds []Device)
	}{
		{
			name:  "header and units",
			in:    "index, name, pci.bus_id, memory.total [MiB], memory.used [MiB], memory.free [MiB], utilization.gpu [%], temperature.gpu\n0, NVIDIA GeForce RTX 4090, 00000000:01:00.0, 24564 MiB, 2 MiB, 24080 MiB, 0 %, 35\n",
			wantN: 1,
			check: func(t *testing.T, ds []Device) {
				if ds[0].VRAMTotal != 24564*mib || *ds[0].BusyPercent != 0 || *ds[0].TemperatureC != 35 {
					t.Errorf("got %s", fmtDevice(ds[0]))
				}
			},
		},
		{
			name:  "name with a comma, CRLF line ends",
			in:    "0, Quadro RTX 8000, Rev. A, 00000000:3B:00.0, 46080, 100, 45980, 1, 30\r\n",
			wantN: 1,
			check: func(t *testing.T, ds []Device) {
				if ds[0].Name != "Quadro RTX 8000, Rev. A" || ds[0].PCIBusID != "0000:3b:00.0" {
					t.Errorf("got %s", fmtDevice(ds[0]))
				}
			},
		},
		{name: "too few columns", in: "0, NVIDIA GeForce RTX 3090, 24576\n", wantErr: "3 columns, want 8"},
		{name: "negative memory", in: "0, X, 00000000:01:00.0, -5, 0, 0, 0, 0\n", wantErr: "out of range"},
		{name: "nothing", in: "\n\n", wantErr: "no GPU in the output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ds, err := parseNvidiaSMI([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(ds) != tc.wantN {
				t.Fatalf("got %d devices, want %d", len(ds), tc.wantN)
			}
			if tc.check != nil {
				tc.check(t, ds)
			}
		})
	}
}

// TestParseAMDToolsLenient covers JSON variants: numbers instead of
// strings, units, a single GPU object, no cards.
func TestParseAMDToolsLenient(t *testing.T) {
	t.Parallel()
	t.Run("rocm-smi numbers and float byte counts", func(t *testing.T) {
		ds, err := parseROCmSMI([]byte(`{"card2": {"VRAM Total Memory (B)": 17163091968, "VRAM Total Used Memory (B)": "5637144576.0", "GPU use (%)": 99, "Temperature (Sensor junction) (C)": "70.0"}}`))
		if err != nil || len(ds) != 1 {
			t.Fatalf("got %v, %v", ds, err)
		}
		d := ds[0]
		if d.Index != 2 || d.VRAMUsed != 5637144576 || *d.BusyPercent != 99 || *d.TemperatureC != 70 || d.Name != "AMD GPU 2" {
			t.Errorf("got %s", fmtDevice(d))
		}
	})
	t.Run("rocm-smi with no card", func(t *testing.T) {
		_, err := parseROCmSMI([]byte(`{"system": {"Driver version": "6.8.0"}}`))
		if !errors.Is(err, ErrNoDevice) {
			t.Errorf("error = %v, want ErrNoDevice", err)
		}
	})
	t.Run("rocm-smi plain text", func(t *testing.T) {
		_, err := parseROCmSMI([]byte("GPU[0]\t\t: VRAM Total Memory (B): 17163091968\n"))
		if err == nil || !strings.Contains(err.Error(), "no JSON in output: GPU[0]") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("amd-smi single object, GB and B units, string values", func(t *testing.T) {
		ds, err := parseAMDSMI([]byte(`{"gpu": 3, "bdf": "0000:C1:00.0", "mem_usage": {"total_vram": {"value": "16", "unit": "GB"}, "used_vram": {"value": 1073741824, "unit": "B"}}}`))
		if err != nil || len(ds) != 1 {
			t.Fatalf("got %v, %v", ds, err)
		}
		d := ds[0]
		if d.Index != 3 || d.PCIBusID != "0000:c1:00.0" || d.VRAMTotal != 16<<30 || d.VRAMUsed != 1<<30 || d.VRAMFree != 15<<30 ||
			d.BusyPercent != nil || d.TemperatureC != nil {
			t.Errorf("got %s", fmtDevice(d))
		}
	})
	t.Run("amd-smi unknown unit", func(t *testing.T) {
		_, err := parseAMDSMI([]byte(`[{"gpu": 0, "mem_usage": {"total_vram": {"value": 16, "unit": "furlongs"}, "used_vram": {"value": 1, "unit": "MB"}}}]`))
		if err == nil || !strings.Contains(err.Error(), `unknown unit "furlongs"`) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("amd-smi empty list", func(t *testing.T) {
		_, err := parseAMDSMI([]byte(`{"gpu_data": []}`))
		if !errors.Is(err, ErrNoDevice) {
			t.Errorf("error = %v, want ErrNoDevice", err)
		}
	})
}

func TestNormalizePCI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"00000000:01:00.0": "0000:01:00.0",
		"0000:0B:00.0":     "0000:0b:00.0",
		"0001:01:00.0":     "0001:01:00.0",
		"0000000F:01:00.0": "000f:01:00.0",
		"00010000:01:00.0": "10000:01:00.0", // as sysfs prints a VMD domain with %04x
		"garbage":          "garbage",
	} {
		if got := normalizePCI(in); got != want {
			t.Errorf("normalizePCI(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExecRunnerCapsOutput checks that a runaway tool cannot grow memory:
// output past the cap is dropped and reported.
func TestExecRunnerCapsOutput(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	out, err := ExecRunner(context.Background(), "/bin/sh", "-c", "head -c 2000000 /dev/zero")
	if len(out) != maxToolOutput || err == nil || !strings.Contains(err.Error(), "output longer than") {
		t.Errorf("got %d bytes, %v; want %d bytes and an error", len(out), err, maxToolOutput)
	}
}
