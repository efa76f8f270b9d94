package filestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// gotSample is a sample as a test compares it.
type gotSample struct {
	shard string
	key   string
	value float64
	ts    float64
}

// scanAll scans st and returns the samples and the scan's error.
func scanAll(t testing.TB, st store.Reader) ([]gotSample, error) {
	t.Helper()
	var got []gotSample
	err := st.Scan(context.Background(), func(s store.Sample) error {
		got = append(got, gotSample{s.Shard.String(), s.Key.Text, s.Value, s.Timestamp})
		return nil
	})
	return got, err
}

// openDir opens dir as a file store with layout.
func openDir(t testing.TB, dir string, layout int) *Store {
	t.Helper()
	st, err := Open(context.Background(), dir, Options{Layout: layout})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixtureStore returns the store folder of a fixture, e.g. "python-0.25-files".
func fixtureStore(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testenv.FixturesDir(t), name, "store")
}
