package serve

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/storetest"
)

// TestServeLogsNamesPrometheusRejects: keys "a b" and "a_b", labels "r-"
// and "r_" are served as Python writes them (two "# HELP a_b_total"
// blocks, a duplicated series), and serve logs once, over many scrapes,
// that Prometheus would reject the output, naming the problems. A store
// without such names logs nothing of the kind.
func TestServeLogsNamesPrometheusRejects(t *testing.T) {
	dir := t.TempDir()
	st, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	samples := storetest.RejectedNames(t)
	if err := st.WriteShard(context.Background(), store.ShardID{Kind: store.KindCounter, PID: "1"}, samples); err != nil {
		t.Fatal(err)
	}

	srv := start(t, Options{Store: st})
	for range 20 {
		r := get(t, nil, srv.url+"/metrics", nil)
		if r.status != http.StatusOK || strings.Count(r.body, "# HELP a_b_total") != 2 {
			t.Fatalf("status %d, body not as Python writes it:\n%s", r.status, r.body)
		}
	}
	logs := srv.logs.String()
	want := `level=WARN msg="Prometheus would reject this output whole (served as Python writes it)" format="text/plain; version=0.0.4; charset=utf-8" problems=2 first="families \"a b\" and \"a_b\" are both written as a_b_total (two # HELP a_b_total blocks); duplicate series r_total r_ 1 (from names that differ before escaping)"` + "\n"
	if n := strings.Count(logs, "Prometheus would reject"); n != 1 || !strings.Contains(logs, want) {
		t.Fatalf("logged %d times over 20 scrapes, want once as\n%s\nlogs:\n%s", n, want, logs)
	}

	_, good := sampleStore(t)
	srv = start(t, Options{Store: good})
	if r := get(t, nil, srv.url+"/metrics", nil); r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if logs := srv.logs.String(); strings.Contains(logs, "would reject") {
		t.Fatalf("a store with no such names: %s", logs)
	}
}
