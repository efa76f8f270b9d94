package filestore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/promstore/promstore/internal/store"
)

// Bounds of NearbyStores' look: directory entries read in the store and
// in each subdirectory, stores named.
const (
	nearbyEntries = 256
	nearbyStores  = 5
)

// NearbyStores names the subdirectories of the store's directory that
// hold shard files (a parent of PROMETHEUS_MULTIPROC_DIR given by
// mistake), as the --dir flag that selects each, for the message that
// the directory holds no shards (store.StoreFinder). It reads at most
// nearbyEntries entries of the directory and of each subdirectory, one
// level down, and names at most nearbyStores, sorted.
func (s *Store) NearbyStores(ctx context.Context) ([]string, error) {
	subs, err := readNames(s.dir, nearbyEntries)
	if err != nil {
		return nil, err
	}
	sort.Strings(subs)
	var out []string
	for _, name := range subs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sub := filepath.Join(s.dir, name)
		if strings.HasPrefix(name, ".") {
			continue
		}
		names, err := readNames(sub, nearbyEntries) // fails on a non-directory
		if err != nil {
			continue
		}
		for _, n := range names {
			if _, ok, err := ShardFile(n); ok && err == nil {
				out = append(out, "--dir "+store.ShellWord(sub))
				break
			}
		}
		if len(out) == nearbyStores {
			break
		}
	}
	return out, nil
}

// readNames returns up to n names of directory dir's entries.
func readNames(dir string, n int) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(n)
	if len(names) > 0 || errors.Is(err, io.EOF) {
		err = nil // an empty directory, or a later entry's error: take what was read
	}
	return names, err
}
