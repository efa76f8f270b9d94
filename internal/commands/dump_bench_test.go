package commands

import (
	"context"
	"io"
	"os"
	"testing"
)

// BenchmarkDumpDir dumps the directory named by PROMSTORE_BENCH_DIR (for
// example a store written by scripts/bench-dump.sh) to io.Discard.
func BenchmarkDumpDir(b *testing.B) {
	dir := os.Getenv("PROMSTORE_BENCH_DIR")
	if dir == "" {
		b.Skip("set PROMSTORE_BENCH_DIR to a multiprocess directory")
	}
	f, _, _ := testFactory(nil)
	f.IO.Out = io.Discard
	for i := 0; i < b.N; i++ {
		if code := Execute(context.Background(), f, []string{"dump", "--dir", dir}); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
