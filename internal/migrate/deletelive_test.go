package migrate

import (
	"context"
	"runtime"
	"slices"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/testenv"
)

// TestDeleteSourceKeepsRunning: --delete-source keeps the shards of
// processes that run on this host (a worker writes on into the file it has
// mapped: unlinked, its later increments are lost) and deletes the rest,
// also when a running process wrote to its shard since the plan was read.
func TestDeleteSourceKeepsRunning(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("pid probing needs Unix signals")
	}
	dead, live := testenv.DeadPID(t), testenv.LivePID(t)
	id := func(kind store.Kind, mode, pid string) store.ShardID {
		return store.ShardID{Kind: kind, Mode: mode, PID: pid}
	}
	tests := []struct {
		name        string
		pids        []string
		liveWrites  bool // the running process writes after the plan
		wantDeleted []string
		wantKept    []string
	}{
		{name: "dead only", pids: []string{dead}, wantDeleted: []string{dead}},
		{name: "running only", pids: []string{live}, wantKept: []string{live}},
		{name: "both", pids: []string{dead, live}, wantDeleted: []string{dead}, wantKept: []string{live}},
		{name: "running one writes meanwhile", pids: []string{dead, live}, liveWrites: true, wantDeleted: []string{dead}, wantKept: []string{live}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
			for _, pid := range tt.pids {
				write(t, src, id(store.KindCounter, "", pid), kReq, 5.0)
				write(t, src, id(store.KindGauge, "livesum", pid), kTmp, 1.0)
			}
			p, err := run(t, src, dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.liveWrites {
				write(t, src, id(store.KindCounter, "", live), kReq, 6.0)
			}
			n, kept, err := DeleteSource(ctx, p, src, store.ProcessAlive)
			if err != nil {
				t.Fatalf("DeleteSource: %v", err)
			}
			if want := 2 * len(tt.wantDeleted); n != want {
				t.Errorf("deleted %d shards, want %d", n, want)
			}
			var keptPIDs []string
			for _, k := range kept {
				if !slices.Contains(keptPIDs, k.PID) {
					keptPIDs = append(keptPIDs, k.PID)
				}
			}
			if !slices.Equal(keptPIDs, tt.wantKept) {
				t.Errorf("kept the shards of %v, want %v", keptPIDs, tt.wantKept)
			}
			infos, err := src.Shards(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, in := range infos {
				if !slices.Contains(left, in.ID.PID) {
					left = append(left, in.ID.PID)
				}
			}
			if !slices.Equal(left, tt.wantKept) {
				t.Errorf("the source holds shards of %v, want %v", left, tt.wantKept)
			}
		})
	}
}
