package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

// TestDeadPIDsRealProcesses: shards of running processes stay byte for
// byte, shards of exited ones are removed (live*), kept (all) or
// compacted, and the dump changes only by the live* series.
func TestDeadPIDsRealProcesses(t *testing.T) {
	for _, layout := range []int{filestore.LayoutLegacy, filestore.LayoutTimestamp} {
		t.Run(fmt.Sprintf("layout%d", layout), func(t *testing.T) {
			dir := t.TempDir()
			live := []string{testenv.LivePID(t), testenv.LivePID(t)}
			dead := []string{testenv.DeadPID(t), testenv.DeadPID(t), testenv.DeadPID(t)}
			for i, pid := range append(append([]string{}, live...), dead...) {
				genShards(t, dir, pid, layout, float64(i+1)*1.25)
			}
			testenv.AgeFiles(t, dir)
			before := dbFiles(t, dir)
			want := dump(t, withoutLiveGauges(t, dir, dead...))

			res := runCleanup(t, dir, Options{DeadPIDs: true})
			after := dbFiles(t, dir)

			for name, b := range before {
				id, _ := store.ParseShardName(strings.TrimSuffix(name, ".db"))
				isLive := id.PID == live[0] || id.PID == live[1]
				_, still := after[name]
				switch {
				case isLive && after[name] != b:
					t.Errorf("%s of a running process changed (present %v)", name, still)
				case !isLive && id.Kind == store.KindGauge && id.Mode == "all" && !still:
					t.Errorf("%s (mode all of a dead pid) was removed without --drop-dead-gauges", name)
				case !isLive && !(id.Kind == store.KindGauge && id.Mode == "all") && still:
					t.Errorf("%s of a dead pid is still there", name)
				}
			}
			for _, a := range []string{"counter", "histogram", "summary", "gauge_min", "gauge_max", "gauge_sum"} {
				if _, ok := after[a+"_"+ArchivePIDOf(1)+".db"]; !ok {
					t.Errorf("no %s_archive-1.db; files: %v", a, names(after))
				}
			}
			for _, a := range []string{"gauge_all", "gauge_liveall", "gauge_livesum"} {
				if _, ok := after[a+"_"+ArchivePIDOf(1)+".db"]; ok {
					t.Errorf("unexpected %s_archive-1.db", a)
				}
			}
			infos := shardInfos(t, dir)
			for name, in := range infos {
				if IsArchivePID(in.ID.PID) && in.Layout != layout {
					t.Errorf("%s has layout %d, want %d (the layout of its sources)", name, in.Layout, layout)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, JournalName)); !os.IsNotExist(err) {
				t.Errorf("journal left behind: %v", err)
			}
			compareDumps(t, dump(t, dir), want, false)

			s := res.Plan.Summary()
			nModes := 8
			if layout == filestore.LayoutTimestamp {
				nModes = 10
			}
			wantRemoved := len(dead) * nModes / 2
			wantCompacted := len(dead) * (3 + (nModes/2 - 1))
			if s.Removed != wantRemoved || s.Compacted != wantCompacted || s.Dropped != 0 {
				t.Errorf("summary %+v, want removed %d compacted %d", s, wantRemoved, wantCompacted)
			}
			if s.Kept != len(live)*(3+nModes)+len(dead) {
				t.Errorf("kept %d, want %d", s.Kept, len(live)*(3+nModes)+len(dead))
			}
			if s.BytesFreed <= 0 {
				t.Errorf("bytes freed %d", s.BytesFreed)
			}
		})
	}
}

// TestArchiveCompactsFurther: a second run with new dead pids merges them
// into the existing archives; the dump keeps its invariant.
func TestArchiveCompactsFurther(t *testing.T) {
	dir := t.TempDir()
	first := []string{testenv.DeadPID(t), testenv.DeadPID(t)}
	for i, pid := range first {
		genShards(t, dir, pid, 16, float64(i)+0.5)
	}
	live := testenv.LivePID(t)
	genShards(t, dir, live, 16, 9)
	testenv.AgeFiles(t, dir)
	runCleanup(t, dir, Options{DeadPIDs: true})

	second := []string{testenv.DeadPID(t), testenv.DeadPID(t)}
	for i, pid := range second {
		genShards(t, dir, pid, 16, float64(i)+3.75)
	}
	testenv.AgeFiles(t, dir)
	want := dump(t, withoutLiveGauges(t, dir, second...))
	runCleanup(t, dir, Options{DeadPIDs: true})
	compareDumps(t, dump(t, dir), want, false)
	for name := range dbFiles(t, dir) {
		id, _ := store.ParseShardName(strings.TrimSuffix(name, ".db"))
		if id.PID != live && !IsArchivePID(id.PID) && id.Mode != "all" {
			t.Errorf("%s left after the second run", name)
		}
	}
}

// TestDropDeadGauges removes mode-all gauges of dead pids: their pid
// series leave the dump, nothing else changes.
func TestDropDeadGauges(t *testing.T) {
	dir := t.TempDir()
	dead := testenv.DeadPID(t)
	genShards(t, dir, dead, 16, 2)
	genShards(t, dir, testenv.LivePID(t), 16, 3)
	testenv.AgeFiles(t, dir)
	wantDir := withoutLiveGauges(t, dir, dead)
	os.Remove(filepath.Join(wantDir, "gauge_all_"+dead+".db"))
	want := dump(t, wantDir)
	res := runCleanup(t, dir, Options{DeadPIDs: true, DropDeadGauges: true})
	compareDumps(t, dump(t, dir), want, false)
	if s := res.Plan.Summary(); s.Dropped != 1 {
		t.Errorf("dropped %d, want 1", s.Dropped)
	}
}

// TestDryRunChangesNothing.
func TestDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	genShards(t, dir, testenv.DeadPID(t), 16, 2)
	testenv.AgeFiles(t, dir)
	before := dbFiles(t, dir)
	res := runCleanup(t, dir, Options{DeadPIDs: true, DryRun: true})
	if s := res.Plan.Summary(); s.Compacted == 0 || s.Removed == 0 {
		t.Errorf("dry run planned nothing: %+v", s)
	}
	after := dbFiles(t, dir)
	if fmt.Sprint(names(before)) != fmt.Sprint(names(after)) {
		t.Errorf("dry run changed files: %v -> %v", names(before), names(after))
	}
	for n, b := range before {
		if after[n] != b {
			t.Errorf("dry run changed %s", n)
		}
	}
}

// TestSelection covers --pid, --stale-after, --min-idle and pids that
// are not numbers.
func TestSelection(t *testing.T) {
	now := time.Now()
	dead := func(string) store.Liveness { return store.AliveNo }
	tests := []struct {
		name      string
		opts      Options
		ages      map[string]time.Duration // pid -> age of its shards
		wantTaken []string
		wantErr   string
	}{
		{"dead pids skip fresh", Options{DeadPIDs: true, Alive: func(p string) store.Liveness {
			if p == "300" {
				return store.AliveYes
			}
			return store.AliveNo
		}},
			map[string]time.Duration{"100": time.Hour, "200": 10 * time.Second, "300": time.Second, "worker-a": time.Hour}, []string{"100"}, ""},
		{"other namespace refused", Options{DeadPIDs: true, Alive: dead},
			map[string]time.Duration{"100": time.Hour, "200": 10 * time.Second}, nil, "another pid namespace"},
		{"min-idle off", Options{DeadPIDs: true, Alive: dead, MinIdle: -1},
			map[string]time.Duration{"100": time.Hour, "200": 10 * time.Second}, []string{"100", "200"}, ""},
		{"named pid", Options{PIDs: []string{"worker-a"}, Alive: dead},
			map[string]time.Duration{"100": time.Hour, "worker-a": time.Hour}, []string{"worker-a"}, ""},
		{"named live pid never", Options{PIDs: []string{"100"}, Alive: func(string) store.Liveness { return store.AliveYes }},
			map[string]time.Duration{"100": time.Hour}, nil, ""},
		{"stale after", Options{StaleAfter: 30 * time.Minute, Alive: func(string) store.Liveness { return store.AliveUnknown }},
			map[string]time.Duration{"100": time.Hour, "200": 10 * time.Minute, "worker-a": 2 * time.Hour}, []string{"100", "worker-a"}, ""},
		{"nothing selected", Options{}, map[string]time.Duration{"100": time.Hour}, nil, "nothing selected"},
		{"archive by name", Options{PIDs: []string{ArchivePID}}, map[string]time.Duration{"100": time.Hour}, nil, "never cleaned up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := filestore.Open(context.Background(), dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			k := key(t, "c", "c_total", "C.")
			for pid, age := range tt.ages {
				id := store.ShardID{Kind: store.KindCounter, PID: pid}
				if err := st.WriteShard(context.Background(), id, []store.Sample{{Key: k, Value: 1}}); err != nil {
					t.Fatal(err)
				}
				mt := now.Add(-age)
				if err := os.Chtimes(filepath.Join(dir, id.String()+".db"), mt, mt); err != nil {
					t.Fatal(err)
				}
			}
			opts := tt.opts
			opts.Now = func() time.Time { return now }
			opts.DryRun = true
			p, err := MakePlan(context.Background(), FileTarget(st), opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.pids(); fmt.Sprint(got) != fmt.Sprint(tt.wantTaken) {
				t.Errorf("selected %v, want %v", got, tt.wantTaken)
				for _, sp := range p.Shards {
					t.Logf("%s: %s (%s)", sp.Info.ID, sp.Action, sp.Reason)
				}
			}
		})
	}
}

// TestMergeRules checks the archive value of each merge rule.
func TestMergeRules(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		mode   string
		kind   store.Kind
		values []float64
		ts     []float64
		want   float64
		wantTS float64
	}{
		{"", store.KindCounter, []float64{1, 2.5, 3}, nil, 6.5, 0},
		{"sum", store.KindGauge, []float64{1, -2, math.Inf(1)}, nil, math.Inf(1), 0},
		{"min", store.KindGauge, []float64{nan, 3, 1, nan, 2}, nil, 1, 0},
		{"min", store.KindGauge, []float64{nan, nan}, nil, nan, 0},
		{"max", store.KindGauge, []float64{2, nan, 7, -1}, nil, 7, 0},
		{"max", store.KindGauge, []float64{math.Inf(-1), nan}, nil, math.Inf(-1), 0},
		{"mostrecent", store.KindGauge, []float64{1, 2, 3, 4}, []float64{10, 30, 30, 20}, 2, 30},
		{"mostrecent", store.KindGauge, []float64{1, 2}, []float64{0, 0}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.kind, tt.mode, tt.values), func(t *testing.T) {
			var a accumulator
			id := store.ShardID{Kind: tt.kind, Mode: tt.mode}
			for i, v := range tt.values {
				ts := 0.0
				if tt.ts != nil {
					ts = tt.ts[i]
				}
				a.add(id, v, ts)
			}
			if !(a.value == tt.want || math.IsNaN(a.value) && math.IsNaN(tt.want)) || a.ts != tt.wantTS {
				t.Errorf("got %v@%v, want %v@%v", a.value, a.ts, tt.want, tt.wantTS)
			}
		})
	}
}

// TestMixedLayouts: an archive merging 8- and 16-byte shards is 16-byte.
func TestMixedLayouts(t *testing.T) {
	dir := t.TempDir()
	genShards(t, dir, testenv.DeadPID(t), 8, 1)
	genShards(t, dir, testenv.DeadPID(t), 16, 2)
	testenv.AgeFiles(t, dir)
	runCleanup(t, dir, Options{DeadPIDs: true})
	for name, in := range shardInfos(t, dir) {
		if IsArchivePID(in.ID.PID) && in.Layout != 16 {
			t.Errorf("%s: layout %d, want 16", name, in.Layout)
		}
	}
}

// TestLegacyKeysNotCompacted: shards with 3-element keys stay, their
// live gauges still go.
func TestLegacyKeysNotCompacted(t *testing.T) {
	dir := t.TempDir()
	pid := testenv.DeadPID(t)
	writeRaw(t, filepath.Join(dir, "counter_"+pid+".db"), `["c", "c_total", {}]`, 3)
	writeRaw(t, filepath.Join(dir, "gauge_livesum_"+pid+".db"), `["g", "g", {}]`, 4)
	testenv.AgeFiles(t, dir)
	res := runCleanup(t, dir, Options{DeadPIDs: true})
	files := dbFiles(t, dir)
	if _, ok := files["counter_"+pid+".db"]; !ok {
		t.Errorf("legacy counter shard was compacted: %v", names(files))
	}
	if _, ok := files["gauge_livesum_"+pid+".db"]; ok {
		t.Errorf("live gauge of a dead pid stayed")
	}
	if _, ok := files["counter_archive-1.db"]; ok {
		t.Errorf("archive written from legacy keys")
	}
	found := false
	for _, sp := range res.Plan.Shards {
		found = found || strings.Contains(sp.Reason, "3-element keys")
	}
	if !found {
		t.Errorf("no reason names the legacy keys")
	}
}

// writeRaw writes an 8-byte-layout shard with one entry, byte by byte.
func writeRaw(t testing.TB, path, text string, v float64) {
	t.Helper()
	n := len(text)
	pad := 8 - (n+4)%8
	used := 8 + 4 + n + pad + 8
	b := make([]byte, 4096)
	putU32 := func(off, x int) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	}
	putU32(0, used)
	putU32(8, n)
	copy(b[12:], text)
	for i := 0; i < pad; i++ {
		b[12+n+i] = ' '
	}
	bits := math.Float64bits(v)
	for i := 0; i < 8; i++ {
		b[12+n+pad+i] = byte(bits >> (8 * i))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// uninterrupted runs a --dead-pids cleanup on a copy of base and returns
// the copy and the steps of the run.
func uninterrupted(t *testing.T, base string) (string, []string) {
	t.Helper()
	ref := testenv.CopyStore(t, base)
	var steps []string
	opts := Options{DeadPIDs: true}
	opts.afterStep = func(s string) error { steps = append(steps, s); return nil }
	runCleanup(t, ref, opts)
	return ref, steps
}

// TestCrashAtEveryStep kills a run after each of its steps, runs again and
// checks that the end state is the uninterrupted run's, with nothing
// counted twice.
func TestCrashAtEveryStep(t *testing.T) {
	base := t.TempDir()
	live := testenv.LivePID(t)
	dead := []string{testenv.DeadPID(t), testenv.DeadPID(t)}
	genShards(t, base, live, 16, 1)
	for i, pid := range dead {
		genShards(t, base, pid, 16, float64(i)+2)
	}
	// An archive from an earlier run, so that a re-merge would double it.
	older := testenv.DeadPID(t)
	genShards(t, base, older, 16, 7)
	testenv.AgeFiles(t, base)
	runCleanup(t, base, Options{PIDs: []string{older}})
	testenv.AgeFiles(t, base)

	ref, steps := uninterrupted(t, base)
	refFiles := dbFiles(t, ref)
	refDump := dump(t, ref)
	compareDumps(t, refDump, dump(t, withoutLiveGauges(t, base, dead...)), false)
	if len(steps) < 5 {
		t.Fatalf("only %d steps: %v", len(steps), steps)
	}

	errCrash := errors.New("simulated crash")
	for k := range steps {
		t.Run(fmt.Sprintf("after_%02d_%s", k+1, strings.ReplaceAll(steps[k], " ", "_")), func(t *testing.T) {
			dir := testenv.CopyStore(t, base)
			n := 0
			opts := Options{DeadPIDs: true}
			opts.afterStep = func(string) error {
				n++
				if n == k+1 {
					return errCrash
				}
				return nil
			}
			st, _ := filestore.Open(context.Background(), dir, filestore.Options{})
			if _, err := Run(context.Background(), FileTarget(st), opts); !errors.Is(err, errCrash) {
				t.Fatalf("crashing run: err = %v", err)
			}
			// A reader that lists and then reads (Python's collector)
			// fails on the barrier or reads the right totals.
			if !HasBarrier(dir) {
				compareDumps(t, dump(t, withoutLiveGauges(t, dir, dead...)), refDump, false)
			}
			res := runCleanup(t, dir, Options{DeadPIDs: true})
			if k+1 < len(steps) && res.Recovered == nil {
				t.Errorf("rerun found no journal after step %d", k+1)
			}
			got := dbFiles(t, dir)
			if fmt.Sprint(names(got)) != fmt.Sprint(names(refFiles)) {
				t.Fatalf("files %v, want %v", names(got), names(refFiles))
			}
			for n, b := range refFiles {
				if got[n] != b {
					t.Errorf("%s differs from the uninterrupted run's", n)
				}
			}
			compareDumps(t, dump(t, dir), refDump, false)
			if _, err := os.Stat(filepath.Join(dir, JournalName)); !os.IsNotExist(err) {
				t.Errorf("journal left: %v", err)
			}
			if HasBarrier(dir) {
				t.Error("barrier left")
			}
		})
	}
}

// TestStoppedRunLeavesNoBarrier: a run stopped gracefully (SIGTERM,
// Ctrl-C: its context canceled) after any of its steps leaves no barrier
// up, so Python's collector keeps reading the directory, and what it
// reads is exact: once an archive is in place its sources' removal and
// the barrier's lowering are finished, and a barrier raised before its
// archive (waiting for readers to settle in a big directory) is taken
// down. A rerun ends where the uninterrupted run does. The barrier was
// left up until the next run.
func TestStoppedRunLeavesNoBarrier(t *testing.T) {
	for _, big := range []bool{false, true} {
		t.Run(fmt.Sprintf("big=%v", big), func(t *testing.T) {
			base := t.TempDir()
			dead := []string{testenv.DeadPID(t), testenv.DeadPID(t)}
			genShards(t, base, testenv.LivePID(t), 16, 1)
			for i, pid := range dead {
				genShards(t, base, pid, 16, float64(i)+2)
			}
			if big { // more entries than barrierSettleEntries: the barrier waits
				for i := range barrierSettleEntries + 10 {
					if err := os.WriteFile(filepath.Join(base, fmt.Sprintf("note-%03d.txt", i)), nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			testenv.AgeFiles(t, base)
			ref, steps := uninterrupted(t, base)
			refDump := dump(t, ref)
			if !slices.Contains(steps, "barrier raised") {
				t.Fatalf("steps %v raise no barrier", steps)
			}
			for k := range steps {
				if big && steps[k] != "barrier raised" {
					continue
				}
				t.Run(fmt.Sprintf("after_%02d_%s", k+1, strings.ReplaceAll(steps[k], " ", "_")), func(t *testing.T) {
					dir := testenv.CopyStore(t, base)
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					n := 0
					opts := Options{DeadPIDs: true}
					opts.afterStep = func(string) error {
						if n++; n == k+1 {
							cancel()
						}
						return nil
					}
					st, _ := filestore.Open(context.Background(), dir, filestore.Options{})
					tg := FileTarget(st)
					if big {
						// Stopped while the barrier waits for readers to
						// settle, before step k ("barrier raised").
						raise := tg.RaiseBarrier
						tg.RaiseBarrier = func(ctx context.Context) error {
							if n == k {
								cancel()
							}
							return raise(ctx)
						}
					}
					if _, err := Run(ctx, tg, opts); err != nil && !errors.Is(err, context.Canceled) {
						t.Fatalf("stopped run: err = %v", err)
					}
					if HasBarrier(dir) {
						t.Fatal("barrier left up by a stopped run")
					}
					compareDumps(t, dump(t, withoutLiveGauges(t, dir, dead...)), refDump, false)
					runCleanup(t, dir, Options{DeadPIDs: true})
					compareDumps(t, dump(t, dir), refDump, false)
					if HasBarrier(dir) {
						t.Error("barrier left by the rerun")
					}
				})
			}
		})
	}
}

// TestLock: a second run fails while one holds the lock.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	st, _ := filestore.Open(context.Background(), dir, filestore.Options{})
	tg := FileTarget(st)
	unlock, err := tg.Journal.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), FileTarget(st), Options{DeadPIDs: true})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "another cleanup") {
		t.Errorf("second run: err = %v, want ErrBusy", err)
	}
	if err := unlock(); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if _, err := Run(context.Background(), FileTarget(st), Options{DeadPIDs: true}); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}

// TestBadJournal: a journal that does not parse stops the run, naming it.
func TestBadJournal(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, JournalName), []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), FileTarget(st), Options{DeadPIDs: true})
	if err == nil || !strings.Contains(err.Error(), JournalName) || !strings.Contains(err.Error(), "remove it by hand") {
		t.Errorf("err = %v, want one naming the journal and what to do", err)
	}
}

// TestJournalFloats: NaN, infinities and -0 survive the journal.
func TestJournalFloats(t *testing.T) {
	j := &Journal{Version: 1, Archives: []JournalArchive{{Shard: JournalShard{Kind: "counter", PID: ArchivePID},
		Samples: []JournalSample{{Key: "k", Value: math.NaN(), Timestamp: math.Inf(1)}, {Key: "z", Value: math.Copysign(0, -1), Timestamp: math.Inf(-1)}}}}}
	b, err := encodeJournal(j)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeJournal("test", b)
	if err != nil {
		t.Fatal(err)
	}
	s := back.Archives[0].Samples
	if !math.IsNaN(s[0].Value) || !math.IsInf(s[0].Timestamp, 1) || !math.Signbit(s[1].Value) || !math.IsInf(s[1].Timestamp, -1) {
		t.Errorf("round trip: %+v", s)
	}
}

// TestFirstSeenValue: the min/max archive value keeps the collector's
// first-seen result where it can.
func TestFirstSeenValue(t *testing.T) {
	nan := math.NaN()
	id := func(pid string) store.ShardID { return store.ShardID{Kind: store.KindGauge, Mode: "min", PID: pid} }
	archive := id(ArchivePID)
	tests := []struct {
		name string
		seq  []seqEntry
		want float64
	}{
		{"all dead, NaN first", []seqEntry{{id("10"), nan, true}, {id("11"), 3, true}}, nan},
		{"all dead, number first", []seqEntry{{id("10"), 4, true}, {id("11"), nan, true}, {id("12"), 3, true}}, 3},
		{"live first", []seqEntry{{id("10"), 5, false}, {id("11"), nan, true}, {id("12"), 1, true}}, 1},
		{"live NaN first", []seqEntry{{id("10"), nan, false}, {id("11"), 2, true}}, 2},
		{"dead NaN first, live after archive", []seqEntry{{id("11"), nan, true}, {id("12"), 2, true}, {id("zz"), 1, false}}, nan},
		{"dead number first, live NaN after archive", []seqEntry{{id("11"), 2, true}, {id("zz"), nan, false}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a accumulator
			for _, e := range tt.seq {
				if e.src {
					a.add(e.id, e.v, 0)
				}
			}
			a.seq = tt.seq
			got := firstSeenValue(&a, "min", archive, (&Target{}).less)
			if !sameValue(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestLegacyMostrecentKept: a mostrecent or livemostrecent gauge shard in
// the 8-byte layout is read only by prometheus_client before 0.18, which
// knows no such mode and serves it one series per process, as mode all
// (and whose mark_process_dead leaves it). A cleanup of its dead pid keeps
// it, as it keeps mode all, so that what those clients serve does not
// change; the pid's other shards are compacted as usual.
func TestLegacyMostrecentKept(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := filestore.Open(ctx, dir, filestore.Options{Layout: filestore.LayoutLegacy})
	if err != nil {
		t.Fatal(err)
	}
	for i, pid := range []string{"31001", "31002"} {
		genShards(t, dir, pid, filestore.LayoutLegacy, float64(i+3))
		for _, mode := range []string{"mostrecent", "livemostrecent"} {
			k := key(t, "g_"+mode, "g_"+mode, "Gauge "+mode+".", "x", "a")
			if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindGauge, Mode: mode, PID: pid}, []store.Sample{{Key: k, Value: float64(10 + i)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.AgeFiles(t, dir)
	old := pyclient.LegacyLayout
	before := dumpAs(t, dir, old)
	res := runCleanup(t, dir, Options{PIDs: []string{"31001", "31002"}, MinIdle: -1})
	files := dbFiles(t, dir)
	for _, pid := range []string{"31001", "31002"} {
		for _, name := range []string{"gauge_mostrecent_" + pid + ".db", "gauge_livemostrecent_" + pid + ".db"} {
			if _, ok := files[name]; !ok {
				t.Errorf("%s was removed or compacted; plan:\n%v", name, res.Plan)
			}
		}
		if _, ok := files["counter_"+pid+".db"]; ok {
			t.Errorf("counter_%s.db was not compacted", pid)
		}
	}
	mostrecent := func(expo []byte) string {
		var out []string
		for _, l := range strings.Split(string(expo), "\n") {
			if strings.Contains(l, "mostrecent") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
	after := dumpAs(t, dir, old)
	if got, want := mostrecent(after), mostrecent(before); got != want || !strings.Contains(want, `pid="31002"`) {
		t.Errorf("the mostrecent families as 0.17 serves them changed:\n%s\nwant\n%s", got, want)
	}
}

// TestFreshPIDsRefusalMessage: the refusal of fresh shards whose pids are
// not visible names another pid namespace only when no pid of the store
// is visible, and lists at most five pids, then how many more. Of the
// migrations only redis-to-file stamps the shards with the time it wrote
// them: file-to-redis keeps each source file's mtime, and the message
// says so.
func TestFreshPIDsRefusalMessage(t *testing.T) {
	now := time.Now()
	fresh := []string{"201", "202", "203", "204", "205", "206", "207"}
	tests := []struct {
		name    string
		running []string // pids of old shards that run
		want    []string
		lacks   []string
	}{
		{"a pid of the store runs", []string{"100"},
			[]string{"shards of 7 pid(s) (201, 202, 203, 204, 205 and 2 more) changed within the last 1m0s", "pid 100 of this store is", "exited within the last 1m0s", "migrate redis-to-file wrote", "file-to-redis keeps each source file's mtime"},
			[]string{"another pid namespace", "sidecar"}},
		{"no pid of the store runs", nil,
			[]string{"shards of 7 pid(s) (201, 202, 203, 204, 205 and 2 more)", "another pid namespace", "exited within the last 1m0s", "migrate redis-to-file wrote", "file-to-redis keeps each source file's mtime"},
			[]string{"of this store is"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := filestore.Open(context.Background(), dir, filestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			k := key(t, "c", "c_total", "C.")
			ages := map[string]time.Duration{"100": time.Hour, "101": time.Hour}
			for _, p := range fresh {
				ages[p] = time.Second
			}
			for pid, age := range ages {
				id := store.ShardID{Kind: store.KindCounter, PID: pid}
				if err := st.WriteShard(context.Background(), id, []store.Sample{{Key: k, Value: 1}}); err != nil {
					t.Fatal(err)
				}
				mt := now.Add(-age)
				if err := os.Chtimes(filepath.Join(dir, id.String()+".db"), mt, mt); err != nil {
					t.Fatal(err)
				}
			}
			alive := func(p string) store.Liveness {
				if slices.Contains(tt.running, p) {
					return store.AliveYes
				}
				return store.AliveNo
			}
			_, err = MakePlan(context.Background(), FileTarget(st), Options{DeadPIDs: true, DryRun: true, Alive: alive, Now: func() time.Time { return now }})
			if err == nil {
				t.Fatal("no refusal")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			for _, l := range tt.lacks {
				if strings.Contains(err.Error(), l) {
					t.Errorf("error says %q: %v", l, err)
				}
			}
		})
	}
}

// TestLockRedis: a run on a Redis store whose lock another run holds
// fails with ErrBusy, naming the lock key, whether it finds the lock at
// its check or when it takes it.
func TestLockRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)},
		[]store.Sample{{Key: storetest.Key(t, "jobs", "jobs_total", nil, "Jobs."), Value: 1}}); err != nil {
		t.Fatal(err)
	}
	tg := RedisTarget(st)
	unlock, err := tg.Journal.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Lock directly: the second taker's own error.
	if _, err := tg.Journal.Lock(ctx); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "gunicorn:promstore:cleanup-lock") {
		t.Errorf("second lock: err = %v, want ErrBusy naming the key", err)
	}
	// A run: its check finds the lock first.
	if _, err := Run(ctx, RedisTarget(st), Options{StaleAfter: time.Nanosecond}); !errors.Is(err, ErrBusy) {
		t.Errorf("run: err = %v, want ErrBusy", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, RedisTarget(st), Options{StaleAfter: time.Nanosecond}); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}
