package serve

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/testenv"
)

// TestUnchangedReadServedAgain: a server on a store that keeps its reads
// serves the last read's snapshot when a read finds every shard as the
// read before had it, and reads, aggregates and encodes again as soon as
// one shard changes (a value written in place, a shard removed, one
// written anew); every scrape serves what a new reader reads. With its own
// metrics in the telemetry path, an unchanged read still encodes them
// anew.
func TestUnchangedReadServedAgain(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("KeepReads keeps nothing off Linux")
	}
	for _, tc := range []struct {
		name string
		self bool
	}{
		{"store only", false},
		{"with own metrics", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := sampleStore(t)
			for _, alive := range []store.Liveness{store.AliveNo, store.AliveYes} {
				st, err := filestore.Open(context.Background(), dir, filestore.Options{Alive: func(string) store.Liveness { return alive }, ListingMargin: 30 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				st.KeepReads(true)
				t.Cleanup(func() { st.Close() })
				s, err := New(Options{Store: st, SelfMetricsInTelemetry: tc.self})
				if err != nil {
					t.Fatal(err)
				}
				h := s.Handler()
				get := func(path string) string {
					t.Helper()
					return testenv.Get(t, h, path)
				}
				unchanged := func() string {
					t.Helper()
					for _, l := range strings.Split(get(SelfMetricsPath), "\n") {
						if strings.HasPrefix(l, "promstore_store_reads_unchanged_total ") {
							return l
						}
					}
					return ""
				}
				scrape := func(what, wantUnchanged string) {
					t.Helper()
					fresh, err := filestore.Open(context.Background(), dir, filestore.Options{})
					if err != nil {
						t.Fatal(err)
					}
					want := renderText(t, families(t, fresh))
					body := get("/metrics")
					if !strings.HasPrefix(body, want) || !tc.self && body != want {
						t.Fatalf("%s (pids %s): served %d bytes, not what a new reader reads (%d bytes)", what, alive, len(body), len(want))
					}
					if got := unchanged(); got != wantUnchanged {
						t.Fatalf("%s (pids %s): %q, want %q", what, alive, got, wantUnchanged)
					}
				}
				scrape("first read", "promstore_store_reads_unchanged_total 0")
				scrape("read again", "promstore_store_reads_unchanged_total 1")
				if tc.self {
					// The own metrics of an unchanged read are those of its time.
					if body := get("/metrics"); !strings.Contains(body, "\npromstore_store_reads_total 3\n") {
						t.Fatalf("third scrape's own metrics: %s", grepLines(body, "promstore_store_reads_total"))
					}
					scrape("fourth read", "promstore_store_reads_unchanged_total 3")
				}
				n := 1
				if tc.self {
					n = 3
				}
				count := func(d int) string {
					n += d
					return "promstore_store_reads_unchanged_total " + strconv.Itoa(n)
				}

				testenv.WriteFirstValue(t, filepath.Join(dir, "counter_4101.db"), 4242.25+float64(len(alive)))
				scrape("a value written in place", count(0))
				scrape("read again", count(1))

				if err := os.Remove(filepath.Join(dir, "counter_4102.db")); err != nil {
					t.Fatal(err)
				}
				scrape("a shard removed", count(0))
				scrape("read again", count(1))

				b, err := os.ReadFile(filepath.Join(dir, "counter_4101.db"))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "counter_4102.db"), b, 0o644); err != nil {
					t.Fatal(err)
				}
				scrape("a shard written", count(0))
				scrape("read again", count(1))
			}
		})
	}
}
