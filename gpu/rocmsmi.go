package gpu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// rocmSMIArgs asks rocm-smi for VRAM, load, temperatures, product name and
// PCI address of every card, as one JSON object keyed by card.
func rocmSMIArgs() []string {
	return []string{"--showmeminfo", "vram", "--showuse", "--showtemp", "--showproductname", "--showbus", "--json"}
}

// rocmSMIReader reads AMD GPUs through ROCm's rocm-smi tool.
type rocmSMIReader struct {
	path string
	run  Runner
}

// NewROCmSMI returns a Reader that runs the rocm-smi binary at path
// ("rocm-smi" to search $PATH) through run (nil: ExecRunner) and parses its
// JSON. It is a fallback for machines where sysfs cannot be read: rocm-smi
// is a Python program that takes hundreds of milliseconds per call, and AMD
// deprecates it in favour of amd-smi.
//
// A rocm-smi that exits non-zero but prints every card's VRAM is taken at
// its word: it does that when one of the requested fields is unsupported.
func NewROCmSMI(path string, run Runner) Reader {
	if path == "" {
		path = "rocm-smi"
	}
	return &rocmSMIReader{path: path, run: run}
}

func (r *rocmSMIReader) Name() string { return "rocm-smi" }

func (r *rocmSMIReader) Read(ctx context.Context) ([]Device, error) {
	out, runErr := runTool(ctx, r.run, r.path, rocmSMIArgs()...)
	if runErr != nil && (errors.Is(runErr, ErrNotInstalled) || ctx.Err() != nil) {
		return nil, fmt.Errorf("rocm-smi: %w", runErr)
	}
	devices, err := parseROCmSMI(out)
	if runErr != nil && (err != nil || len(devices) == 0) {
		return nil, fmt.Errorf("rocm-smi: %w", runErr)
	}
	if err != nil {
		return devices, fmt.Errorf("rocm-smi: %w", err)
	}
	return devices, nil
}

// parseROCmSMI parses `rocm-smi ... --json` output: one object per card
// under keys "card0", "card1", ..., every value a string ("17163091968",
// "52.0", "N/A"). Lines before the first '{' (some versions print WARNING
// lines) and keys that do not name a card ("system") are skipped.
func parseROCmSMI(out []byte) ([]Device, error) {
	start := bytes.IndexByte(out, '{')
	if start < 0 {
		if msg := firstLine(out); msg != "" {
			return nil, fmt.Errorf("no JSON in output: %s", msg)
		}
		return nil, errors.New("empty output")
	}
	var top map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(out[start:])).Decode(&top); err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		if strings.HasPrefix(strings.ToLower(k), "card") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var (
		devices []Device
		errs    []error
	)
	for _, k := range keys {
		index, err := strconv.Atoi(k[len("card"):])
		if err != nil || index < 0 {
			errs = append(errs, fmt.Errorf("%q: not a card number", clip(k, 40)))
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(top[k], &fields); err != nil {
			errs = append(errs, &CardError{Card: k, Err: fmt.Errorf("not an object: %w", err)})
			continue
		}
		d, err := rocmSMIDevice(index, smiFields(fields))
		if err != nil {
			errs = append(errs, &CardError{Card: k, PCIBusID: d.PCIBusID, Err: err})
			continue
		}
		devices = append(devices, d)
	}
	slices.SortStableFunc(devices, func(a, b Device) int { return a.Index - b.Index })
	if len(keys) == 0 {
		return nil, &noDeviceError{"no card in the output"}
	}
	return devices, joinErrors(errs...)
}

// rocmSMIDevice builds a Device from one card's fields. The names are those
// rocm-smi has printed across ROCm releases; lookups ignore case because
// the spelling of some changed ("Card series", "Card Series").
func rocmSMIDevice(index int, f smiFields) (Device, error) {
	d := Device{Index: index, Vendor: "amd", Source: "rocm-smi"}
	if bus := f.get("PCI Bus"); isPCIAddress(bus) {
		d.PCIBusID = normalizePCI(bus)
	}
	total, err := f.bytes("VRAM Total Memory (B)")
	if err != nil {
		return d, err
	}
	if total == 0 {
		return d, errors.New("VRAM Total Memory (B) is 0")
	}
	used, err := f.bytes("VRAM Total Used Memory (B)")
	if err != nil {
		return d, err
	}
	d.VRAMTotal, d.VRAMUsed, d.VRAMFree = total, used, vramFree(total, used)
	d.Integrated = total < integratedVRAMLimit
	d.BusyPercent = parsePercent(f.get("GPU use (%)"))
	for _, sensor := range []string{"edge", "junction", "memory"} {
		if t := parseTemperature(f.get("Temperature (Sensor " + sensor + ") (C)")); t != nil {
			d.TemperatureC = t
			break
		}
	}
	d.Name = clip(f.first("Card Series", "Device Name", "Card Model"), maxName)
	if d.Name == "" {
		d.Name = fmt.Sprintf("AMD GPU %d", index)
	}
	return d, nil
}

// smiFields is one card's key/value object from an AMD tool. Values are
// kept as text whether the tool wrote a JSON string or a number.
type smiFields map[string]json.RawMessage

// get returns the value under key (matched exactly, then ignoring case),
// as text; "" when absent or not a scalar.
func (f smiFields) get(key string) string {
	raw, ok := f[key]
	if !ok {
		for k, v := range f {
			if strings.EqualFold(k, key) {
				raw, ok = v, true
				break
			}
		}
	}
	if !ok {
		return ""
	}
	return scalarText(raw)
}

// first returns the first of keys with a usable value (not empty, not
// "N/A").
func (f smiFields) first(keys ...string) string {
	for _, k := range keys {
		if v := f.get(k); v != "" && !isNA(v) {
			return v
		}
	}
	return ""
}

// bytes parses a byte count under key, saying which key was missing or
// unknown.
func (f smiFields) bytes(key string) (uint64, error) {
	s := f.get(key)
	switch {
	case s == "":
		return 0, fmt.Errorf("no %q", key)
	case isNA(s):
		return 0, fmt.Errorf("%q is %s", key, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Some versions print the count as a float ("17163091968.0").
		fv, ok := parseMetric(s)
		if !ok || fv < 0 || fv >= 1<<64 || fv != float64(uint64(fv)) {
			return 0, fmt.Errorf("%q: %q is not a byte count", key, clip(s, 40))
		}
		v = uint64(fv)
	}
	return v, nil
}

// scalarText renders a JSON string or number as text; other values are "".
func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return strings.TrimSpace(s)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(raw)
	}
	return ""
}

// isNA reports whether s is one of the tools' placeholders for an unknown
// value.
func isNA(s string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(s), "[]")) {
	case "n/a", "na", "not supported", "unknown", "unsupported":
		return true
	}
	return false
}
