package gpu

import (
	"log/slog"

	"github.com/catalystbot/sentiment/config"
)

// FromConfig builds the manager the configuration describes: it watches
// VRAM with SENTIMENT_GPU_READER's reader ("auto" tries sysfs, rocm-smi,
// amd-smi and nvidia-smi; "none" watches no VRAM but still reloads a
// crashed runner) and acts through the local Ollama server, holding queue
// (the local tier's GPU queue). There is no manager (nil, nil) without a
// local Ollama tier (ctl nil): an OpenAI-compatible server has no unload
// to call.
func FromConfig(cfg config.Config, ctl Controller, queue Queue, log *slog.Logger) (*Manager, error) {
	if ctl == nil {
		return nil, nil
	}
	reader, err := Select(cfg.GPUReader, cfg.GPUSysfsRoot, nil)
	if err != nil {
		return nil, err
	}
	return NewManager(ManagerConfig{
		Reader:          reader,
		Controller:      ctl,
		Queue:           queue,
		MaxConcurrent:   cfg.Local.MaxConcurrent,
		Policy:          cfg.GPU,
		CleanupInterval: cfg.GPUCleanupInterval,
		PCIBusID:        cfg.GPU.PCIBusID,
	}, log)
}
