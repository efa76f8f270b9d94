package tui

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// TestTablePrintEqualsPrint: the streamed table of top --once is, byte
// for byte, what Print makes of a snapshot of the same read (tabwriter's
// columns), for the sample store and for labels that are escaped, wide
// (non-ASCII) or invalid UTF-8, and a problem shard.
func TestTablePrintEqualsPrint(t *testing.T) {
	ctx := context.Background()
	odd := t.TempDir()
	st, err := filestore.Open(ctx, odd, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ss []store.Sample
	for i, v := range []string{"plain", "tab\there", "quote\"and\\back", "newline\nx", "ünïcødé wide 日本語", "bad \xff utf8", "\x1b[31mred", ""} {
		k, err := store.ParseKey(store.EncodeKey("odd", "odd_total", []store.Label{{Name: "v", Value: v}, {Name: "z", Value: "1"}}, "Odd."))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, store.Sample{Key: k, Value: float64(i) * 1.5})
	}
	if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: "7"}, ss); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(odd+"/counter_8.db", "corrupt"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{sampleStore, odd} {
		c := newClock()
		opts := SourceOptions{Alive: alivePolicy, Now: c.Now}
		snap, err := NewStoreSource(openStore(t, dir), opts).Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := Print(&want, snap); err != nil {
			t.Fatal(err)
		}
		tab, err := ReadTable(ctx, openStore(t, dir), opts)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := tab.Print(&got); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%s: streamed table differs from Print's:\n got:\n%s\nwant:\n%s", dir, got.String(), want.String())
		}
		if tab.Series() != len(snap.Series) || tab.Series() == 0 {
			t.Errorf("%s: %d series, snapshot %d", dir, tab.Series(), len(snap.Series))
		}
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
