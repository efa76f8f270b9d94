package migrate

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
)

// TestArchivedShardsRefused: an archive written by promstore cleanup
// records nothing about the shards it absorbed, so a migration that would
// write a shard beside an archive holding all its series (or an archive
// beside such shards) is refused before anything is written; it would
// count those processes twice.
func TestArchivedShardsRefused(t *testing.T) {
	c1 := store.ShardID{Kind: store.KindCounter, PID: "101"}
	c2 := store.ShardID{Kind: store.KindCounter, PID: "102"}
	arch1 := store.ShardID{Kind: store.KindCounter, PID: "archive-1"}
	arch2 := store.ShardID{Kind: store.KindCounter, PID: "archive-2"}
	web := func(id store.ShardID) store.ShardID { id.PID = "web1-" + id.PID; return id }
	type shard struct {
		id store.ShardID
		kv []any
	}
	tests := []struct {
		name     string
		src, dst []shard
		prefix   string
		want     []string // in the error; none: no refusal
	}{
		{
			name: "rerun after a cleanup of the target",
			src:  []shard{{c1, []any{kReq, 5.0}}, {c2, []any{kReq, 2.0, kErr, 1.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0, kErr, 1.0}}},
			want: []string{"source shard counter_101", "source shard counter_102", "counter_archive-1"},
		},
		{
			name:   "rerun after a cleanup of the target, with a pid prefix",
			src:    []shard{{c1, []any{kReq, 5.0}}},
			dst:    []shard{{arch1, []any{kReq, 5.0}}},
			prefix: "web1-",
			want:   []string{"source shard counter_101: the target has no shard counter_web1-101"},
		},
		{
			name: "rerun after a cleanup of the source",
			src:  []shard{{arch1, []any{kReq, 7.0, kErr, 1.0}}},
			dst:  []shard{{c1, []any{kReq, 5.0}}, {c2, []any{kReq, 2.0, kErr, 1.0}}},
			want: []string{"target shard counter_101", "target shard counter_102", "its archive counter_archive-1"},
		},
		{
			name:   "rerun after a cleanup of the source, with a pid prefix",
			src:    []shard{{arch1, []any{kReq, 7.0}}},
			dst:    []shard{{web(c1), []any{kReq, 5.0}}, {c2, []any{kReq, 2.0}}},
			prefix: "web1-",
			want:   []string{"target shard counter_web1-101: the source has no shard counter_101"},
		},
		{
			name: "rerun after a second cleanup of the source",
			src:  []shard{{arch2, []any{kReq, 9.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0}}},
			want: []string{"target shard counter_archive-1", "counter_archive-2"},
		},
		{
			name: "plain rerun",
			src:  []shard{{c1, []any{kReq, 5.0}}, {arch1, []any{kReq, 3.0}}},
			dst:  []shard{{c1, []any{kReq, 5.0}}, {arch1, []any{kReq, 3.0}}},
		},
		{
			name: "a source shard with a series the archive lacks",
			src:  []shard{{c1, []any{kReq, 5.0, kErr, 1.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0}}},
		},
		{
			name: "a target archive of another kind",
			src:  []shard{{c1, []any{kReq, 5.0}}},
			dst:  []shard{{store.ShardID{Kind: store.KindGauge, Mode: "max", PID: "archive-1"}, []any{kReq, 7.0}}},
		},
		{
			name:   "another host's shards beside the source's archive",
			src:    []shard{{arch1, []any{kReq, 7.0}}},
			dst:    []shard{{store.ShardID{Kind: store.KindCounter, PID: "web2-101"}, []any{kReq, 5.0}}},
			prefix: "web1-",
		},
		{
			name: "a source archive migrated before, unchanged, beside shards written since",
			src:  []shard{{arch1, []any{kReq, 7.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0}}, {c1, []any{kReq, 5.0}}},
		},
		{
			name: "a source archive grown since it was migrated, beside shards it may hold",
			src:  []shard{{arch1, []any{kReq, 9.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0}}, {c1, []any{kReq, 2.0}}},
			want: []string{"target shard counter_101"},
		},
		{
			name: "a target shard with a series the source's archive lacks",
			src:  []shard{{arch1, []any{kReq, 7.0}}},
			dst:  []shard{{c1, []any{kReq, 5.0, kErr, 1.0}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
			for _, s := range tt.src {
				write(t, src, s.id, s.kv...)
			}
			for _, s := range tt.dst {
				write(t, dst, s.id, s.kv...)
			}
			before := dump(t, dst)
			_, err := run(t, src, dst, Options{PIDPrefix: tt.prefix})
			if got := dump(t, dst); got != before && len(tt.want) > 0 {
				t.Errorf("target changed although the migration was refused:\n%s\nwas\n%s", got, before)
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("migration refused: %v", err)
				}
				return
			}
			var ae *ArchivedError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *ArchivedError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			// A source shard the archive may hold may also be a worker's
			// never migrated: moving it out would lose it.
			for _, l := range ae.Lines {
				if strings.HasPrefix(l, "source shard ") && !strings.Contains(l, "if it was never migrated (a worker started since the earlier run), run with --first-migration") {
					t.Errorf("line does not say what to do with a never-migrated shard: %s", l)
				}
			}
		})
	}
}

// TestArchivedErrorNamesAtMost20: a refusal over many shards stays readable.
func TestArchivedErrorNamesAtMost20(t *testing.T) {
	e := &ArchivedError{}
	for range 25 {
		e.Lines = append(e.Lines, "source shard x")
	}
	msg := e.Error()
	if n := strings.Count(msg, "source shard x"); n != 20 {
		t.Errorf("error names %d shards, want 20", n)
	}
	if !strings.Contains(msg, "25 shard(s)") || !strings.Contains(msg, "... and 5 more") {
		t.Errorf("error does not count them all:\n%s", msg)
	}
}

// TestArchivedCheckKeyTextOnlyWhenNeeded: the target's shards outside the
// plan need their key texts only for the archive check, and only when the
// check can use them: the shard is a target archive, or the source has
// archives of its kind in the run's pid namespace. Under
// --first-migration the check is skipped and collects nothing. Texts of
// the plan's own target shards are always needed (conflicts).
func TestArchivedCheckKeyTextOnlyWhenNeeded(t *testing.T) {
	c1 := store.ShardID{Kind: store.KindCounter, PID: "101"}
	c2 := store.ShardID{Kind: store.KindCounter, PID: "102"}
	c3 := store.ShardID{Kind: store.KindCounter, PID: "103"}
	g1 := store.ShardID{Kind: store.KindGauge, Mode: "all", PID: "101"}
	arch1 := store.ShardID{Kind: store.KindCounter, PID: "archive-1"}
	type shard struct {
		id store.ShardID
		kv []any
	}
	tests := []struct {
		name     string
		src, dst []shard
		opts     Options
		want     int // key texts of target samples computed by Build
	}{
		{
			name: "no archive on either side: only the plan's target shard",
			src:  []shard{{c1, []any{kReq, 5.0}}},
			dst:  []shard{{c1, []any{kReq, 5.0}}, {c2, []any{kReq, 1.0, kErr, 1.0}}, {c3, []any{kReq, 2.0}}},
			want: 1,
		},
		{
			name: "a target archive: its samples",
			src:  []shard{{c1, []any{kReq, 5.0, kErr, 1.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0}}, {c2, []any{kReq, 1.0, kErr, 1.0}}},
			want: 1,
		},
		{
			name: "a source counter archive: the target's counter shards, not its gauges",
			src:  []shard{{arch1, []any{kReq, 7.0}}},
			dst:  []shard{{c2, []any{kReq, 1.0, kErr, 1.0}}, {g1, []any{kTmp, 1.0}}},
			want: 2,
		},
		{
			name: "a source archive, other hosts' shards outside the pid prefix",
			src:  []shard{{arch1, []any{kReq, 7.0}}},
			dst:  []shard{{store.ShardID{Kind: store.KindCounter, PID: "web2-102"}, []any{kReq, 1.0, kErr, 1.0}}},
			opts: Options{PIDPrefix: "web1-"},
			want: 0,
		},
		{
			name: "--first-migration: nothing collected",
			src:  []shard{{arch1, []any{kReq, 7.0}}, {c1, []any{kReq, 5.0}}},
			dst:  []shard{{arch1, []any{kReq, 7.0}}, {c2, []any{kReq, 1.0, kErr, 1.0}}},
			opts: Options{FirstMigration: true},
			want: 1, // the plan's own archive-1
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := open(t, t.TempDir(), 16), open(t, t.TempDir(), 16)
			for _, s := range tt.src {
				write(t, src, s.id, s.kv...)
			}
			for _, s := range tt.dst {
				write(t, dst, s.id, s.kv...)
			}
			n := 0
			orig := keyText
			keyText = func(k *store.Key) string { n++; return orig(k) }
			t.Cleanup(func() { keyText = orig })
			if _, err := Build(context.Background(), src, dst, tt.opts); err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("key texts computed for %d target samples, want %d", n, tt.want)
			}
		})
	}
}

// BenchmarkArchivedCheck: a source archive compared with many target
// shards the source lacks builds its key set once, not once per target
// shard (5,000 target shards beside a 100,000-key archive took 43 s).
func BenchmarkArchivedCheck(b *testing.B) {
	const shards, keys = 2000, 20000
	arch := &ShardPlan{Source: store.ShardID{Kind: store.KindCounter, PID: "archive-1"}}
	arch.Target = arch.Source
	for i := range keys {
		arch.Items = append(arch.Items, Item{Text: "k" + strconv.Itoa(i)})
	}
	p := &Plan{Shards: []*ShardPlan{arch}}
	for b.Loop() {
		c := newArchivedCheck("", p.Shards)
		for s := range shards {
			id := store.ShardID{Kind: store.KindCounter, PID: strconv.Itoa(1000 + s)}
			// A series the archive lacks: no refusal, every shard compared.
			c.target(store.Sample{Shard: id}, "k0")
			c.target(store.Sample{Shard: id}, "missing")
		}
		if err := c.check(p); err != nil {
			b.Fatal(err)
		}
	}
}
