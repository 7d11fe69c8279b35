package pybind

import core "github.com/gofutures/gofutures/gofutures"

// OwnedDescriptors returns the descriptors that gofutures and the Go
// runtime need open (core.OwnedDescriptors), for the Python package's guard
// of os.closerange (gofutures/_fdguard.py).
func OwnedDescriptors() []int { return core.OwnedDescriptors() }
