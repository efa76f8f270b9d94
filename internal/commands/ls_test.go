package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// lsWrite writes shard id with one sample per value into st.
func lsWrite(t *testing.T, st store.Writer, id store.ShardID, values ...float64) {
	t.Helper()
	var ss []store.Sample
	for i, v := range values {
		name := string(id.Kind) + "_" + id.Mode
		k, err := store.ParseKey(store.EncodeKey(name, name, []store.Label{{Name: "i", Value: fmt.Sprint(i)}}, "Help."))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, store.Sample{Key: k, Value: v, Timestamp: 1.7e9})
	}
	if err := st.WriteShard(context.Background(), id, ss); err != nil {
		t.Fatal(err)
	}
}

func TestNewCmdLsFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    LsOptions
		wantErr string
	}{
		{name: "defaults", args: []string{"--dir", "x"}, want: LsOptions{Sort: "name"}},
		{name: "all", args: []string{"-d", "x", "-o", "json", "--sort", "bytes", "--local"}, want: LsOptions{Format: "json", Sort: "bytes", Local: true}},
		{name: "tsv", args: []string{"-d", "x", "--format", "tsv", "-s", "updated"}, want: LsOptions{Format: "tsv", Sort: "updated"}},
		{name: "bad format", args: []string{"-d", "x", "-o", "yaml"}, wantErr: "--format must be one of"},
		{name: "bad sort", args: []string{"-d", "x", "--sort", "size"}, wantErr: "--sort must be one of"},
		{name: "positional", args: []string{"x"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCmd(t, nil, NewCmdLs, tt.args, tt.wantErr)
			if got == nil {
				return
			}
			if got.Format != tt.want.Format || got.Sort != tt.want.Sort || got.Local != tt.want.Local || got.Store == nil {
				t.Errorf("opts = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// lsDir builds a directory with shards of a running and an exited
// process in both layouts, and a corrupt shard.
func lsDir(t *testing.T) (dir, live, dead string) {
	t.Helper()
	dir = t.TempDir()
	live, dead = testenv.LivePID(t), testenv.DeadPID(t)
	st16, _ := filestore.Open(context.Background(), dir, filestore.Options{Layout: 16})
	st8, _ := filestore.Open(context.Background(), dir, filestore.Options{Layout: 8})
	lsWrite(t, st16, store.ShardID{Kind: store.KindCounter, PID: live}, 1, 2, 3)
	lsWrite(t, st16, store.ShardID{Kind: store.KindGauge, Mode: "livesum", PID: live}, 4)
	lsWrite(t, st8, store.ShardID{Kind: store.KindCounter, PID: dead}, 5)
	lsWrite(t, st8, store.ShardID{Kind: store.KindGauge, Mode: "max", PID: dead}, 6, 7)
	if err := os.WriteFile(filepath.Join(dir, "histogram_worker-1.db"), []byte("garbage!garbage!"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, live, dead
}

func TestLsRun(t *testing.T) {
	dir, live, dead := lsDir(t)
	open := func(ctx context.Context) (store.Store, error) { return filestore.Open(ctx, dir, filestore.Options{}) }

	t.Run("json", func(t *testing.T) {
		f, out, _ := testFactory(nil)
		err := lsRun(context.Background(), &LsOptions{IO: f.IO, Store: open, Format: "json", Sort: "name", Alive: store.ProcessAlive})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Shards []lsRow
			Totals lsTotals
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if len(got.Shards) != 5 {
			t.Fatalf("%d shards, want 5: %s", len(got.Shards), out)
		}
		byName := map[string]lsRow{}
		for _, r := range got.Shards {
			byName[r.Name] = r
		}
		checks := []struct {
			name           string
			alive          string
			samples, lay   int
			problem, valid bool
		}{
			{"counter_" + live, "yes", 3, 16, false, true},
			{"gauge_livesum_" + live, "yes", 1, 16, false, true},
			{"counter_" + dead, "no", 1, 8, false, true},
			{"gauge_max_" + dead, "no", 2, 8, false, true},
			{"histogram_worker-1", "unknown", 0, 0, true, true},
		}
		for _, c := range checks {
			r, ok := byName[c.name]
			if !ok {
				t.Errorf("no row %s", c.name)
				continue
			}
			if r.Alive != c.alive || r.Samples != c.samples || r.Layout != c.lay || (len(r.Problems) > 0) != c.problem {
				t.Errorf("%s: %+v", c.name, r)
			}
			if r.Updated.IsZero() || r.Bytes == 0 {
				t.Errorf("%s: no mtime or size: %+v", c.name, r)
			}
		}
		if tt := got.Totals; tt.Shards != 5 || tt.PIDs != 3 || tt.Alive != 1 || tt.Dead != 1 || tt.Unknown != 1 || tt.Samples != 7 || tt.Problems != 1 {
			t.Errorf("totals %+v", tt)
		}
	})

	t.Run("tsv default when not a terminal", func(t *testing.T) {
		f, out, _ := testFactory(nil)
		if err := lsRun(context.Background(), &LsOptions{IO: f.IO, Store: open, Sort: "samples", Alive: store.ProcessAlive}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 6 || !strings.HasPrefix(lines[0], "name\tkind\tmode\tpid\talive") {
			t.Fatalf("tsv:\n%s", out)
		}
		if !strings.HasPrefix(lines[1], "counter_"+live+"\t") {
			t.Errorf("--sort samples: first row %q, want the 3-sample counter", lines[1])
		}
		for _, l := range lines {
			if n := strings.Count(l, "\t"); n != 11 {
				t.Errorf("%d tabs in %q", n, l)
			}
		}
	})

	t.Run("table on a terminal", func(t *testing.T) {
		f, out, _ := testFactory(nil)
		f.IO.OutTTY = true
		if err := lsRun(context.Background(), &LsOptions{IO: f.IO, Store: open, Sort: "pid", Alive: store.ProcessAlive}); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		if !strings.Contains(s, "KIND") || !strings.Contains(s, "total: 5 shards, 3 pids (1 alive, 1 dead, 1 unknown), 7 samples") {
			t.Errorf("table:\n%s", s)
		}
		if !strings.Contains(s, "corrupt") {
			t.Errorf("table shows no problem of the corrupt shard:\n%s", s)
		}
	})
}

// TestLsRedis lists a Redis store: liveness is unknown unless --local.
func TestLsRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	st, err := redisstore.Open(context.Background(), redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	live := testenv.LivePID(t)
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: live}, 1, 2)
	lsWrite(t, st, store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "web-1"}, 3)
	open := func(ctx context.Context) (store.Store, error) {
		return redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
	}
	for _, local := range []bool{false, true} {
		f, out, _ := testFactory(nil)
		if err := lsRun(context.Background(), &LsOptions{IO: f.IO, Store: open, Format: "json", Sort: "name", Local: local, Alive: store.ProcessAlive}); err != nil {
			t.Fatal(err)
		}
		var got struct{ Shards []lsRow }
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Shards) != 2 {
			t.Fatalf("shards: %s", out)
		}
		want := "unknown"
		if local {
			want = "yes"
		}
		for _, r := range got.Shards {
			if r.PID == live && r.Alive != want {
				t.Errorf("local=%v: alive %q, want %q", local, r.Alive, want)
			}
			if r.Updated.IsZero() || r.Updated.Before(time.Now().Add(-time.Hour)) {
				t.Errorf("updated_at not shown: %+v", r)
			}
			// A Redis shard has one size, its keys' memory, for all
			// three (as analyze reports it); used was 0.
			if r.Bytes <= 0 || r.Allocated != r.Bytes || r.Used != r.Bytes {
				t.Errorf("sizes bytes %d, allocated %d, used %d; want the keys' memory for all three", r.Bytes, r.Allocated, r.Used)
			}
		}
	}
}

// TestLsArchive: an archive shard is shown as what it is, not counted as
// a pid of unknown liveness.
func TestLsArchive(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: "archive"}, 5)
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: testenv.DeadPID(t)}, 1)
	open := func(ctx context.Context) (store.Store, error) { return st, nil }
	f, out, _ := testFactory(nil)
	if err := lsRun(context.Background(), &LsOptions{IO: f.IO, Store: open, Format: "table", Sort: "name", Alive: store.ProcessAlive}); err != nil {
		t.Fatal(err)
	}
	var archiveRow string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "archive") && strings.HasPrefix(l, "counter") {
			archiveRow = l
		}
	}
	if f := strings.Fields(archiveRow); len(f) < 4 || f[2] != "archive" || f[3] != "archive" {
		t.Errorf("archive row %q: want ALIVE archive\n%s", archiveRow, out)
	}
	if !strings.Contains(out.String(), "1 pids (0 alive, 1 dead, 0 unknown) + 1 archive shards of dead processes") {
		t.Errorf("totals line:\n%s", out)
	}
}

// TestLsBarrier: ls explains a cleanup barrier (and lists it as no shard).
func TestLsBarrier(t *testing.T) {
	dir, _, _ := lsDir(t)
	if err := os.Symlink(filestore.BarrierName, filepath.Join(dir, filestore.BarrierName)); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "ls", "--dir", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, filestore.BarrierName+": the barrier of a cleanup") || !strings.Contains(errOut, "Python's collector fails") {
		t.Errorf("stderr does not explain the barrier:\n%s", errOut)
	}
	if !strings.Contains(out, `"cleanup_barrier"`) || strings.Contains(out, `"name": "`+filestore.BarrierName) {
		t.Errorf("json output:\n%s", out)
	}
}

// TestLsJSONUnknownUpdate: a shard whose time is unknown (one that cannot
// be opened: here a symbolic link, never followed) has no "updated" in
// JSON, not Go's zero time (year 1) as if it were a time.
func TestLsJSONUnknownUpdate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "counter_7.db")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, nil, "ls", "--dir", dir, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Shards []map[string]any `json:"shards"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Shards) != 1 || got.Shards[0]["problems"] == nil {
		t.Fatalf("want the link as one shard with a problem:\n%s", out)
	}
	if u, ok := got.Shards[0]["updated"]; ok {
		t.Errorf("updated = %v for a shard whose time is unknown, want none:\n%s", u, out)
	}
}

// TestLsSortDirections: --sort bytes, like samples and updated, puts the
// largest first (README said it sorted ascending), and the flag's help
// says which way each key sorts.
func TestLsSortDirections(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: "1"}, 1)
	big := make([]float64, 2000) // grows the file past the first 64 KiB
	lsWrite(t, st, store.ShardID{Kind: store.KindCounter, PID: "2"}, big...)
	code, out, errOut := runCLI(t, nil, "ls", "--dir", dir, "-o", "tsv", "--sort", "bytes")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "counter_2\t") {
		t.Errorf("--sort bytes: want the larger shard first:\n%s", out)
	}
	f, _, _ := testFactory(nil)
	usage := NewCmdLs(f, nil).Flags().Lookup("sort").Usage
	for _, want := range []string{"bytes (largest first)", "updated (newest first)", "(ascending)"} {
		if !strings.Contains(usage, want) {
			t.Errorf("--sort help %q does not say %q", usage, want)
		}
	}
}
