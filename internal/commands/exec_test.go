package commands

import (
	"bytes"
	"context"
	"os/exec"
	"sort"
	"testing"
	"time"
)

// runCmd runs a program and returns its stdout, failing the test with its
// stderr when it fails.
func runCmd(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
	}
	return out.Bytes()
}

func sortStrings(s []string) { sort.Strings(s) }
