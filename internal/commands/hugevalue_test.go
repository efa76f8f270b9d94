package commands

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/testenv"
)

// maxLine bounds every stderr or log line below: a clipped problem (200
// bytes of each untrusted text) plus the words around it.
const maxLine = 2048

// TestHugeRedisValueIsClipped: a real redis-server holding a metric hash
// whose value is 20 MiB of garbage and a meta hash whose original_key is
// 1 MiB of garbage (less only to keep the test short: every read of the
// store transfers the garbage): dump warns about each in a line of less than 2 KiB
// naming the key and the length, and prints the rest of the store; serve
// --partial serves the rest and logs each once over two scrapes, in lines
// as short.
func TestHugeRedisValueIsClipped(t *testing.T) {
	ctx := context.Background()
	srv := testenv.StartRedis(t)
	st, err := redisstore.Open(ctx, redisstore.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadShards(t, st, 2, 20)
	code, want, errOut := runCLI(t, nil, "dump", "--redis-url", srv.URL())
	if code != 0 || errOut != "" || !strings.Contains(want, "jobs_total") {
		t.Fatalf("dump of the good store: exit %d\n%s%s", code, want, errOut)
	}

	// Two more samples, then 20 MiB of garbage in each.
	huge := strings.Repeat("x", 20<<20)
	hashOf := func(k *store.Key) string {
		sum := md5.Sum([]byte(store.CanonicalKeyText(k)))
		return hex.EncodeToString(sum[:])
	}
	k1, _ := store.ParseKey(store.EncodeKey("bad", "bad_total", nil, "Bad."))
	k2, _ := store.ParseKey(store.EncodeKey("worse", "worse_total", nil, "Worse."))
	for pid, k := range map[string]*store.Key{"77": k1, "78": k2} {
		if err := st.WriteShard(ctx, store.ShardID{Kind: store.KindCounter, PID: pid}, []store.Sample{{Key: k, Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	badValue := "gunicorn:counter:77:metric:" + hashOf(k1)
	badName := "gunicorn:counter:78:metric:" + hashOf(k2)
	c := srv.Client()
	if err := c.HSet(ctx, badValue, "value", huge).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.HSet(ctx, "gunicorn:counter:78:meta:"+hashOf(k2), "original_key", huge[:1<<20]).Err(); err != nil {
		t.Fatal(err)
	}

	checkLines := func(what, text string, keys ...string) {
		t.Helper()
		for _, l := range strings.Split(text, "\n") {
			if len(l) > maxLine {
				t.Errorf("%s: a line of %d bytes: %.300s...", what, len(l), l)
			}
		}
		for _, k := range keys {
			if n := strings.Count(text, k); n != 1 {
				t.Errorf("%s names %s %d times, want once:\n%.3000s", what, k, n, text)
			}
		}
		for _, size := range []string{"20971520", "1048576"} {
			if n := strings.Count(text, "... ("+size+" bytes in all)"); n != 1 {
				t.Errorf("%s: the length of the %s-byte garbage is shown %d times, want once:\n%.3000s", what, size, n, text)
			}
		}
	}
	code, out, errOut := runCLI(t, nil, "dump", "--redis-url", srv.URL())
	if code != 0 || out != want {
		t.Fatalf("dump: exit %d, the rest of the store printed: %v\n%.3000s", code, out == want, errOut)
	}
	checkLines("dump's stderr", errOut, badValue, badName)
	t.Logf("dump's stderr (%d bytes):\n%s", len(errOut), errOut)

	sctx, cancel := context.WithCancel(ctx)
	url, done, logs := startServe(t, sctx, "--redis-url", srv.URL(), "--partial")
	for range 2 {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Fatalf("serve --partial: status %d, the rest of the store served: %v", resp.StatusCode, string(body) == want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	checkLines("serve's log", logs.String(), badValue, badName)
	t.Logf("serve's log (%d bytes):\n%s", len(logs.String()), logs.String())
}
