package pybind

// The environment of the next process pools' workers. Python passes its
// os.environ before starting each pool: the Go runtime's own copy of the
// environment is the one it saw when the library loaded, and a worker must
// see what the parent set since (as a forked or spawned stdlib worker does).

import (
	"encoding/json"
	"fmt"
	"sync"
)

var (
	workerEnvMu sync.Mutex // protects workerEnv
	workerEnv   []string   // nil: the Go runtime's environment
)

// SetWorkerEnv sets the environment ("NAME=value" entries, as a JSON list)
// of the workers of the process pools started from now on; "" goes back to
// the Go runtime's environment.
func SetWorkerEnv(envJSON string) error {
	var env []string
	if envJSON != "" {
		if err := json.Unmarshal([]byte(envJSON), &env); err != nil {
			return fmt.Errorf("SetWorkerEnv wants a JSON list of NAME=value strings, got %.80q", envJSON)
		}
		if env == nil {
			env = []string{} // an empty environment, not the runtime's
		}
	}
	workerEnvMu.Lock()
	workerEnv = env
	workerEnvMu.Unlock()
	return nil
}

func currentWorkerEnv() []string {
	workerEnvMu.Lock()
	defer workerEnvMu.Unlock()
	return workerEnv
}
