package commands

import (
	"context"
	"io"
	"os"
	"testing"
)

// benchDir runs promstore with args and --dir set to the directory named
// by PROMSTORE_BENCH_DIR (for example a store written by
// scripts/bench-dump.sh), its output to io.Discard.
func benchDir(b *testing.B, args ...string) {
	dir := os.Getenv("PROMSTORE_BENCH_DIR")
	if dir == "" {
		b.Skip("set PROMSTORE_BENCH_DIR to a multiprocess directory")
	}
	f, _, _ := testFactory(nil)
	f.IO.Out = io.Discard
	args = append(args, "--dir", dir)
	for i := 0; i < b.N; i++ {
		if code := Execute(context.Background(), f, args); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}

// BenchmarkDumpDir dumps the directory named by PROMSTORE_BENCH_DIR.
func BenchmarkDumpDir(b *testing.B) { benchDir(b, "dump") }

// BenchmarkAnalyzeDir analyses the same directory: analyze must be no
// slower than dump.
func BenchmarkAnalyzeDir(b *testing.B) { benchDir(b, "analyze", "-o", "json") }
