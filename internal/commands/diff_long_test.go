//go:build long

package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/testenv"
)

// TestDiffOpenMetricsFixtureLong: promstore's OpenMetrics dump of the
// python-0.25-files fixture equals its store and Python's text exposition
// of it (make test-long; it was long while diff read OpenMetrics with
// expfmt's ABNF parser, about 5 ms a line).
func TestDiffOpenMetricsFixtureLong(t *testing.T) {
	fx := testenv.FixturesDir(t)
	dir := filepath.Join(fx, "python-0.25-files", "store")
	code, om, stderr := runCLI(t, nil, "dump", "--dir", dir, "-o", "openmetrics")
	if code != 0 {
		t.Fatalf("dump: %d %s", code, stderr)
	}
	omFile := filepath.Join(t.TempDir(), "dump.om")
	if err := os.WriteFile(omFile, []byte(om), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{dir, filepath.Join(fx, "python-0.25-files", "expected.prom")} {
		code, out, stderr := runCLI(t, nil, "diff", "--tolerance", "1e-9", other, omFile)
		if code != 0 || !strings.HasPrefix(out, "equal: 19 families, 595 series") {
			t.Errorf("diff %s %s: exit %d, want 0\n%s%s", other, omFile, code, out, stderr)
		}
	}
}
