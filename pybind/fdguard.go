package pybind

import (
	"strconv"
	"strings"

	core "github.com/gofutures/gofutures/gofutures"
)

// OwnedDescriptors returns the descriptors that gofutures and the Go
// runtime need open, comma-separated (core.OwnedDescriptors), for the
// Python package's guard of os.closerange (gofutures/_fdguard.py).
func OwnedDescriptors() string {
	fds := core.OwnedDescriptors()
	parts := make([]string, len(fds))
	for i, fd := range fds {
		parts[i] = strconv.Itoa(fd)
	}
	return strings.Join(parts, ",")
}
