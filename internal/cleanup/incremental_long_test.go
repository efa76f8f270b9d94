//go:build long

package cleanup

import (
	"fmt"
	"testing"
)

// TestIncrementalReadsSoak is TestIncrementalReadsEqualFullReads over 8
// more random sequences (make test-long runs it).
func TestIncrementalReadsSoak(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			testIncremental(t, seed)
		})
	}
}
