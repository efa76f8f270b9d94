package tui

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
)

// TestTablePrintEqualsPrint: the streamed table of top --once is, byte
// for byte, what Print makes of a snapshot of the same read, for the sample store and for labels that are escaped, wide
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

// TestTableColumnsAlignInCells: the VALUE column of top --once starts in
// the same terminal column on every row, whatever the labels hold: wide
// characters (日本, 🚀) take two cells. Padded by runes, the rows of the
// sample store's kind="日本" and kind="🚀 rocket" stood out of line.
func TestTableColumnsAlignInCells(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	var ss []store.Sample
	for i, v := range []string{"plain", "日本", "🚀 rocket", "ünïcødé", "e\u0301", "tab\there"} {
		ss = append(ss, sample(mkKey("odd", "odd_total", "v", v), float64(i)))
	}
	writeShard(t, st, store.ShardID{Kind: store.KindCounter, PID: "7"}, ss...)
	for _, d := range []string{sampleStore, dir} {
		tab, err := ReadTable(ctx, openStore(t, d), SourceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := tab.Print(&out); err != nil {
			t.Fatal(err)
		}
		col := -1
		for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
			if strings.HasPrefix(l, "#") {
				continue
			}
			value := l[strings.LastIndexByte(l, ' ')+1:]
			at := ansi.StringWidth(l[:len(l)-len(value)])
			if col < 0 {
				col = at // the header's VALUE
			}
			if at != col {
				t.Errorf("%s: value %s starts in column %d, VALUE in %d: %q", d, value, at, col, l)
			}
		}
	}
}
