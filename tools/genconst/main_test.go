package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed header and Python module are what the generator writes from
// the core's constants now: a constant changed in Go without `go generate`
// fails here, before C or Python can disagree with the core.
func TestGeneratedFilesUpToDate(t *testing.T) {
	header, python := render()
	for path, want := range map[string][]byte{headerPath: header, pythonPath: python} {
		got, err := os.ReadFile(filepath.Join("..", "..", path))
		if err != nil {
			t.Fatalf("%s: %v (run `go generate ./gofutures/`)", path, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what tools/genconst writes now: run `go generate ./gofutures/` and commit it", path)
		}
	}
}
