package gpu

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	t.Parallel()
	rx6800Tree := testdata(t, "sysfs", "rx6800")
	nvidiaTree := testdata(t, "sysfs", "nvidia-only")
	tests := []struct {
		name      string
		kind      string
		root      string
		tools     map[string]string // tool -> script; others are not installed
		wantName  string            // Reader.Name(); "" for a nil Reader
		wantSrc   []string          // Source of each device read
		wantErr   string            // substring of Read's error
		selectErr string            // substring of Select's error
	}{
		{
			name: "auto picks sysfs on an AMD tree, without running any tool",
			kind: "auto", root: rx6800Tree,
			tools:    map[string]string{"rocm-smi": "rocm-smi-rx6800", "nvidia-smi": "nvidia-smi-one"},
			wantName: "auto",
			wantSrc:  []string{"sysfs:" + filepath.Join(rx6800Tree, "class/drm/card0/device")},
		},
		{
			name: "auto falls through to nvidia-smi when sysfs has no AMD card",
			kind: "auto", root: nvidiaTree,
			tools:    map[string]string{"nvidia-smi": "nvidia-smi-two"},
			wantName: "auto",
			wantSrc:  []string{"nvidia-smi", "nvidia-smi"},
		},
		{
			name: "auto goes past a failing rocm-smi",
			kind: "auto", root: nvidiaTree,
			tools:    map[string]string{"rocm-smi": "rocm-smi-fail", "nvidia-smi": "nvidia-smi-one"},
			wantName: "auto",
			wantSrc:  []string{"nvidia-smi"},
		},
		{
			name: "auto uses rocm-smi when sysfs is not mounted",
			kind: "auto", root: filepath.Join(t.TempDir(), "no-sys"),
			tools:    map[string]string{"rocm-smi": "rocm-smi-two", "amd-smi": "amd-smi-rx6800"},
			wantName: "auto",
			wantSrc:  []string{"rocm-smi", "rocm-smi"},
		},
		{
			name: "auto with every reader failing lists each reason in order",
			kind: "auto", root: testdata(t, "sysfs", "missing-meminfo"),
			tools:    map[string]string{"nvidia-smi": "nvidia-smi-fail"},
			wantName: "auto",
			wantErr: "sysfs: no amdgpu card under " + testdata(t, "sysfs", "missing-meminfo", "class", "drm") +
				" (card0: amdgpu without mem_info_vram_total: kernel too old, or an ASIC without VRAM counters); " +
				"rocm-smi: not installed (no rocm-smi in $PATH); " +
				"amd-smi: not installed (no amd-smi in $PATH); " +
				"nvidia-smi: exited with status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
		},
		{name: "empty kind is auto", kind: "", root: rx6800Tree, wantName: "auto",
			wantSrc: []string{"sysfs:" + filepath.Join(rx6800Tree, "class/drm/card0/device")}},
		{name: "sysfs alone", kind: "sysfs", root: nvidiaTree, wantName: "sysfs",
			tools: map[string]string{"nvidia-smi": "nvidia-smi-one"}, wantErr: "sysfs: no amdgpu card"},
		{name: "rocm-smi alone", kind: "rocm-smi", root: rx6800Tree, wantName: "rocm-smi",
			tools: map[string]string{"rocm-smi": "rocm-smi-rx6800"}, wantSrc: []string{"rocm-smi"}},
		{name: "amd-smi alone", kind: "amd-smi", root: rx6800Tree, wantName: "amd-smi",
			tools: map[string]string{"amd-smi": "amd-smi-two-list"}, wantSrc: []string{"amd-smi", "amd-smi"}},
		{name: "nvidia-smi alone, not installed", kind: "nvidia-smi", root: rx6800Tree, wantName: "nvidia-smi",
			wantErr: "nvidia-smi: not installed"},
		{name: "kind is trimmed and case-folded", kind: " NVIDIA-SMI ", wantName: "nvidia-smi",
			tools: map[string]string{"nvidia-smi": "nvidia-smi-one"}, wantSrc: []string{"nvidia-smi"}},
		{name: "none", kind: "none"},
		{name: "unknown kind", kind: "xpu",
			selectErr: `gpu reader "xpu": must be one of auto, sysfs, rocm-smi, amd-smi, nvidia-smi, none`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := Select(tc.kind, tc.root, scripts(t, tc.tools, nil))
			if tc.selectErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.selectErr) || r != nil {
					t.Fatalf("Select = %v, %v; want error %q", r, err, tc.selectErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if tc.wantName == "" {
				if r != nil {
					t.Fatalf("Select(%q) = %v, want a nil Reader", tc.kind, r)
				}
				return
			}
			if r.Name() != tc.wantName {
				t.Errorf("Name() = %q, want %q", r.Name(), tc.wantName)
			}
			got, err := r.Read(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Read error =\n%v\nwant one containing\n%s", err, tc.wantErr)
				}
				if !errors.Is(err, ErrNoDevice) && !errors.Is(err, ErrNotInstalled) {
					t.Errorf("error %v matches neither ErrNoDevice nor ErrNotInstalled", err)
				}
			} else if err != nil {
				t.Fatalf("Read: %v", err)
			}
			var srcs []string
			for _, d := range got {
				srcs = append(srcs, d.Source)
			}
			if strings.Join(srcs, "|") != strings.Join(tc.wantSrc, "|") {
				t.Errorf("sources %q, want %q", srcs, tc.wantSrc)
			}
		})
	}
}

// TestAutoAllFailingUnwraps checks that the combined error keeps each
// reader's error for errors.Is and errors.As.
func TestAutoAllFailingUnwraps(t *testing.T) {
	t.Parallel()
	r, err := Select("auto", t.TempDir(), scripts(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Read(context.Background())
	if !errors.Is(err, ErrNoDevice) || !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("error %v: want it to match ErrNoDevice and ErrNotInstalled", err)
	}
	if n := strings.Count(err.Error(), "; "); n != 3 {
		t.Errorf("error %q: want four reasons", err)
	}
}

// TestAutoPrefersLastGood checks that once a reader has found the GPU,
// auto asks it first, so a machine with ROCm installed but an NVIDIA card
// does not run rocm-smi on every poll.
func TestAutoPrefersLastGood(t *testing.T) {
	t.Parallel()
	calls := make(map[string]int)
	run := scripts(t, map[string]string{"rocm-smi": "rocm-smi-fail", "nvidia-smi": "nvidia-smi-one"}, calls)
	r, err := Select("auto", testdata(t, "sysfs", "nvidia-only"), run)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := r.Read(context.Background())
		if err != nil || len(got) != 1 || got[0].Source != "nvidia-smi" {
			t.Fatalf("Read %d = %s, %v", i, fmtDevices(got), err)
		}
	}
	if calls["rocm-smi"] != 1 || calls["amd-smi"] != 1 || calls["nvidia-smi"] != 3 {
		t.Errorf("calls = %v, want rocm-smi and amd-smi once, nvidia-smi three times", calls)
	}
}

func TestAutoCancelled(t *testing.T) {
	t.Parallel()
	r, err := Select("auto", testdata(t, "sysfs", "rx6800"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read on a cancelled context: %v, want context.Canceled", err)
	}
}

// TestAutoConcurrentReads reads from several goroutines at once, as a
// status RPC and the poller may; run with -race.
func TestAutoConcurrentReads(t *testing.T) {
	t.Parallel()
	r, err := Select("auto", testdata(t, "sysfs", "dgpu-igpu"), scripts(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := r.Read(context.Background())
			if err == nil && len(got) != 2 {
				err = errors.New("want 2 devices, got " + fmtDevices(got))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
