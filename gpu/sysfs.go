package gpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// integratedVRAMLimit is the VRAM size under which an amdgpu device is taken
// for an APU's carve-out rather than a discrete card's memory. Ollama uses
// the same 1 GiB bound (IGPUMemLimit) to tell iGPUs from dGPUs.
const integratedVRAMLimit = 1 << 30

// maxSysfsFile bounds one read of a sysfs attribute. They are a line each;
// uevent, the longest we read, is a few hundred bytes.
const maxSysfsFile = 4 << 10

// sysfsReader reads AMD GPUs through the amdgpu driver's files in sysfs.
type sysfsReader struct {
	root string
}

// NewSysfs returns a Reader of the amdgpu driver's sysfs files under root
// ("/sys" normally; tests pass a fake tree). It reports every card driven
// by amdgpu that has VRAM counters (mem_info_vram_total and
// mem_info_vram_used), in PCI-address order. Cards of other drivers are
// left out; NVIDIA's driver publishes no memory files there.
//
// It needs no root, no group and no ROCm: the files are world-readable.
func NewSysfs(root string) Reader {
	if root == "" {
		root = "/sys"
	}
	return &sysfsReader{root: filepath.Clean(root)}
}

func (r *sysfsReader) Name() string { return "sysfs" }

// drmCard is one /sys/class/drm/cardN entry found to be an amdgpu device.
type drmCard struct {
	name     string // "card1"
	num      int
	dev      string // <root>/class/drm/card1/device
	pci      string // "0000:03:00.0", or "" when neither uevent nor the link says
	vendor   string // "0x1002"
	deviceID string // "0x73bf"
}

// isPCIAddress reports whether s is a PCI address such as "0000:03:00.0"
// (domain:bus:device.function, hex, a four- to eight-digit domain).
func isPCIAddress(s string) bool {
	domain, rest, ok := strings.Cut(s, ":")
	if !ok || len(domain) < 4 || len(domain) > 8 || !isHex(domain) {
		return false
	}
	bus, rest, ok := strings.Cut(rest, ":")
	if !ok || len(bus) != 2 || !isHex(bus) {
		return false
	}
	dev, fn, ok := strings.Cut(rest, ".")
	return ok && len(dev) == 2 && isHex(dev) && len(fn) == 1 && fn[0] >= '0' && fn[0] <= '7'
}

func isHex(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return s != ""
}

// isCardName reports whether name is a DRM primary node (card0, card12),
// not a connector (card0-DP-1) or a render node (renderD128).
func isCardName(name string) bool {
	digits := strings.TrimPrefix(name, "card")
	if digits == name || digits == "" {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (r *sysfsReader) Read(ctx context.Context) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sysfs: %w", err)
	}
	drm := filepath.Join(r.root, "class", "drm")
	cards, skipped, err := r.findCards(drm)
	if err != nil {
		return nil, err
	}
	if len(cards) == 0 {
		msg := "sysfs: no amdgpu card under " + drm
		if len(skipped) > 0 {
			msg += " (" + strings.Join(skipped, "; ") + ")"
		}
		return nil, &noDeviceError{msg}
	}
	var (
		devices []Device
		errs    []error
	)
	for i, c := range cards {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sysfs: %w", err)
		}
		d, ok, err := readCard(c, i)
		if ok {
			devices = append(devices, d)
		}
		if err != nil {
			errs = append(errs, &CardError{Card: c.name, PCIBusID: c.pci, Err: err})
		}
	}
	if len(errs) > 0 {
		return devices, fmt.Errorf("sysfs: %w", joinErrors(errs...))
	}
	return devices, nil
}

// findCards lists the amdgpu cards under drm that have VRAM counters, one
// per PCI device, sorted by PCI address, and a reason for each card left
// out. A missing drm directory is an ErrNoDevice error.
func (r *sysfsReader) findCards(drm string) (cards []drmCard, skipped []string, err error) {
	entries, err := os.ReadDir(drm)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, &noDeviceError{"sysfs: no " + drm + " (sysfs not mounted here, or not Linux)"}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sysfs: listing cards: %w", err)
	}
	var all []drmCard
	for _, e := range entries {
		if !isCardName(e.Name()) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "card"))
		if err != nil {
			continue // more digits than an int holds: not a real card
		}
		all = append(all, drmCard{name: e.Name(), num: n, dev: filepath.Join(drm, e.Name(), "device")})
	}
	slices.SortFunc(all, func(a, b drmCard) int { return a.num - b.num })

	seen := make(map[string]bool)
	for _, c := range all {
		c, why := inspectCard(c)
		if why != "" {
			skipped = append(skipped, c.name+": "+why)
			continue
		}
		// cardN and renderD12x of one GPU point at the same PCI device, and
		// a driver may register more than one primary node: report each
		// device once.
		key := c.pci
		if key == "" {
			if key, err = filepath.EvalSymlinks(c.dev); err != nil {
				key = c.dev
			}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		cards = append(cards, c)
	}
	slices.SortStableFunc(cards, func(a, b drmCard) int {
		switch {
		case a.pci == b.pci:
			return a.num - b.num
		case a.pci == "":
			return 1
		case b.pci == "":
			return -1
		}
		return strings.Compare(a.pci, b.pci)
	})
	return cards, skipped, nil
}

// inspectCard fills in c's identity and decides whether it is an amdgpu
// device with VRAM counters; why is the reason when it is not.
//
// The driver decides, not the vendor id: the mem_info_* files are the
// amdgpu driver's, and an AMD card may be bound to radeon (pre-GCN cards),
// to vfio-pci (passed through to a VM) or to nothing. The driver name comes
// from the device/driver link, or uevent's DRIVER= line; only when neither
// exists (a hand-made tree) does vendor 0x1002 with a mem_info_vram_total
// file count as amdgpu.
func inspectCard(c drmCard) (drmCard, string) {
	if _, err := os.Stat(c.dev); err != nil {
		return c, "no device directory"
	}
	uevent := parseUevent(c.dev)
	c.vendor, _ = readAttr(filepath.Join(c.dev, "vendor"))
	c.vendor = strings.ToLower(c.vendor)
	c.deviceID, _ = readAttr(filepath.Join(c.dev, "device"))
	c.deviceID = strings.ToLower(c.deviceID)
	if slot := uevent["PCI_SLOT_NAME"]; isPCIAddress(slot) {
		c.pci = normalizePCI(slot)
	} else if real, err := filepath.EvalSymlinks(c.dev); err == nil && isPCIAddress(filepath.Base(real)) {
		c.pci = normalizePCI(filepath.Base(real))
	}

	driver := ""
	if link, err := os.Readlink(filepath.Join(c.dev, "driver")); err == nil {
		driver = clip(filepath.Base(link), maxName)
	} else {
		driver = uevent["DRIVER"]
	}
	switch {
	case driver == "" && c.vendor != "0x1002":
		return c, fmt.Sprintf("vendor %s, no driver bound", orUnknown(c.vendor))
	case driver != "" && driver != "amdgpu":
		return c, fmt.Sprintf("driver %s (vendor %s), not amdgpu", driver, orUnknown(c.vendor))
	}
	if _, err := os.Stat(filepath.Join(c.dev, "mem_info_vram_total")); errors.Is(err, fs.ErrNotExist) {
		return c, "amdgpu without mem_info_vram_total: kernel too old, or an ASIC without VRAM counters"
	}
	return c, ""
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// readCard reads one amdgpu card. ok reports whether d holds a reading;
// err, when not nil, says what failed: the VRAM counters (then ok is false)
// or an optional attribute that exists but could not be read (then d is
// still returned, with that field nil). A GPU in reset answers the power
// management files with EPERM, and that is worth knowing.
func readCard(c drmCard, index int) (d Device, ok bool, err error) {
	total, err := readBytes(c.dev, "mem_info_vram_total")
	if err != nil {
		return d, false, err
	}
	if total == 0 {
		return d, false, errors.New("mem_info_vram_total reports 0 bytes")
	}
	used, err := readBytes(c.dev, "mem_info_vram_used")
	if err != nil {
		return d, false, err
	}
	d = Device{
		Index:    index,
		Name:     amdName(c),
		Vendor:   "amd",
		PCIBusID: c.pci,
		Source:   clip("sysfs:"+c.dev, maxErrText),
	}
	if total < integratedVRAMLimit {
		// An APU: the carve-out is only where the display lives; the model
		// goes to GTT. Report both so that a full carve-out does not read as
		// a full card.
		d.Integrated = true
		gttTotal, errT := readBytes(c.dev, "mem_info_gtt_total")
		gttUsed, errU := readBytes(c.dev, "mem_info_gtt_used")
		if errT == nil && errU == nil {
			total += gttTotal
			used += gttUsed
			d.Source += " (vram+gtt)"
		}
	}
	d.VRAMTotal, d.VRAMUsed, d.VRAMFree = total, used, vramFree(total, used)

	var errs []error
	if s, err := readOptional(c.dev, "gpu_busy_percent"); err != nil {
		errs = append(errs, err)
	} else if s != "" {
		d.BusyPercent = parsePercent(s)
	}
	t, err := readTemperature(c.dev)
	if err != nil {
		errs = append(errs, err)
	}
	d.TemperatureC = t
	return d, true, joinErrors(errs...)
}

// readTemperature reads the card's hwmon temperature in degrees Celsius:
// the channel labelled "edge" where labels exist, else temp1 (edge on every
// amdgpu ASIC), else the lowest-numbered channel. No hwmon directory, or no
// channel, is nil without an error.
func readTemperature(dev string) (*float64, error) {
	hwmons, _ := filepath.Glob(filepath.Join(dev, "hwmon", "hwmon[0-9]*"))
	slices.Sort(hwmons)
	for _, h := range hwmons {
		inputs, _ := filepath.Glob(filepath.Join(h, "temp[0-9]*_input"))
		if len(inputs) == 0 {
			continue
		}
		slices.SortFunc(inputs, func(a, b string) int { return channel(a) - channel(b) })
		pick := inputs[0]
		for _, in := range inputs {
			if channel(in) == 1 {
				pick = in
			}
		}
		for _, in := range inputs {
			label, err := readAttr(strings.TrimSuffix(in, "_input") + "_label")
			if err == nil && strings.EqualFold(label, "edge") {
				pick = in
				break
			}
		}
		s, err := readAttr(pick)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", relName(dev, pick), err)
		}
		milli, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not millidegrees", relName(dev, pick), s)
		}
		return parseTemperature(strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64)), nil
	}
	return nil, nil
}

// channel is the number in a hwmon tempN_input path, or a large number.
func channel(path string) int {
	s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "temp"), "_input")
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30
	}
	return n
}

func relName(dev, path string) string {
	if rel, err := filepath.Rel(dev, path); err == nil {
		return rel
	}
	return path
}

// readBytes reads a mem_info_* counter: a decimal byte count.
func readBytes(dev, name string) (uint64, error) {
	s, err := readAttr(filepath.Join(dev, name))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a byte count", name, s)
	}
	return v, nil
}

// readOptional reads an attribute that not every ASIC or kernel has: a
// missing file is "" and no error; one that exists and fails to read is an
// error.
func readOptional(dev, name string) (string, error) {
	s, err := readAttr(filepath.Join(dev, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// readAttr reads one sysfs attribute, trimmed of its trailing newline and
// made valid UTF-8: a product name or a vendor string may end up in a
// message or in a Device.
func readAttr(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", unwrapPath(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSysfsFile))
	if err != nil {
		return "", unwrapPath(err)
	}
	return clip(strings.TrimSpace(string(b)), maxSysfsFile), nil
}

// unwrapPath drops the *fs.PathError wrapper, whose path the callers'
// messages already name relative to the device, keeping errors.Is intact.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseUevent reads a device's uevent KEY=VALUE lines; a missing file is
// an empty map.
func parseUevent(dev string) map[string]string {
	m := make(map[string]string)
	s, err := readAttr(filepath.Join(dev, "uevent"))
	if err != nil {
		return m
	}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m
}

// amdName is the card's product name: the board's own product_name (only
// boards with an FRU EEPROM have one), else the PCI id's chip name for the
// cards this service is likely to meet, else the PCI ids.
func amdName(c drmCard) string {
	if s, err := readAttr(filepath.Join(c.dev, "product_name")); err == nil && s != "" {
		return clip(s, maxName)
	}
	if name := amdChipName(c.deviceID); name != "" {
		return name
	}
	return fmt.Sprintf("AMD GPU %s:%s", strings.TrimPrefix(orUnknown(c.vendor), "0x"), strings.TrimPrefix(orUnknown(c.deviceID), "0x"))
}

// amdChipName names a few common AMD PCI device ids, as pci.ids does. It is
// a switch, not a map, so that it holds no package state.
func amdChipName(id string) string {
	switch id {
	case "0x73bf":
		return "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]"
	case "0x73df":
		return "Navi 22 [Radeon RX 6700/6700 XT/6750 XT / 6800M/6850M XT]"
	case "0x73ff":
		return "Navi 23 [Radeon RX 6600/6600 XT/6600M]"
	case "0x744c":
		return "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]"
	case "0x1636":
		return "Renoir [Radeon Vega Series / Radeon Vega Mobile Series]"
	case "0x1638":
		return "Cezanne [Radeon Vega Series / Radeon Vega Mobile Series]"
	case "0x15bf":
		return "Phoenix1 [Radeon 740M / 760M / 780M]"
	case "0x164e":
		return "Raphael [Radeon Graphics]"
	}
	return ""
}

// noDeviceError is a reader's "nothing here" with its own words; it
// matches ErrNoDevice.
type noDeviceError struct{ msg string }

func (e *noDeviceError) Error() string        { return e.msg }
func (e *noDeviceError) Is(target error) bool { return target == ErrNoDevice }
