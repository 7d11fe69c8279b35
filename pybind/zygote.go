package pybind

// The process-wide zygote (core.Zygote) that forks process-pool workers.
// Python names it before starting each pool (SetZygote), so that the
// GOFUTURES_ZYGOTE opt-out is read per pool.

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	core "github.com/gofutures/gofutures/gofutures"
)

var (
	zygoteMu   sync.Mutex   // protects the fields below
	zygote     *core.Zygote // nil: pools start their workers by exec
	zygoteArgv []string     // what started the last zygote, kept for reuse
	zygoteLast *core.Zygote
)

// SetZygote sets how the next process pools start their workers: argvJSON
// is a JSON list, the command that starts the zygote (the helper process,
// started once and then reused for as long as the command stays the same),
// or "" to start every worker by exec. prepareJSON is a JSON object, what
// the zygote readies before it forks (core.Zygote.SetPrepare; only the
// zygote reads it).
func SetZygote(argvJSON, prepareJSON string) error {
	zygoteMu.Lock()
	defer zygoteMu.Unlock()
	if argvJSON == "" {
		zygote = nil
		return nil
	}
	var argv []string
	if err := json.Unmarshal([]byte(argvJSON), &argv); err != nil || len(argv) == 0 {
		return fmt.Errorf("SetZygote wants a JSON list of strings (the zygote's command), got %q", argvJSON)
	}
	if !json.Valid([]byte(prepareJSON)) {
		return fmt.Errorf("SetZygote wants a JSON object (what the zygote readies), got %q", prepareJSON)
	}
	if zygoteLast == nil || !slices.Equal(argv, zygoteArgv) {
		zygoteLast, zygoteArgv = core.NewZygote(argv), argv
	}
	zygoteLast.SetPrepare([]byte(prepareJSON))
	zygote = zygoteLast
	return nil
}

func currentZygote() *core.Zygote {
	zygoteMu.Lock()
	defer zygoteMu.Unlock()
	return zygote
}
