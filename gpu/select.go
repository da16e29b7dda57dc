package gpu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Reader kinds, as SENTIMENT_GPU_READER spells them.
const (
	KindAuto      = "auto"
	KindSysfs     = "sysfs"
	KindROCmSMI   = "rocm-smi"
	KindAMDSMI    = "amd-smi"
	KindNvidiaSMI = "nvidia-smi"
	KindNone      = "none"
)

// rocmBinDir is where ROCm installs its tools; a service's $PATH often
// does not include it.
const rocmBinDir = "/opt/rocm/bin"

// Select returns the Reader that kind names:
//
//   - "sysfs", "rocm-smi", "amd-smi", "nvidia-smi": that reader alone;
//   - "auto": a Reader that tries sysfs, rocm-smi, amd-smi and nvidia-smi in
//     turn and answers with the first that finds a device (see below);
//   - "none": no reader at all, nil and a nil error: VRAM is not watched,
//     and the caller must not start anything that needs a reading.
//
// sysfsRoot is the sysfs mount ("" means "/sys"); run executes the tools
// (nil: ExecRunner). With the default runner, rocm-smi and amd-smi not on
// $PATH are also looked for in /opt/rocm/bin. Select starts nothing and
// reads nothing: a reader that cannot work says so on its first Read.
//
// The "auto" reader remembers which reader last found a device and asks it
// first next time, so a machine with ROCm's tools installed but an NVIDIA
// card does not pay for a failing rocm-smi on every poll. When none finds a
// device its error lists each reader's reason, in order, and matches
// ErrNoDevice ("sysfs: no amdgpu card under /sys/class/drm (...); rocm-smi:
// not installed (not in $PATH); ...").
func Select(kind, sysfsRoot string, run Runner) (Reader, error) {
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case KindNone:
		return nil, nil
	case KindSysfs:
		return NewSysfs(sysfsRoot), nil
	case KindROCmSMI:
		return NewROCmSMI(toolPath("rocm-smi", run, true), run), nil
	case KindAMDSMI:
		return NewAMDSMI(toolPath("amd-smi", run, true), run), nil
	case KindNvidiaSMI:
		return NewNvidiaSMI(toolPath("nvidia-smi", run, false), run), nil
	case KindAuto, "":
		return &autoReader{
			readers: []Reader{
				NewSysfs(sysfsRoot),
				NewROCmSMI(toolPath("rocm-smi", run, true), run),
				NewAMDSMI(toolPath("amd-smi", run, true), run),
				NewNvidiaSMI(toolPath("nvidia-smi", run, false), run),
			},
			last: -1,
		}, nil
	}
	return nil, fmt.Errorf("gpu reader %q: must be one of %s, %s, %s, %s, %s, %s",
		kind, KindAuto, KindSysfs, KindROCmSMI, KindAMDSMI, KindNvidiaSMI, KindNone)
}

// toolPath is the path to run a tool by: its bare name (searched in $PATH
// when run), or for a ROCm tool missing from $PATH with the default runner,
// its place in /opt/rocm/bin when it is there. A custom runner always gets
// the bare name.
func toolPath(name string, run Runner, rocm bool) string {
	if run != nil || !rocm {
		return name
	}
	if _, err := exec.LookPath(name); err == nil {
		return name
	}
	p := filepath.Join(rocmBinDir, name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return name
}

// autoReader asks readers in order and answers with the first that finds
// a device.
type autoReader struct {
	readers []Reader

	mu   sync.Mutex
	last int // index in readers of the one that last found a device; -1 before any
}

func (a *autoReader) Name() string { return KindAuto }

func (a *autoReader) Read(ctx context.Context) ([]Device, error) {
	devices, _, err := a.readKind(ctx)
	return devices, err
}

// readKind is Read that also names the reader that found the devices; ""
// when none did.
func (a *autoReader) readKind(ctx context.Context) ([]Device, string, error) {
	a.mu.Lock()
	last := a.last
	a.mu.Unlock()

	order := make([]int, 0, len(a.readers))
	if last >= 0 {
		order = append(order, last)
	}
	for i := range a.readers {
		if i != last {
			order = append(order, i)
		}
	}
	errs := make([]error, len(a.readers))
	for _, i := range order {
		if err := ctx.Err(); err != nil {
			return nil, "", fmt.Errorf("gpu auto: %w", err)
		}
		devices, err := a.readers[i].Read(ctx)
		if len(devices) > 0 {
			a.mu.Lock()
			a.last = i
			a.mu.Unlock()
			return devices, a.readers[i].Name(), err
		}
		if err == nil {
			err = fmt.Errorf("%s: %w", a.readers[i].Name(), ErrNoDevice)
		}
		errs[i] = err
	}
	return nil, "", &autoError{errs: errs}
}

// kindReader is a Reader that answers through one of several and can say
// which one found the devices: Select's "auto". The manager reports that
// one, since "auto" tells the owner nothing about where the figures came
// from.
type kindReader interface {
	readKind(ctx context.Context) (devices []Device, kind string, err error)
}

// readWithKind reads r and names the kind of reader that answered: r's
// own, or for a kindReader the one it delegated to ("" when none found a
// device).
func readWithKind(ctx context.Context, r Reader) ([]Device, string, error) {
	if kr, ok := r.(kindReader); ok {
		return kr.readKind(ctx)
	}
	devices, err := r.Read(ctx)
	return devices, r.Name(), err
}

// autoError is every reader's reason for finding nothing, in the readers'
// order. It matches ErrNoDevice and unwraps to the readers' errors.
type autoError struct{ errs []error }

func (e *autoError) Error() string {
	msgs := make([]string, 0, len(e.errs))
	for _, err := range e.errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	return strings.Join(msgs, "; ")
}

func (e *autoError) Unwrap() []error { return e.errs }

func (e *autoError) Is(target error) bool { return target == ErrNoDevice }
