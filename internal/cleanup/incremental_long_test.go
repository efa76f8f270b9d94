//go:build long

package cleanup

import (
	"fmt"
	"testing"
)

// TestIncrementalReadsSoak is TestIncrementalReadsEqualFullReads over 8
// more random sequences (make test-long runs it).
func TestIncrementalReadsSoak(t *testing.T) {
	revalued := 0
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			revalued += testIncremental(t, seed)
		})
	}
	if revalued == 0 {
		t.Fatal("the server revalued no read: nothing tested")
	}
}
