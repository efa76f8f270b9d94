//go:build race

package hugeheap

// raceEnabled: under the race detector every heap byte has shadow memory
// too, and marking a block takes seconds; Prepare does nothing.
const raceEnabled = true
