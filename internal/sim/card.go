package sim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// card is the simulated GPU: an RX 6800 whose used VRAM is the desktop's
// share, plus each model Ollama holds, plus what the runner has leaked.
// With a sysfs root it writes the amdgpu driver's files there, as
// gpu.NewSysfs reads them, each time a figure changes.
type card struct {
	// dev is <root>/class/drm/card0/device; empty when nothing is written.
	dev string

	mu           sync.Mutex
	total, base  uint64
	leak         uint64
	leakPerCall  uint64
	freeOnUnload bool
	models       map[string]uint64 // loaded model -> bytes it holds
	busy         int               // percent
	// written is what the files hold now, so that only changes are
	// written.
	written struct {
		used, total uint64
		busy        int
	}
	writeErr error
}

// The card's identity in sysfs: an RX 6800 (Navi 21) at 0000:03:00.0.
const (
	pciVendor = "0x1002"
	pciDevice = "0x73bf"
	pciSlot   = "0000:03:00.0"
)

// newCard makes the card and, with a root, writes its tree: the PCI
// identity, the driver in uevent, the VRAM counters, gpu_busy_percent and
// an edge temperature in hwmon.
func newCard(root string, g GPU) (*card, error) {
	c := &card{models: make(map[string]uint64)}
	c.configure(g)
	if root == "" {
		return c, nil
	}
	c.dev = filepath.Join(root, "class", "drm", "card0", "device")
	if err := os.MkdirAll(filepath.Join(c.dev, "hwmon", "hwmon0"), 0o755); err != nil {
		return nil, fmt.Errorf("writing the fake sysfs tree: %w", err)
	}
	static := map[string]string{
		"vendor":                   pciVendor,
		"device":                   pciDevice,
		"uevent":                   "DRIVER=amdgpu\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=" + pciSlot + "\n",
		"mem_info_vram_vendor":     "samsung",
		"hwmon/hwmon0/name":        "amdgpu",
		"hwmon/hwmon0/temp1_label": "edge",
	}
	for name, content := range static {
		if err := writeAtomic(filepath.Join(c.dev, name), content+"\n"); err != nil {
			return nil, fmt.Errorf("writing the fake sysfs tree: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written.busy = -1 // nothing written yet
	if err := c.flushLocked(); err != nil {
		return nil, fmt.Errorf("writing the fake sysfs tree: %w", err)
	}
	return c, nil
}

// configure applies the GPU knobs; the figures are rewritten.
func (c *card) configure(g GPU) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total, c.base = g.TotalMiB*MiB, g.BaseMiB*MiB
	c.leakPerCall, c.freeOnUnload = g.LeakMiBPerCall*MiB, g.FreeOnUnload
	c.flushOrKeepLocked()
}

// usedLocked is what the driver would report: capped at the card's size,
// as a real counter is.
func (c *card) usedLocked() uint64 {
	u := c.base + c.leak
	for _, b := range c.models {
		u += b
	}
	return min(u, c.total)
}

// fits reports whether a model of n bytes can still be loaded.
func (c *card) fits(n uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.base + c.leak
	for _, b := range c.models {
		u += b
	}
	return u+n <= c.total
}

// full reports whether nothing more fits: the runner's next allocation
// fails.
func (c *card) full() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.base + c.leak
	for _, b := range c.models {
		u += b
	}
	return u >= c.total
}

// load counts model's n bytes as used.
func (c *card) load(model string, n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.models[model] = n
	c.flushOrKeepLocked()
}

// unload frees model's bytes and, with FreeOnUnload, the leak: the runner
// process that held them is gone.
func (c *card) unload(model string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.models, model)
	if c.freeOnUnload {
		c.leak = 0
	}
	c.flushOrKeepLocked()
}

// leakCall adds one call's leak.
func (c *card) leakCall() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leakPerCall == 0 {
		return
	}
	c.leak += c.leakPerCall
	c.flushOrKeepLocked()
}

// restart frees everything the model server held, leak included, as a
// restart of the server process does.
func (c *card) restart() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.models)
	c.leak = 0
	c.flushOrKeepLocked()
}

// setBusy sets gpu_busy_percent (and the temperature with it).
func (c *card) setBusy(pct int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = max(0, min(100, pct))
	c.flushOrKeepLocked()
}

// cardState is the card as the state reports it.
type cardState struct {
	Sysfs       string  `json:"sysfs"`
	TotalBytes  uint64  `json:"total_bytes"`
	UsedBytes   uint64  `json:"used_bytes"`
	LeakedBytes uint64  `json:"leaked_bytes"`
	UsedMiB     uint64  `json:"used_mib"`
	UsedPercent float64 `json:"used_percent"`
	BusyPercent int     `json:"busy_percent"`
	// WriteError is the last failure to write the tree; empty when none.
	WriteError string `json:"write_error,omitzero"`
}

func (c *card) state(root string) cardState {
	c.mu.Lock()
	defer c.mu.Unlock()
	used := c.usedLocked()
	st := cardState{Sysfs: root, TotalBytes: c.total, UsedBytes: used, LeakedBytes: c.leak,
		UsedMiB: used / MiB, BusyPercent: c.busy}
	if c.total > 0 {
		st.UsedPercent = float64(int(float64(used)/float64(c.total)*10000)) / 100
	}
	if c.writeErr != nil {
		st.WriteError = c.writeErr.Error()
	}
	return st
}

// flushOrKeepLocked writes what changed, keeping a failure for the state
// rather than failing the call that moved the figure. c.mu is held.
func (c *card) flushOrKeepLocked() {
	if err := c.flushLocked(); err != nil {
		c.writeErr = err
	}
}

// flushLocked writes the figures that changed since the last write; a
// file is replaced in one rename, so a reader never sees it half written.
// c.mu is held.
func (c *card) flushLocked() error {
	if c.dev == "" {
		return nil
	}
	var errs []error
	if used := c.usedLocked(); used != c.written.used || c.written.total == 0 {
		errs = append(errs, writeAtomic(filepath.Join(c.dev, "mem_info_vram_used"), fmt.Sprintf("%d\n", used)))
		errs = append(errs, writeAtomic(filepath.Join(c.dev, "mem_info_vis_vram_used"), fmt.Sprintf("%d\n", min(used, 256*MiB))))
		c.written.used = used
	}
	if c.total != c.written.total {
		errs = append(errs, writeAtomic(filepath.Join(c.dev, "mem_info_vram_total"), fmt.Sprintf("%d\n", c.total)))
		errs = append(errs, writeAtomic(filepath.Join(c.dev, "mem_info_vis_vram_total"), fmt.Sprintf("%d\n", 256*MiB)))
		c.written.total = c.total
	}
	if c.busy != c.written.busy {
		errs = append(errs, writeAtomic(filepath.Join(c.dev, "gpu_busy_percent"), fmt.Sprintf("%d\n", c.busy)))
		// An idle card sits at 45 °C and warms by 0.3 °C per point of load.
		errs = append(errs, writeAtomic(filepath.Join(c.dev, "hwmon", "hwmon0", "temp1_input"), fmt.Sprintf("%d\n", 45000+300*c.busy)))
		c.written.busy = c.busy
	}
	return errors.Join(errs...)
}

// writeAtomic replaces path with content through a temporary file and a
// rename.
func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
