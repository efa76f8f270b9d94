package filestore

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestKeptLiveShardUnchanged: a running process's shard that revalue
// cannot read (no entries; a used size of 16 MiB or more) is still
// recognized as unchanged by the hash of its copied bytes: not parsed
// again, and the read is Unchanged (serve serves its last answer again).
func TestKeptLiveShardUnchanged(t *testing.T) {
	empty := make([]byte, 4096)
	binary.LittleEndian.PutUint32(empty, 8)
	// Legacy layout, more than 16 MiB used (long keys: few entries).
	big := make([]byte, 8)
	long := strings.Repeat("x", 2000)
	for i := 0; len(big) < unambiguousBelow+4096; i++ {
		key := fmt.Sprintf(`["big", "big_total", {"i": "%07d", "path": "%s"}, "Big."]`, i, long)
		big = binary.LittleEndian.AppendUint32(big, uint32(len(key)))
		big = append(big, key...)
		for range padding(len(key)) {
			big = append(big, ' ')
		}
		big = binary.LittleEndian.AppendUint64(big, uint64(i))
	}
	binary.LittleEndian.PutUint32(big, uint32(len(big)))
	for _, tc := range []struct {
		name, file string
		data       []byte
	}{
		{"no entries", "counter_777.db", empty},
		{"16 MiB used", "counter_888.db", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, kept, fresh := keptStore(t)
			if err := os.WriteFile(filepath.Join(dir, tc.file), tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			kept.alive = func(string) store.Liveness { return store.AliveYes }
			kept.KeepReads(false)
			kept.KeepReads(true)
			sameRead(t, kept, fresh, "first read")
			for i := range 2 {
				sameRead(t, kept, fresh, "read again")
				if st := kept.ReadStats(); st.Reparsed != 0 || !st.Unchanged {
					t.Errorf("read %d, nothing written: %+v, want nothing parsed again, unchanged", i+2, st)
				}
			}
		})
	}
}
