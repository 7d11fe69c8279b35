package pybind

// The zygotes (core.Zygote) that fork process-pool workers: one helper
// process per distinct command, shared by every pool that names it
// (ProcessPoolConfig.ZygoteCommand) for the life of this process.

import (
	"strings"
	"sync"

	core "github.com/gofutures/gofutures/gofutures"
)

var (
	zygotesMu sync.Mutex                  // protects zygotes
	zygotes   = map[string]*core.Zygote{} // by command, NUL-joined
)

// sharedZygote returns the zygote started by argv, made on first use (its
// helper starts at its first fork request); nil for an empty argv (workers
// start by exec).
func sharedZygote(argv []string) *core.Zygote {
	if len(argv) == 0 {
		return nil
	}
	key := strings.Join(argv, "\x00")
	zygotesMu.Lock()
	defer zygotesMu.Unlock()
	z := zygotes[key]
	if z == nil {
		z = core.NewZygote(argv)
		zygotes[key] = z
	}
	return z
}
