// Package gpu watches the GPU that runs the local language model, so that
// the service can act before the model server runs the card out of memory.
//
// The old bot's GPU crashed when Ollama exhausted VRAM: too many requests
// in flight, each parallel slot adding its own KV cache, until the runner
// died with HTTP 500 and the desktop froze. That VRAM belongs to Ollama's
// runner process, not to this service; no client call can free it, and only
// Ollama can (unload the model, fewer slots, a restart). What this service
// can do is read the card's memory where the driver publishes it, stop
// sending work while pressure is high, and ask Ollama to unload and reload
// when it must.
//
// The readers return one Device per card with total, used and free VRAM in
// bytes and, where the source can tell, busy percent and temperature:
//
//   - NewSysfs reads the amdgpu driver's files under /sys/class/drm/cardN/device
//     (mem_info_vram_total, mem_info_vram_used, gpu_busy_percent, hwmon). They
//     are world-readable, need neither root nor ROCm, cost microseconds, and
//     are the very numbers Ollama schedules with. It is the first choice.
//   - NewROCmSMI and NewAMDSMI run AMD's command-line tools and parse their JSON:
//     a fallback for machines where sysfs is not reachable (a container
//     without /sys/class/drm, say). They are Python programs that take
//     hundreds of milliseconds per call.
//   - NewNvidiaSMI runs nvidia-smi with a CSV query: the NVIDIA driver exposes
//     no memory files under /sys/class/drm, and NVIDIA's Go bindings (go-nvml)
//     need cgo.
//
// Select builds the reader named by configuration (SENTIMENT_GPU_READER);
// "auto" tries them in that order. The package uses no cgo, so the binary
// builds with CGO_ENABLED=0 and starts on machines without any GPU driver.
//
// A reading that fails is an error that says why (which card, which file,
// what the tool printed), never a Device full of zeros: the policy treats an
// unknown reading as unknown, not as an empty card. Figures are device-wide:
// mem_info_vram_used and its equivalents count every process on the card
// (the desktop, a browser), not only Ollama.
//
// On top of the readers, the Manager (manager.go) is the policy: it polls
// VRAM, cuts the GPU queue's concurrency above high water, and at critical,
// after a runner crash or after failures in a row closes the local tier's
// gate, drains the calls on the GPU, has Ollama unload the model (through
// its Controller), checks that the memory came back, warms the model again
// and reopens the gate; when the memory does not come back it backs off
// and runs the owner's restart command. That cycle is a state machine
// (recovery.go): named phases and a pure transition function, which Run
// drives. The package knows nothing of the service's configuration: the
// composition root calls Select and NewManager with a Policy.
//
// Text that reaches Status from outside (a tool's complaint, a sysfs file,
// a model server's error) is made valid UTF-8 and clipped at rune
// boundaries: Status becomes a protobuf message, whose strings must be
// valid UTF-8.
package gpu
