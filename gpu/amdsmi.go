package gpu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// amdSMIArgs asks amd-smi for memory use, load and temperatures of every
// GPU as JSON.
func amdSMIArgs() []string {
	return []string{"metric", "--mem-usage", "--usage", "--temperature", "--json"}
}

// amdSMIReader reads AMD GPUs through ROCm's amd-smi tool.
type amdSMIReader struct {
	path string
	run  Runner
}

// NewAMDSMI returns a Reader that runs the amd-smi binary at path
// ("amd-smi" to search $PATH) through run (nil: ExecRunner) and parses the
// JSON of `amd-smi metric`. amd-smi replaces rocm-smi from ROCm 6 on; like
// it, it is a slow Python program and a fallback for sysfs.
//
// Both output shapes are read: a bare list of GPUs (older releases) and
// {"gpu_data": [...]} (newer ones). Memory figures are {value, unit}
// objects; "MB" is taken as MiB, as amd-smi means it.
func NewAMDSMI(path string, run Runner) Reader {
	if path == "" {
		path = "amd-smi"
	}
	return &amdSMIReader{path: path, run: run}
}

func (r *amdSMIReader) Name() string { return "amd-smi" }

func (r *amdSMIReader) Read(ctx context.Context) ([]Device, error) {
	out, runErr := runTool(ctx, r.run, r.path, amdSMIArgs()...)
	if runErr != nil && (errors.Is(runErr, ErrNotInstalled) || ctx.Err() != nil) {
		return nil, fmt.Errorf("amd-smi: %w", runErr)
	}
	devices, err := parseAMDSMI(out)
	if runErr != nil && (err != nil || len(devices) == 0) {
		return nil, fmt.Errorf("amd-smi: %w", runErr)
	}
	if err != nil {
		return devices, fmt.Errorf("amd-smi: %w", err)
	}
	return devices, nil
}

// parseAMDSMI parses `amd-smi metric ... --json` output in either shape.
func parseAMDSMI(out []byte) ([]Device, error) {
	start := bytes.IndexAny(out, "[{")
	if start < 0 {
		if msg := firstLine(out); msg != "" {
			return nil, fmt.Errorf("no JSON in output: %s", msg)
		}
		return nil, errors.New("empty output")
	}
	var top json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(out[start:])).Decode(&top); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	var gpus []json.RawMessage
	if top[0] == '[' {
		if err := json.Unmarshal(top, &gpus); err != nil {
			return nil, fmt.Errorf("parsing JSON: %w", err)
		}
	} else {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(top, &obj); err != nil {
			return nil, fmt.Errorf("parsing JSON: %w", err)
		}
		switch {
		case obj["gpu_data"] != nil:
			if err := json.Unmarshal(obj["gpu_data"], &gpus); err != nil {
				return nil, fmt.Errorf("parsing gpu_data: %w", err)
			}
		case obj["gpu"] != nil:
			gpus = []json.RawMessage{top} // one GPU, not in a list
		}
	}
	if len(gpus) == 0 {
		return nil, &noDeviceError{"no GPU in the output"}
	}
	var (
		devices []Device
		errs    []error
	)
	for i, raw := range gpus {
		d, err := amdSMIDevice(i, raw)
		if err != nil {
			errs = append(errs, &CardError{Card: fmt.Sprintf("GPU %d", d.Index), PCIBusID: d.PCIBusID, Err: err})
			continue
		}
		devices = append(devices, d)
	}
	slices.SortStableFunc(devices, func(a, b Device) int { return a.Index - b.Index })
	return devices, joinErrors(errs...)
}

// amdSMIGPU is one entry of amd-smi's GPU list. Leaves stay raw: each is a
// {value, unit} object, a bare number, or "N/A".
type amdSMIGPU struct {
	GPU         json.RawMessage            `json:"gpu"`
	BDF         string                     `json:"bdf"`
	MemUsage    map[string]json.RawMessage `json:"mem_usage"`
	Usage       map[string]json.RawMessage `json:"usage"`
	Temperature map[string]json.RawMessage `json:"temperature"`
}

// amdSMIDevice builds a Device from one GPU entry; pos is its position in
// the list, the index when the entry has no "gpu" number.
func amdSMIDevice(pos int, raw json.RawMessage) (Device, error) {
	d := Device{Index: pos, Vendor: "amd", Source: "amd-smi"}
	var g amdSMIGPU
	if err := json.Unmarshal(raw, &g); err != nil {
		return d, fmt.Errorf("not a GPU object: %w", err)
	}
	if s := scalarText(g.GPU); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			d.Index = n
		}
	}
	d.Name = fmt.Sprintf("AMD GPU %d", d.Index)
	if isPCIAddress(g.BDF) {
		d.PCIBusID = normalizePCI(g.BDF)
	}
	if g.MemUsage == nil {
		return d, errors.New("no mem_usage")
	}
	total, err := amdSMIBytes(g.MemUsage, "total_vram")
	if err != nil {
		return d, err
	}
	if total == 0 {
		return d, errors.New("total_vram is 0")
	}
	used, err := amdSMIBytes(g.MemUsage, "used_vram")
	if err != nil {
		return d, err
	}
	d.VRAMTotal, d.VRAMUsed, d.VRAMFree = total, used, vramFree(total, used)
	if f, err := amdSMIBytes(g.MemUsage, "free_vram"); err == nil && f <= total {
		d.VRAMFree = f
	}
	d.Integrated = total < integratedVRAMLimit
	if v, ok := amdSMIValue(g.Usage["gfx_activity"]); ok {
		d.BusyPercent = parsePercent(strconv.FormatFloat(v, 'f', -1, 64))
	}
	for _, sensor := range []string{"edge", "hotspot", "mem"} {
		if v, ok := amdSMIValue(g.Temperature[sensor]); ok {
			if t := parseTemperature(strconv.FormatFloat(v, 'f', -1, 64)); t != nil {
				d.TemperatureC = t
				break
			}
		}
	}
	return d, nil
}

// amdSMIBytes reads a memory leaf in bytes.
func amdSMIBytes(m map[string]json.RawMessage, key string) (uint64, error) {
	raw, ok := m[key]
	if !ok {
		return 0, fmt.Errorf("no %s", key)
	}
	v, ok := amdSMIValue(raw)
	if !ok {
		return 0, fmt.Errorf("%s is %s", key, clip(string(bytes.TrimSpace(raw)), 40))
	}
	unit := amdSMIUnit(raw)
	scale, ok := byteScale(unit)
	if !ok {
		return 0, fmt.Errorf("%s: unknown unit %q", key, unit)
	}
	b := v * scale
	if !(b >= 0) || b >= math.MaxUint64 {
		return 0, fmt.Errorf("%s: %v %s out of range", key, v, unit)
	}
	return uint64(b), nil
}

// amdSMIValue reads a leaf's number: {value: N}, {value: "N"}, or a bare
// number. "N/A" and anything else is not a value.
func amdSMIValue(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, false
	}
	if raw[0] == '{' {
		var leaf struct {
			Value json.RawMessage `json:"value"`
		}
		if json.Unmarshal(raw, &leaf) != nil {
			return 0, false
		}
		raw = leaf.Value
	}
	s := scalarText(raw)
	if s == "" || isNA(s) {
		return 0, false
	}
	return parseMetric(s)
}

// amdSMIUnit reads a leaf's unit; a bare number has none.
func amdSMIUnit(raw json.RawMessage) string {
	var leaf struct {
		Unit string `json:"unit"`
	}
	if json.Unmarshal(raw, &leaf) != nil {
		return ""
	}
	return strings.TrimSpace(leaf.Unit)
}

// byteScale is the size of a memory unit as the AMD tools print it. The
// tools write "MB" for MiB; a leaf with no unit is in MB too, as the CLI's
// plain output is.
func byteScale(unit string) (float64, bool) {
	switch strings.ToUpper(unit) {
	case "B":
		return 1, true
	case "KB", "KIB":
		return 1 << 10, true
	case "", "MB", "MIB":
		return 1 << 20, true
	case "GB", "GIB":
		return 1 << 30, true
	}
	return 0, false
}
