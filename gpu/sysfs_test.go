package gpu

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const (
	navi21   = "Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]"
	rx6800GB = 17163091968 // what a 16 GB Navi 21 reports: 16368 MiB
)

// TestSysfsTrees reads the committed fake sysfs trees under
// testdata/sysfs.
func TestSysfsTrees(t *testing.T) {
	t.Parallel()
	src := func(tree, card string) string {
		return "sysfs:" + filepath.Join(testdata(t, "sysfs", tree), "class", "drm", card, "device")
	}
	tests := []struct {
		tree    string
		want    []Device
		wantErr string // substring; "" for no error
		noDev   bool   // the error matches ErrNoDevice
	}{
		{
			// gpu.md 1.6: card0 and renderD128 link to one PCI directory;
			// the connector card0-DP-1 is not a card.
			tree: "rx6800",
			want: []Device{{
				Index: 0, Name: navi21, Vendor: "amd", PCIBusID: "0000:03:00.0",
				VRAMTotal: rx6800GB, VRAMUsed: 5637144576, VRAMFree: rx6800GB - 5637144576,
				BusyPercent: fp(37), TemperatureC: fp(52),
				Source: src("rx6800", "card0"),
			}},
		},
		{
			// The iGPU is card0 but sorts after the RX 6800 by PCI address;
			// its figures include GTT, and it has an unlabelled temp1.
			tree: "dgpu-igpu",
			want: []Device{
				{
					Index: 0, Name: navi21, Vendor: "amd", PCIBusID: "0000:03:00.0",
					VRAMTotal: rx6800GB, VRAMUsed: 6442450944, VRAMFree: rx6800GB - 6442450944,
					BusyPercent: fp(88), TemperatureC: fp(67),
					Source: src("dgpu-igpu", "card1"),
				},
				{
					Index: 1, Name: "Raphael [Radeon Graphics]", Vendor: "amd", PCIBusID: "0000:12:00.0",
					VRAMTotal: 536870912 + 16777216000, VRAMUsed: 432013312 + 83886080,
					VRAMFree:    536870912 + 16777216000 - 432013312 - 83886080,
					BusyPercent: fp(3), TemperatureC: fp(41), Integrated: true,
					Source: src("dgpu-igpu", "card0") + " (vram+gtt)",
				},
			},
		},
		{
			// A laptop APU behind simpledrm's card0; counters without a
			// trailing newline; the model sits in GTT.
			tree: "apu",
			want: []Device{{
				Index: 0, Name: "Phoenix1 [Radeon 740M / 760M / 780M]", Vendor: "amd", PCIBusID: "0000:c4:00.0",
				VRAMTotal: 536870912 + 16106127360, VRAMUsed: 310378496 + 5242880000,
				VRAMFree:    536870912 + 16106127360 - 310378496 - 5242880000,
				BusyPercent: fp(64), TemperatureC: fp(58), Integrated: true,
				Source: src("apu", "card1") + " (vram+gtt)",
			}},
		},
		{
			tree:    "missing-meminfo",
			wantErr: "card0: amdgpu without mem_info_vram_total",
			noDev:   true,
		},
		{
			tree:    "nvidia-only",
			wantErr: "card0: driver nvidia (vendor 0x10de), not amdgpu",
			noDev:   true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.tree, func(t *testing.T) {
			t.Parallel()
			root := testdata(t, "sysfs", tc.tree)
			got, err := NewSysfs(root).Read(context.Background())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Read error = %v, want one containing %q", err, tc.wantErr)
				}
				want := "sysfs: no amdgpu card under " + filepath.Join(root, "class", "drm")
				if !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Read error = %q, want it to start %q", err, want)
				}
				if errors.Is(err, ErrNoDevice) != tc.noDev {
					t.Errorf("errors.Is(%v, ErrNoDevice) = %v, want %v", err, !tc.noDev, tc.noDev)
				}
			}
			checkDevices(t, got, tc.want)
		})
	}
}

// TestSysfsEdgeCases builds small trees for the cases the committed ones
// do not cover: read failures, odd drivers, sensors and links.
func TestSysfsEdgeCases(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	dev := func(card string) string { return "class/drm/" + card + "/device/" }
	tests := []struct {
		name     string
		files    map[string]string
		check    func(t *testing.T, root string, got []Device)
		wantErr  string // substring; "" for no error
		wantCard string // the CardError's card, when wantErr is set and the error is per card
		noDev    bool
	}{
		{
			name:    "no drm directory",
			files:   map[string]string{"class/net/lo/mtu": "65536\n"},
			wantErr: "/class/drm (sysfs not mounted here, or not Linux)",
			noDev:   true,
		},
		{
			name: "vram_used unreadable on one card (GPU in reset)",
			files: merge(
				amdCard("card0", "0000:03:00.0", 16*gib, 4*gib, nil),
				amdCard("card1", "0000:0b:00.0", 12*gib, 1*gib, map[string]string{"mem_info_vram_used": "<dir>"}),
			),
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].PCIBusID != "0000:03:00.0" || got[0].Index != 0 {
					t.Errorf("got %s, want only the readable card at index 0", fmtDevices(got))
				}
			},
			wantErr:  "mem_info_vram_used: is a directory",
			wantCard: "card1",
		},
		{
			name: "busy percent unreadable: device kept, field nil, error says so",
			files: amdCard("card0", "0000:03:00.0", 16*gib, 4*gib,
				map[string]string{"gpu_busy_percent": "<dir>"}),
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].BusyPercent != nil || got[0].VRAMUsed != 4*gib {
					t.Errorf("got %s, want the card with nil busy percent", fmtDevices(got))
				}
			},
			wantErr:  "gpu_busy_percent",
			wantCard: "card0",
		},
		{
			name:     "garbage in vram_total",
			files:    amdCard("card0", "0000:03:00.0", 0, 0, map[string]string{"mem_info_vram_total": "lots\n"}),
			wantErr:  `mem_info_vram_total: "lots" is not a byte count`,
			wantCard: "card0",
		},
		{
			name:     "zero vram_total",
			files:    amdCard("card0", "0000:03:00.0", 0, 0, nil),
			wantErr:  "mem_info_vram_total reports 0 bytes",
			wantCard: "card0",
		},
		{
			name:     "vram_used missing",
			files:    amdCard("card0", "0000:03:00.0", 16*gib, 0, map[string]string{"mem_info_vram_used": ""}),
			wantErr:  "mem_info_vram_used: no such file or directory",
			wantCard: "card0",
		},
		{
			name:  "used above total: free is 0, not a wrapped-around number",
			files: amdCard("card0", "0000:03:00.0", 2*gib, 3*gib, nil),
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].VRAMFree != 0 {
					t.Errorf("got %s, want free 0", fmtDevices(got))
				}
			},
		},
		{
			name: "edge label on temp2 wins over temp1",
			files: amdCard("card0", "0000:03:00.0", 16*gib, 4*gib, map[string]string{
				"hwmon/hwmon2/temp1_input": "70000\n", "hwmon/hwmon2/temp1_label": "junction\n",
				"hwmon/hwmon2/temp2_input": "55500\n", "hwmon/hwmon2/temp2_label": "edge\n",
			}),
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].TemperatureC == nil || *got[0].TemperatureC != 55.5 {
					t.Errorf("got %s, want 55.5 °C from the edge channel", fmtDevices(got))
				}
			},
		},
		{
			name: "no hwmon and no gpu_busy_percent: nil, not zero, and no error",
			files: amdCard("card0", "0000:03:00.0", 16*gib, 4*gib,
				map[string]string{"gpu_busy_percent": ""}),
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].BusyPercent != nil || got[0].TemperatureC != nil {
					t.Errorf("got %s, want nil busy and temperature", fmtDevices(got))
				}
			},
		},
		{
			name: "implausible busy percent is nil",
			files: amdCard("card0", "0000:03:00.0", 16*gib, 4*gib,
				map[string]string{"gpu_busy_percent": "250\n"}),
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].BusyPercent != nil {
					t.Errorf("got %s, want nil busy", fmtDevices(got))
				}
			},
		},
		{
			name: "AMD card on the radeon driver is skipped",
			files: amdCard("card0", "0000:01:00.0", 0, 0, map[string]string{
				"uevent": "DRIVER=radeon\nPCI_SLOT_NAME=0000:01:00.0\n", "mem_info_vram_total": "", "mem_info_vram_used": "",
			}),
			wantErr: "card0: driver radeon (vendor 0x1002), not amdgpu",
			noDev:   true,
		},
		{
			name: "AMD card passed through to a VM (vfio-pci link) is skipped",
			files: amdCard("card0", "0000:01:00.0", 16*gib, 0, map[string]string{
				"uevent": "PCI_SLOT_NAME=0000:01:00.0\n", "driver": "-> ../../../../bus/pci/drivers/vfio-pci",
			}),
			wantErr: "card0: driver vfio-pci (vendor 0x1002), not amdgpu",
			noDev:   true,
		},
		{
			name: "no driver information: vendor 0x1002 with counters counts",
			files: amdCard("card3", "", 16*gib, 4*gib, map[string]string{
				"uevent": "", "device": "0x1234\n",
			}),
			check: func(t *testing.T, root string, got []Device) {
				want := []Device{{
					Name: "AMD GPU 1002:1234", Vendor: "amd",
					VRAMTotal: 16 * gib, VRAMUsed: 4 * gib, VRAMFree: 12 * gib, BusyPercent: fp(10),
					Source: "sysfs:" + filepath.Join(root, "class/drm/card3/device"),
				}}
				checkDevices(t, got, want)
			},
		},
		{
			name: "two primary nodes of one PCI device are reported once",
			files: merge(
				amdCard("pci", "", 16*gib, 4*gib, nil),
				map[string]string{
					"class/drm/card0":     "-> pci",
					"class/drm/card7":     "-> pci",
					dev("pci") + "uevent": "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0\n",
				},
			),
			check: func(t *testing.T, root string, got []Device) {
				if len(got) != 1 || got[0].PCIBusID != "0000:03:00.0" ||
					got[0].Source != "sysfs:"+filepath.Join(root, "class/drm/card0/device") {
					t.Errorf("got %s, want one device from card0", fmtDevices(got))
				}
			},
		},
		{
			name: "PCI address from the device link when uevent has none",
			files: map[string]string{
				"devices/pci0000:00/0000:2f:00.0/vendor":              "0x1002\n",
				"devices/pci0000:00/0000:2f:00.0/device":              "0x73bf\n",
				"devices/pci0000:00/0000:2f:00.0/uevent":              "DRIVER=amdgpu\n",
				"devices/pci0000:00/0000:2f:00.0/mem_info_vram_total": "17163091968\n",
				"devices/pci0000:00/0000:2f:00.0/mem_info_vram_used":  "0\n",
				"class/drm/card1/device":                              "-> ../../../devices/pci0000:00/0000:2f:00.0",
			},
			check: func(t *testing.T, _ string, got []Device) {
				if len(got) != 1 || got[0].PCIBusID != "0000:2f:00.0" || got[0].Name != navi21 {
					t.Errorf("got %s, want the RX 6800 at 0000:2f:00.0", fmtDevices(got))
				}
			},
		},
		{
			name: "card numbers sort numerically, then by PCI address",
			files: merge(
				amdCard("card10", "0000:0a:00.0", 8*gib, 1*gib, nil),
				amdCard("card2", "0000:c1:00.0", 16*gib, 2*gib, nil),
				amdCard("card1", "0000:03:00.0", 12*gib, 3*gib, nil),
			),
			check: func(t *testing.T, _ string, got []Device) {
				var order []string
				for i, d := range got {
					if d.Index != i {
						t.Errorf("device %d has Index %d", i, d.Index)
					}
					order = append(order, d.PCIBusID)
				}
				if strings.Join(order, " ") != "0000:03:00.0 0000:0a:00.0 0000:c1:00.0" {
					t.Errorf("order %v, want PCI order", order)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeTree(t, root, tc.files)
			got, err := NewSysfs(root).Read(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Read: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Read error = %v, want one containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if tc.wantErr != "" {
				if !strings.HasPrefix(err.Error(), "sysfs: ") {
					t.Errorf("error %q does not name the reader", err)
				}
				if errors.Is(err, ErrNoDevice) != tc.noDev {
					t.Errorf("errors.Is(ErrNoDevice) = %v, want %v", !tc.noDev, tc.noDev)
				}
				if tc.wantCard != "" {
					var ce *CardError
					if !errors.As(err, &ce) || ce.Card != tc.wantCard {
						t.Errorf("error %v: want a CardError for %s", err, tc.wantCard)
					}
				}
			}
			if tc.check != nil {
				tc.check(t, root, got)
			}
			for _, d := range got {
				if d.VRAMTotal == 0 {
					t.Errorf("device with zero total reported: %s", fmtDevice(d))
				}
			}
		})
	}
}

func TestSysfsCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := NewSysfs(testdata(t, "sysfs", "rx6800")).Read(ctx)
	if !errors.Is(err, context.Canceled) || got != nil {
		t.Fatalf("Read on a cancelled context = %v, %v; want context.Canceled", got, err)
	}
}

func TestNewSysfsDefaultRoot(t *testing.T) {
	t.Parallel()
	r := NewSysfs("").(*sysfsReader)
	if r.root != "/sys" || r.Name() != "sysfs" {
		t.Errorf("NewSysfs(\"\") = root %q name %q", r.root, r.Name())
	}
}
