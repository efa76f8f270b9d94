package commands

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// TestPIDOrderAgrees: dump, top --once, ls --sort pid and dump --raw list
// the processes of a store in one order (store.ComparePIDs: the decimal
// pids by number, then the other pids by text), with every pid spelled as
// the store spells it. A file store's dump --raw lists shards in the
// directory order Python reads them in, so there only the pids are
// compared; a Redis store's --raw is in its shard order, the pid order.
func TestPIDOrderAgrees(t *testing.T) {
	pids := []string{"web1-12", "-5", "1e3", "100", "0042", "7"}
	want := []string{"7", "100", "-5", "0042", "1e3", "web1-12"}
	write := func(t *testing.T, st store.Writer) {
		t.Helper()
		for i, pid := range pids {
			lsWrite(t, st, store.ShardID{Kind: store.KindGauge, Mode: "all", PID: pid}, float64(i))
		}
	}
	pidRE := regexp.MustCompile(`pid="([^"]*)"`)
	labelPIDs := func(t *testing.T, out, prefix string) []string {
		t.Helper()
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, prefix) {
				if m := pidRE.FindStringSubmatch(line); m != nil {
					got = append(got, m[1])
				}
			}
		}
		return got
	}
	column := func(t *testing.T, out string, col int) []string {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var got []string
		for _, line := range lines[1:] { // header first
			got = append(got, strings.Split(line, "\t")[col])
		}
		return got
	}
	check := func(t *testing.T, storeArgs []string, rawOrdered bool) {
		t.Helper()
		run := func(args ...string) string {
			t.Helper()
			code, out, errOut := runCLI(t, nil, append(args, storeArgs...)...)
			if code != 0 {
				t.Fatalf("%v: exit %d\n%s", args, code, errOut)
			}
			return out
		}
		if got := labelPIDs(t, run("dump"), "gauge_all{"); !slices.Equal(got, want) {
			t.Errorf("dump: pids %q, want %q", got, want)
		}
		if got := labelPIDs(t, run("top", "--once"), "gauge_all "); !slices.Equal(got, want) {
			t.Errorf("top --once: pids %q, want %q", got, want)
		}
		if got := column(t, run("ls", "--format", "tsv", "--sort", "pid"), 3); !slices.Equal(got, want) {
			t.Errorf("ls --sort pid: pids %q, want %q", got, want)
		}
		got := column(t, run("dump", "--raw"), 3)
		if !rawOrdered {
			slices.SortFunc(got, store.ComparePIDs)
		}
		if !slices.Equal(got, want) {
			t.Errorf("dump --raw: pids %q, want %q", got, want)
		}
	}

	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		st, err := filestore.Open(context.Background(), dir, filestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		write(t, st)
		check(t, []string{"--dir", dir}, false)
	})
	t.Run("redis", func(t *testing.T) {
		srv := testenv.StartRedis(t)
		st, err := redisstore.Open(context.Background(), redisstore.Config{URLs: []string{srv.URL()}})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		write(t, st)
		check(t, []string{"--redis-url", srv.URL()}, true)
	})
}
