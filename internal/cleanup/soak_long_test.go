//go:build long

package cleanup

import "testing"

// TestExporterReaderSoak is TestExporterReaderNeverDoubleCounts with 4
// rounds of 15 writers (make test-long).
func TestExporterReaderSoak(t *testing.T) { exporterReaderRace(t, 4, 15) }

// TestPythonCollectorSoak is TestPythonCollectorExactOrRaises with 4
// rounds of 15 writers (make test-long).
func TestPythonCollectorSoak(t *testing.T) { pythonCollectorRace(t, 4, 15) }
