//go:build long

package cleanup

// incrementalSeeds is how many random sequences
// TestIncrementalReadsEqualFullReads runs.
const incrementalSeeds = 8
