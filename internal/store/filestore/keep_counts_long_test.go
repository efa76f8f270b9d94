//go:build long

package filestore

import (
	"fmt"
	"testing"
)

// TestLongKeptCountsRandom is TestKeptCountsRandom with 6 seeds of 300
// steps.
func TestLongKeptCountsRandom(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { testKeptCountsRandom(t, seed, 300) })
	}
}
