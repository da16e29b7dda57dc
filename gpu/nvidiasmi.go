package gpu

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// nvidiaSMIFields are the columns asked of nvidia-smi, in order.
const nvidiaSMIFields = "index,name,pci.bus_id,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu"

// nvidiaSMIColumns is the number of columns in nvidiaSMIFields.
const nvidiaSMIColumns = 8

func nvidiaSMIArgs() []string {
	return []string{"--query-gpu=" + nvidiaSMIFields, "--format=csv,noheader,nounits"}
}

// nvidiaSMIReader reads NVIDIA GPUs through nvidia-smi.
type nvidiaSMIReader struct {
	path string
	run  Runner
}

// NewNvidiaSMI returns a Reader that runs the nvidia-smi binary at path
// ("nvidia-smi" to search $PATH) through run (nil: ExecRunner) with a CSV
// query. nvidia-smi is the way to NVIDIA's figures without cgo: the driver
// publishes no memory files in sysfs, and go-nvml needs cgo.
//
// Memory comes in MiB and is converted to bytes; memory.free is
// nvidia-smi's own figure, which can be less than total minus used (newer
// drivers reserve some). A non-zero exit is an error carrying the tool's
// message ("NVIDIA-SMI has failed because it couldn't communicate with the
// NVIDIA driver"); a GPU whose memory is "[N/A]" is a CardError, while an
// unsupported load or temperature is nil.
func NewNvidiaSMI(path string, run Runner) Reader {
	if path == "" {
		path = "nvidia-smi"
	}
	return &nvidiaSMIReader{path: path, run: run}
}

func (r *nvidiaSMIReader) Name() string { return "nvidia-smi" }

func (r *nvidiaSMIReader) Read(ctx context.Context) ([]Device, error) {
	out, err := runTool(ctx, r.run, r.path, nvidiaSMIArgs()...)
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	devices, err := parseNvidiaSMI(out)
	if err != nil {
		return devices, fmt.Errorf("nvidia-smi: %w", err)
	}
	return devices, nil
}

// parseNvidiaSMI parses nvidia-smi's CSV: one line per GPU, columns as in
// nvidiaSMIFields, separated by ", ". Each column is parsed leniently: a
// header line is skipped, units left in by a missing nounits are dropped,
// and a name containing commas is put back together.
func parseNvidiaSMI(out []byte) ([]Device, error) {
	var (
		devices []Device
		errs    []error
		lines   int
	)
	for line := range strings.SplitSeq(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "index,") {
			continue
		}
		lines++
		d, err := nvidiaSMIDevice(line)
		if err != nil {
			card := fmt.Sprintf("line %d", lines)
			if d.Index >= 0 {
				card = fmt.Sprintf("GPU %d", d.Index)
			}
			errs = append(errs, &CardError{Card: card, PCIBusID: d.PCIBusID, Err: err})
			continue
		}
		devices = append(devices, d)
	}
	if lines == 0 {
		return nil, &noDeviceError{"no GPU in the output"}
	}
	return devices, joinErrors(errs...)
}

// nvidiaSMIDevice parses one CSV line. On error d.Index is -1 unless the
// index column was read.
func nvidiaSMIDevice(line string) (Device, error) {
	d := Device{Index: -1, Vendor: "nvidia", Source: "nvidia-smi"}
	cols := strings.Split(line, ",")
	if len(cols) < nvidiaSMIColumns {
		return d, fmt.Errorf("%d columns, want %d: %q", len(cols), nvidiaSMIColumns, clip(line, 120))
	}
	if extra := len(cols) - nvidiaSMIColumns; extra > 0 {
		// Only the name can hold a comma.
		name := strings.Join(cols[1:2+extra], ",")
		cols = append([]string{cols[0], name}, cols[2+extra:]...)
	}
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i])
	}
	index, err := strconv.Atoi(cols[0])
	if err != nil || index < 0 {
		return d, fmt.Errorf("index %q is not a number", clip(cols[0], 40))
	}
	d.Index = index
	d.Name = clip(cols[1], maxName)
	if d.Name == "" || isNA(d.Name) {
		d.Name = fmt.Sprintf("NVIDIA GPU %d", index)
	}
	if bus := cols[2]; isPCIAddress(bus) {
		d.PCIBusID = normalizePCI(bus)
	}
	total, err := nvidiaMiB("memory.total", cols[3])
	if err != nil {
		return d, err
	}
	if total == 0 {
		return d, errors.New("memory.total is 0")
	}
	used, err := nvidiaMiB("memory.used", cols[4])
	if err != nil {
		return d, err
	}
	d.VRAMTotal, d.VRAMUsed, d.VRAMFree = total, used, vramFree(total, used)
	if f, err := nvidiaMiB("memory.free", cols[5]); err == nil && f <= total {
		d.VRAMFree = f
	}
	d.BusyPercent = parsePercent(strings.TrimSuffix(strings.TrimSpace(cols[6]), " %"))
	d.TemperatureC = parseTemperature(strings.TrimSuffix(strings.TrimSpace(cols[7]), " C"))
	return d, nil
}

// nvidiaMiB parses a memory column in MiB ("24576", or "24576 MiB" without
// nounits) into bytes.
func nvidiaMiB(field, s string) (uint64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "MiB"))
	if isNA(s) {
		return 0, fmt.Errorf("%s is %s", field, s)
	}
	v, ok := parseMetric(s)
	if !ok {
		return 0, fmt.Errorf("%s %q is not a MiB figure", field, clip(s, 40))
	}
	b, err := mibToBytes(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", field, err)
	}
	return b, nil
}
