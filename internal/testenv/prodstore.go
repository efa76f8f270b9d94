package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ProdStore returns the directory of scripts/prodstore.py's store of the
// given size ("big", "churn" or "small"), written by the real
// prometheus_client once into $BENCH_ROOT (default the temporary
// directory) and reused, as scripts/bench-dump.sh does; or
// $PROMSTORE_BENCH_DIR when set. For benchmarks: writing the big store
// takes minutes.
func ProdStore(tb testing.TB, size string) string {
	tb.Helper()
	if dir := os.Getenv("PROMSTORE_BENCH_DIR"); dir != "" {
		return dir
	}
	root := os.Getenv("BENCH_ROOT")
	if root == "" {
		root = os.TempDir()
	}
	dir := filepath.Join(root, "promstore-bench-prod-"+size)
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir
	}
	tb.Logf("writing the %s store with the real prometheus_client into %s (minutes) ...", size, dir)
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(Python(tb), filepath.Join(RepoRoot(tb), "scripts", "prodstore.py"), dir, "--size", size)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("prodstore.py: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}
