//go:build !long

package cleanup

// incrementalSeeds is how many random sequences
// TestIncrementalReadsEqualFullReads runs (more with the long tag).
const incrementalSeeds = 1
