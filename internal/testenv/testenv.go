// Package testenv holds the helpers tests use to reach real parts: Python
// with prometheus_client, redis-server (standalone and Cluster), and the
// shared fixtures. A missing part skips a test on a laptop and fails it
// when CI=true.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where missing parts
// are failures, not skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test, or fails it in CI, because a part it needs
// is missing.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and a required part is missing: "+format, args...)
	}
	t.Skipf("skipped (not in CI): "+format, args...)
}

// RepoRoot returns the repository's top directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testenv source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// FixturesDir returns testdata/fixtures, the stores real Python wrote
// and their Python output (see its README.md), or the directory
// PROMSTORE_FIXTURES names.
func FixturesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PROMSTORE_FIXTURES")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "testdata", "fixtures")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("fixtures not found at %s", dir)
	}
	return dir
}
