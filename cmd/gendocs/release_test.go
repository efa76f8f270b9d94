//go:build long

package main

// The release build's tests (`make test-long`, which CI runs): building
// the whole program once more, as goreleaser does, takes minutes on a
// fresh machine, which `make test` does not wait for.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// The values the release ldflags are filled with in these tests.
var releaseValues = map[string]string{
	"Version":    "1.2.3-test",
	"FullCommit": "0123456789abcdef0123456789abcdef01234567",
	"CommitDate": "2025-01-02T03:04:05Z",
}

// ldflagX matches one `-X pkg.var={{.Field}}` of goreleaser.yaml.
var ldflagX = regexp.MustCompile(`-X ([\w./-]+)=\{\{\s*\.(\w+)\s*\}\}`)

// releaseLdflags returns the -X flags goreleaser.yaml passes to the linker,
// with its templates filled from releaseValues.
func releaseLdflags(root string) ([]string, error) {
	cfg, err := os.ReadFile(filepath.Join(root, "goreleaser.yaml"))
	if err != nil {
		return nil, err
	}
	var flags []string
	for _, m := range ldflagX.FindAllStringSubmatch(string(cfg), -1) {
		v, ok := releaseValues[m[2]]
		if !ok {
			return nil, fmt.Errorf("goreleaser.yaml: no test value for template field .%s in %q", m[2], m[0])
		}
		flags = append(flags, "-X", m[1]+"="+v)
	}
	return flags, nil
}

// releaseBinary builds ./cmd/promstore as the release does (CGO_ENABLED=0,
// -trimpath, goreleaser.yaml's -X flags ld) and returns its path.
func releaseBinary(t *testing.T, ld []string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "promstore")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", strings.Join(ld, " "), "-o", bin, "./cmd/promstore")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/promstore: %v\n%s", err, out)
	}
	return bin
}

// `promstore version` shows what goreleaser's ldflags inject.
func TestReleaseLdflagsReachVersion(t *testing.T) {
	ld, err := releaseLdflags(testenv.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	var vars []string
	for i := 1; i < len(ld); i += 2 {
		name, _, _ := strings.Cut(ld[i], "=")
		vars = append(vars, name)
	}
	sort.Strings(vars)
	const pkg = "github.com/promstore/promstore/internal/commands."
	if want := []string{pkg + "commit", pkg + "date", pkg + "version"}; strings.Join(vars, " ") != strings.Join(want, " ") {
		t.Fatalf("goreleaser.yaml sets %q, want %q", vars, want)
	}
	got := runBinary(t, releaseBinary(t, ld), cleanEnv(), "version")
	want := "promstore 1.2.3-test (commit 0123456789ab, built 2025-01-02T03:04:05Z) "
	if !strings.HasPrefix(got, want) {
		t.Errorf("promstore version = %q, want prefix %q", got, want)
	}
}
