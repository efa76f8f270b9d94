package commands

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/migrate"
	"github.com/promstore/promstore/internal/pyclient"
	"github.com/promstore/promstore/internal/store"
	"github.com/promstore/promstore/internal/store/filestore"
	"github.com/promstore/promstore/internal/store/redisstore"
	"github.com/promstore/promstore/internal/store/storetest"
	"github.com/promstore/promstore/internal/testenv"
)

func TestNewCmdMigrateFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, o *MigrateOptions)
		wantErr string
	}{
		{name: "file-to-redis defaults", args: []string{"file-to-redis", "--dir", "d", "--redis-url", "redis://h:1/0"},
			check: func(t *testing.T, o *MigrateOptions) {
				if o.Direction != FileToRedis || o.Dir != "d" || o.OnConflict != migrate.Fail || o.DryRun || o.DeleteSource ||
					o.PIDPrefix != "" || o.Redis.TTL != 0 || o.Workers != 4 || o.Source == nil || o.Target == nil {
					t.Fatalf("opts = %+v", o)
				}
				if len(o.Redis.URLs) != 1 || o.Redis.URLs[0] != "redis://h:1/0" {
					t.Fatalf("redis urls = %v", o.Redis.URLs)
				}
			}},
		{name: "file-to-redis all flags", args: []string{"file-to-redis", "-d", "d", "--redis-url", "redis://h:1/0", "--redis-prefix", "app",
			"--pid-prefix", "web1-", "--on-conflict", "sum", "--journal", "j", "--dry-run", "--delete-source", "--ttl", "10m", "--workers", "2"},
			check: func(t *testing.T, o *MigrateOptions) {
				if o.PIDPrefix != "web1-" || o.OnConflict != migrate.Sum || o.Journal != "j" || !o.DryRun || !o.DeleteSource ||
					o.Redis.TTL != 10*time.Minute || o.Redis.Prefix != "app" || o.Workers != 2 {
					t.Fatalf("opts = %+v", o)
				}
			}},
		{name: "redis-to-file defaults to the 16-byte layout", args: []string{"redis-to-file", "--dir", "d", "--redis-url", "redis://h:1/0"},
			check: func(t *testing.T, o *MigrateOptions) {
				if o.Direction != RedisToFile || o.Layout != 16 {
					t.Fatalf("opts = %+v", o)
				}
			}},
		{name: "legacy layout", args: []string{"redis-to-file", "--dir", "d", "--layout", "legacy", "--redis-url", "redis://h:1/0"},
			check: func(t *testing.T, o *MigrateOptions) {
				if o.Layout != 8 {
					t.Fatalf("layout = %d", o.Layout)
				}
			}},
		{name: "prefix from the exporter's environment", args: []string{"redis-to-file", "--dir", "d", "--redis-url", "redis://h:1/0"},
			check: func(t *testing.T, o *MigrateOptions) {
				if o.Redis.Prefix != "fromenv" {
					t.Fatalf("prefix = %q", o.Redis.Prefix)
				}
			}},
		{name: "bad layout", args: []string{"redis-to-file", "--dir", "d", "--layout", "32"}, wantErr: "--layout"},
		{name: "no dir", args: []string{"file-to-redis", "--redis-url", "redis://h:1"}, wantErr: "--dir is required"},
		{name: "bad policy", args: []string{"file-to-redis", "--dir", "d", "--on-conflict", "merge"}, wantErr: "unknown conflict policy"},
		{name: "sum without journal", args: []string{"file-to-redis", "--dir", "d", "--on-conflict", "sum"}, wantErr: "needs --journal"},
		{name: "pid prefix with underscore", args: []string{"file-to-redis", "--dir", "d", "--pid-prefix", "web_1"}, wantErr: "--pid-prefix"},
		{name: "pid prefix with colon", args: []string{"file-to-redis", "--dir", "d", "--pid-prefix", "web:1"}, wantErr: "--pid-prefix"},
		{name: "ttl not positive", args: []string{"file-to-redis", "--dir", "d", "--ttl", "0s"}, wantErr: "--ttl must be positive"},
		{name: "no ttl when writing files", args: []string{"redis-to-file", "--dir", "d", "--ttl", "1m"}, wantErr: "unknown flag"},
		{name: "no layout when writing redis", args: []string{"file-to-redis", "--dir", "d", "--layout", "legacy"}, wantErr: "unknown flag"},
		{name: "positional arg", args: []string{"file-to-redis", "--dir", "d", "x"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCmd(t, map[string]string{"REDIS_KEY_PREFIX": "fromenv"}, NewCmdMigrate, tt.args, tt.wantErr)
			if got == nil {
				return
			}
			tt.check(t, got)
		})
	}
	// Usage errors exit 2 through the real command tree.
	if code, _, _ := runCLI(t, nil, "migrate", "file-to-redis", "--dir", "d", "--pid-prefix", "a_b"); code != ExitUsage {
		t.Fatalf("bad --pid-prefix exit %d, want %d", code, ExitUsage)
	}
}

// migrateEnv is a real redis-server and a factory writing into buffers.
type migrateEnv struct {
	t           *testing.T
	srv         *testenv.RedisServer
	f           *Factory
	out, errOut *bytes.Buffer
}

func newMigrateEnv(t *testing.T, opts ...testenv.RedisOptions) *migrateEnv {
	t.Helper()
	srv := testenv.StartRedis(t, opts...)
	f, out, errOut := testFactory(nil)
	return &migrateEnv{t: t, srv: srv, f: f, out: out, errOut: errOut}
}

// opts parses a promstore migrate command line (the Redis URL and prefix
// "gunicorn" are added) into options for migrateRun.
func (e *migrateEnv) opts(args ...string) *MigrateOptions {
	e.t.Helper()
	var got *MigrateOptions
	cmd := NewCmdMigrate(e.f, func(_ context.Context, o *MigrateOptions) error { got = o; return nil })
	cmd.SetArgs(append(args, "--redis-url", e.srv.URL(), "--redis-prefix", "gunicorn"))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err != nil {
		e.t.Fatalf("parse %v: %v", args, err)
	}
	return got
}

// run runs migrateRun with fresh output buffers.
func (e *migrateEnv) run(o *MigrateOptions) error {
	e.t.Helper()
	e.out.Reset()
	e.errOut.Reset()
	return migrateRun(context.Background(), o)
}

func (e *migrateEnv) cfg() redisstore.Config {
	return redisstore.Config{URLs: []string{e.srv.URL()}, Prefix: "gunicorn"}
}

// dumpRedis is `promstore dump` of the Redis store.
func (e *migrateEnv) dumpRedis() []byte {
	e.t.Helper()
	return e.dumpRedisAs(pyclient.Latest)
}

// dumpRedisAs dumps the target with floats spelled as release client
// spells them (to compare with that client's collector).
func (e *migrateEnv) dumpRedisAs(client pyclient.Version) []byte {
	e.t.Helper()
	st, err := redisstore.Open(context.Background(), e.cfg())
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	return storetest.DumpAs(e.t, st, client)
}

func (e *migrateEnv) dbsize() int64 {
	e.t.Helper()
	n, err := e.srv.Client().DBSize(context.Background()).Result()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func dumpStore(t *testing.T, st store.Reader) []byte {
	t.Helper()
	return storetest.Dump(t, st)
}

// exporterWrite is what gunicorn-prometheus-exporter's Redis value does
// for one series of one process: the key is
// json.dumps([family, name, labels, help], sort_keys=True), addressed by
// its MD5; creating the value reads the metric hash (0.0 when missing),
// inc() adds and HSETs value/timestamp/updated_at, and the meta hash gets
// original_key. It prints what it found and wrote.
const exporterWrite = `
import hashlib, json, sys, time, redis
url, prefix, kind, pid, spec, amount = sys.argv[1:7]
spec = json.loads(spec)
amount = float(amount)
r = redis.from_url(url)
key = json.dumps([spec["family"], spec["name"], spec["labels"], spec["help"]], sort_keys=True)
h = hashlib.md5(key.encode("utf-8")).hexdigest()
mk = "%s:%s:%s:metric:%s" % (prefix, kind, pid, h)
tk = "%s:%s:%s:meta:%s" % (prefix, kind, pid, h)
v = r.hget(mk, "value")
existed = v is not None
value = float(v) if existed else 0.0
before = value
value += amount
r.hset(mk, mapping={"value": value, "timestamp": 0.0, "updated_at": time.time()})
r.hset(tk, mapping={"original_key": key, "created_at": time.time(), "typ": kind, "multiprocess_mode": "all"})
print(json.dumps({"existed": existed, "before": before, "after": value, "metric_key": mk}))
`

type exporterResult struct {
	Existed   bool    `json:"existed"`
	Before    float64 `json:"before"`
	After     float64 `json:"after"`
	MetricKey string  `json:"metric_key"`
}

func (e *migrateEnv) exporterInc(kind, pid string, k *store.Key, amount float64) exporterResult {
	e.t.Helper()
	labels := map[string]string{}
	for _, l := range k.Labels {
		labels[l.Name] = l.Value
	}
	spec, err := json.Marshal(map[string]any{"family": k.Family, "name": k.Name, "labels": labels, "help": k.Help})
	if err != nil {
		e.t.Fatal(err)
	}
	out := testenv.RunPython(e.t, nil, exporterWrite, nil, e.srv.URL(), "gunicorn", kind, pid, string(spec), store.PyRepr(amount))
	var res exporterResult
	if err := json.Unmarshal(out, &res); err != nil {
		e.t.Fatalf("exporter snippet printed %q: %v", out, err)
	}
	return res
}

// sampleValue finds one sample of a text exposition.
func sampleValue(t *testing.T, expo []byte, key string) float64 {
	t.Helper()
	e, err := testenv.ParseExposition(expo)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range e.Families {
		for _, s := range f.Samples {
			if s.Key() == key {
				return s.Value
			}
		}
	}
	t.Fatalf("sample %s not in exposition", key)
	return 0
}

func seriesKey(k *store.Key) string {
	s := testenv.ExpoSample{Name: k.Name}
	for _, l := range k.Labels {
		s.Labels = append(s.Labels, testenv.ExpoLabel{Name: l.Name, Value: l.Value})
	}
	return s.Key()
}

// pickSample returns the first sample of the store whose key text
// satisfies ok.
func pickSample(t *testing.T, st store.Reader, ok func(store.Sample) bool) store.Sample {
	t.Helper()
	var found *store.Sample
	_ = st.Scan(context.Background(), func(s store.Sample) error {
		if found == nil && ok(s) {
			c := s
			found = &c
		}
		return nil
	})
	if found == nil {
		t.Fatal("no sample matches")
	}
	return *found
}

// sortedCollect is Python's MultiProcessCollector on dir reading the
// shard files sorted by name instead of in directory order. The order
// decides which value of a max/min gauge a NaN loses or wins against (the
// first seen stays), so only this order can be compared with a store read
// in another order, such as Redis (sorted by kind and pid).
const sortedCollect = `
import glob, sys
_glob = glob.glob
glob.glob = lambda *a, **k: sorted(_glob(*a, **k))
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
reg = CollectorRegistry()
multiprocess.MultiProcessCollector(reg, path=sys.argv[1])
sys.stdout.buffer.write(generate_latest(reg))
`

func pythonCollectSorted(t *testing.T, dir string) []byte {
	t.Helper()
	return testenv.RunPython(t, nil, sortedCollect, nil, dir)
}

func TestMigrateFileToRedisMatchesPythonAndExporterWrites(t *testing.T) {
	e := newMigrateEnv(t)
	dir := t.TempDir()
	pythonWrite(t, dir, "--procs", "3")
	want := pythonCollectSorted(t, dir)

	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("migrate: %v\nstderr: %s", err, e.errOut)
	}
	if !strings.Contains(e.out.String(), "migrated ") || !strings.HasSuffix(strings.TrimSpace(e.out.String()), "verified") {
		t.Fatalf("summary: %q", e.out)
	}
	got := e.dumpRedisAs(testenv.PythonClient(t))
	testenv.CompareExposition(t, got, want)

	// A Python worker of a migrated pid increments a migrated counter with
	// tricky label text: it must find the migrated hash (same MD5 of the
	// same key text) and the aggregate must move by exactly its amount.
	src, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := pickSample(t, src, func(s store.Sample) bool {
		return s.Shard.Kind == store.KindCounter && strings.Contains(s.Key.Text, `\u`) && strings.Contains(s.Key.Text, `\"`)
	})
	keys := e.dbsize()
	res := e.exporterInc("counter", s.Shard.PID, s.Key, 0.25)
	if !res.Existed || res.Before != s.Value {
		t.Fatalf("the exporter did not find the migrated value %v at %s: %+v", s.Value, res.MetricKey, res)
	}
	if n := e.dbsize(); n != keys {
		t.Fatalf("the exporter's write created %d new keys (key text or MD5 differs)", n-keys)
	}
	after := e.dumpRedis()
	sk := seriesKey(s.Key)
	if d := sampleValue(t, after, sk) - sampleValue(t, got, sk); d != 0.25 {
		t.Fatalf("aggregate of %s moved by %v, want 0.25", sk, d)
	}

	// Running it again changes nothing.
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err == nil {
		t.Fatal("rerun after the exporter changed a value reported no conflict")
	} else if !strings.Contains(e.errOut.String(), "1 conflicting samples") {
		t.Fatalf("rerun: %v\n%s", err, e.errOut)
	}
}

func TestMigrateRerunChangesNothing(t *testing.T) {
	e := newMigrateEnv(t)
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	first := e.dumpRedis()
	keys := e.dbsize()
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("rerun: %v\n%s", err, e.errOut)
	}
	if !strings.HasPrefix(e.out.String(), "nothing to do: the target already holds all") {
		t.Fatalf("rerun said %q", e.out)
	}
	if !bytes.Equal(e.dumpRedis(), first) || e.dbsize() != keys {
		t.Fatal("rerun changed the target")
	}
	testenv.CompareExposition(t, first, mustRead(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "expected.prom")))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// legacyShard builds an 8-byte-layout shard file holding 3-element keys,
// as prometheus_client < 0.16 wrote them.
func legacyShard(entries map[string]float64, order []string) []byte {
	buf := make([]byte, 8, 4096)
	for _, k := range order {
		n := len(k)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
		buf = append(buf, k...)
		buf = append(buf, bytes.Repeat([]byte{' '}, 8-(n+4)%8)...)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(entries[k]))
	}
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)))
	out := make([]byte, 1<<16)
	copy(out, buf)
	return out
}

func TestMigrateLegacyKeysGetPythonsFourElementKeys(t *testing.T) {
	e := newMigrateEnv(t)
	dir := t.TempDir()
	k1 := `["jobs", "jobs_total", {"queue": "caf\u00e9", "z": "a\"b"}]`
	k2 := `["jobs", "jobs_created", {"queue": "caf\u00e9", "z": "a\"b"}]`
	data := legacyShard(map[string]float64{k1: 7, k2: 1700000000}, []string{k1, k2})
	if err := os.WriteFile(filepath.Join(dir, "counter_311.db"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	k, err := store.ParseKey(k1)
	if err != nil || !k.Legacy || k.Help != store.LegacyHelp {
		t.Fatalf("key %q: %+v %v", k1, k, err)
	}
	keys := e.dbsize()
	res := e.exporterInc("counter", "311", k, 1)
	if !res.Existed || res.Before != 7 || e.dbsize() != keys {
		t.Fatalf("Python's 4-element key for the legacy sample is not the migrated one: %+v, %d new keys", res, e.dbsize()-keys)
	}
}

func TestMigrateRoundTripLegacyLayout(t *testing.T) {
	e := newMigrateEnv(t)
	orig := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	want := pythonCollectSorted(t, orig)
	if err := e.run(e.opts("file-to-redis", "--dir", orig, "--pid-prefix", "h1-")); err != nil {
		t.Fatalf("to redis: %v\n%s", err, e.errOut)
	}
	back := filepath.Join(t.TempDir(), "rollback") // created by the migration
	if err := e.run(e.opts("redis-to-file", "--dir", back, "--layout", "legacy", "--dry-run")); err != nil {
		t.Fatalf("dry run: %v\n%s", err, e.errOut)
	}
	if _, err := os.Stat(back); !os.IsNotExist(err) || !strings.Contains(e.out.String(), "does not exist yet") {
		t.Fatalf("dry run created the target directory (%v) or did not say so:\n%s", err, e.out)
	}
	if err := e.run(e.opts("redis-to-file", "--dir", back, "--layout", "legacy")); err != nil {
		t.Fatalf("to files: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.out.String(), "shards written in the 8-byte layout, which only prometheus_client before 0.18 reads") {
		t.Errorf("the summary does not name the layout:\n%s", e.out)
	}
	names, _ := filepath.Glob(filepath.Join(back, "counter_h1-*.db"))
	if len(names) == 0 {
		t.Fatal("no counter_h1-<pid>.db shards written")
	}
	// Python's own collector (0.16, 8-byte layout only) reads the result;
	// gauge pid labels carry the prefix, everything else is identical.
	got := pythonCollectSorted(t, back)
	testenv.CompareExposition(t, bytes.ReplaceAll(got, []byte(`pid="h1-`), []byte(`pid="`)), want)
	if !bytes.Contains(got, []byte(`pid="h1-`)) {
		t.Fatal("no pid label carries the prefix")
	}
}

func TestMigrateInterruptedRunCompletes(t *testing.T) {
	// Redis persists every write (AOF, fsync always) so that a killed
	// server comes back with what it acknowledged.
	e := newMigrateEnv(t, testenv.RedisOptions{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	want := pythonCollectSorted(t, dir)

	o := e.opts("file-to-redis", "--dir", dir, "--workers", "2")
	o.AfterShard = func(p migrate.Progress) {
		if p.Shards == 3 {
			e.srv.Stop() // a crash while the other worker is writing
		}
	}
	err := e.run(o)
	if err == nil {
		t.Fatal("run with the server killed reported success")
	}
	if !strings.Contains(e.errOut.String(), "run the same command again") {
		t.Fatalf("stderr: %s", e.errOut)
	}
	e.srv.Restart()
	if e.dbsize() == 0 {
		t.Fatal("nothing survived the crash: the test proves nothing")
	}
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("rerun: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.out.String(), "already present") || strings.Contains(e.out.String(), " 0 already present") {
		t.Fatalf("rerun found nothing already present: %s", e.out)
	}
	testenv.CompareExposition(t, e.dumpRedis(), want)
}

func TestMigrateDryRunAndConflicts(t *testing.T) {
	e := newMigrateEnv(t)
	dir := t.TempDir()
	src, err := filestore.Open(context.Background(), dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := store.ShardID{Kind: store.KindCounter, PID: "9"}
	k1, _ := store.ParseKey(`["req", "req_total", {"code": "200"}, "Requests."]`)
	k2, _ := store.ParseKey(`["req", "req_total", {"code": "500"}, "Requests."]`)
	if err := src.WriteShard(context.Background(), id, []store.Sample{{Key: k1, Value: 5}, {Key: k2, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	// The target already has req{200} = 10.
	dst, err := redisstore.Open(context.Background(), e.cfg())
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.WriteShard(context.Background(), id, []store.Sample{{Key: k1, Value: 10}}); err != nil {
		t.Fatal(err)
	}
	keys := e.dbsize()

	o := e.opts("file-to-redis", "--dir", dir, "--dry-run")
	if err := e.run(o); !errors.Is(err, errSilent) {
		t.Fatalf("dry run with conflicts: err = %v, want exit 1", err)
	}
	for _, w := range []string{"dry run: nothing written", "2 samples: 1 samples to create (2 Redis keys), 0 already present, 1 conflicts",
		"counter_9", `req_total{code="200"}: source 5.0, target 10.0`, "a real run would fail"} {
		if !strings.Contains(e.out.String(), w) {
			t.Errorf("dry-run output lacks %q:\n%s", w, e.out)
		}
	}
	if e.dbsize() != keys {
		t.Fatal("dry run wrote")
	}
	// A real run fails the same way and writes nothing.
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); !errors.Is(err, errSilent) {
		t.Fatalf("err = %v, want exit 1", err)
	}
	if !strings.Contains(e.errOut.String(), `req_total{code="200"}: source 5.0, target 10.0`) || e.dbsize() != keys {
		t.Fatalf("conflict not listed or something written:\n%s", e.errOut)
	}
	// Overwrite, then verify with the delete of the source.
	// Pid 9 is a worker that has stopped (whatever runs as pid 9 here):
	// --delete-source keeps the shards of running ones.
	o = e.opts("file-to-redis", "--dir", dir, "--on-conflict", "overwrite", "--delete-source")
	o.Alive = func(string) store.Liveness { return store.AliveNo }
	if err := e.run(o); err != nil {
		t.Fatalf("overwrite: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.out.String(), "1 conflicts overwritten") || !strings.Contains(e.out.String(), "deleted 1 source shards") {
		t.Fatalf("output: %s", e.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "counter_9.db")); !os.IsNotExist(err) {
		t.Fatalf("source shard still there: %v", err)
	}
	if !bytes.Contains(e.dumpRedis(), []byte(`req_total{code="200"} 5.0`)) {
		t.Fatalf("target:\n%s", e.dumpRedis())
	}
}

func TestMigrateTTL(t *testing.T) {
	e := newMigrateEnv(t)
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	ctx := context.Background()
	c := e.srv.Client()

	// No TTL by default, and no warning into an empty prefix.
	if err := e.run(e.opts("file-to-redis", "--dir", dir, "--pid-prefix", "a-")); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	if strings.Contains(e.errOut.String(), "expire") {
		t.Fatalf("warned about TTLs: %s", e.errOut)
	}
	keys, err := c.Keys(ctx, "gunicorn:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatal(keys, err)
	}
	if d := c.PTTL(ctx, keys[0]).Val(); d >= 0 {
		t.Fatalf("key %s has TTL %v without --ttl", keys[0], d)
	}
	// --ttl sets one; the next migration into the prefix warns.
	if err := e.run(e.opts("file-to-redis", "--dir", dir, "--pid-prefix", "b-", "--ttl", "1h")); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	bkeys, _ := c.Keys(ctx, "gunicorn:counter:b-*").Result()
	if len(bkeys) == 0 || c.TTL(ctx, bkeys[0]).Val() <= 50*time.Minute {
		t.Fatalf("--ttl 1h not set on %v", bkeys)
	}
	if err := e.run(e.opts("file-to-redis", "--dir", dir, "--pid-prefix", "c-")); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.errOut.String(), "already in the target prefix expire") || !strings.Contains(e.errOut.String(), "get no TTL (give --ttl") {
		t.Fatalf("no TTL warning: %s", e.errOut)
	}
	// A rerun of the --ttl run without it writes nothing, so its keys
	// still expire: the warning says so rather than "no TTL" alone.
	if err := e.run(e.opts("file-to-redis", "--dir", dir, "--pid-prefix", "b-")); err != nil {
		t.Fatalf("migrate: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.errOut.String(), "keys it finds already present keep theirs, so those of an earlier run with --ttl still expire") {
		t.Fatalf("rerun: %s", e.errOut)
	}
	if d := c.TTL(ctx, bkeys[0]).Val(); d <= 50*time.Minute {
		t.Fatalf("the rerun changed the TTL of %s: %v", bkeys[0], d)
	}
}

func TestMigrateRedisToFileIntoNonEmptyDir(t *testing.T) {
	// Verification looks only at the migrated shards: other shards of the
	// target directory do not make it fail.
	e := newMigrateEnv(t)
	fx := filepath.Join(testenv.FixturesDir(t), "python-0.25-files", "store")
	dir := testenv.CopyStore(t, fx)
	if err := e.run(e.opts("file-to-redis", "--dir", dir, "--pid-prefix", "r-")); err != nil {
		t.Fatalf("to redis: %v\n%s", err, e.errOut)
	}
	back := testenv.CopyStore(t, fx) // already holds the un-prefixed shards
	if err := e.run(e.opts("redis-to-file", "--dir", back, "--dry-run")); err != nil {
		t.Fatalf("dry run: %v\n%s", err, e.errOut)
	}
	if ents, _ := os.ReadDir(back); len(ents) != len(mustReadDir(t, fx)) {
		t.Fatal("dry run wrote files")
	}
	if err := e.run(e.opts("redis-to-file", "--dir", back)); err != nil {
		t.Fatalf("to files: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.out.String(), "shards written in the 16-byte layout, which prometheus_client 0.18 and newer read (--layout legacy for older ones)") {
		t.Errorf("the summary does not name the layout:\n%s", e.out)
	}
	// The 16-byte layout keeps mostrecent timestamps: the migrated half
	// aggregates like the original.
	st, err := filestore.Open(context.Background(), back, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := dumpStore(t, st)
	if !bytes.Contains(got, []byte(`pid="r-4100"`)) || !bytes.Contains(got, []byte(`pid="4100"`)) {
		t.Fatal("target lacks either the migrated or its own shards")
	}
}

func TestMigrateUnreadableSourceShard(t *testing.T) {
	e := newMigrateEnv(t)
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	bad := filepath.Join(dir, "counter_999.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte{0xff}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	err := e.run(e.opts("file-to-redis", "--dir", dir, "--delete-source"))
	if err == nil || !strings.Contains(err.Error(), "could not be read and were not migrated") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(e.errOut.String(), "counter_999.db") {
		t.Fatalf("the unreadable shard is not named: %s", e.errOut)
	}
	// The rest was migrated and verified, but nothing was deleted.
	os.Remove(bad)
	testenv.CompareExposition(t, e.dumpRedis(), mustRead(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "expected.prom")))
	if n := len(mustReadDir(t, dir)); n != len(mustReadDir(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))) {
		t.Fatalf("source has %d files left: deleted despite an unreadable shard", n)
	}
}

func mustReadDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ents
}

func TestProgressLine(t *testing.T) {
	p := migrate.Progress{Shards: 5, TotalShards: 10, Samples: 500, TotalSamples: 1000, Elapsed: time.Second}
	got := progressLine(p, 10)
	want := "[=====>    ] 5/10 shards  500/1000 samples  500/s  ETA 1s"
	if got != want {
		t.Fatalf("progressLine = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	bar := newProgressBar(&IOStreams{ErrOut: &buf, ErrTTY: true}, time.Nanosecond)
	bar.update(p)
	bar.done()
	if !strings.Contains(buf.String(), "\r\x1b[K[=") || !strings.HasSuffix(buf.String(), "\r\x1b[K") {
		t.Fatalf("bar wrote %q", buf.String())
	}
	buf.Reset()
	bar = newProgressBar(&IOStreams{ErrOut: &buf}, time.Nanosecond)
	bar.update(p)
	bar.done()
	if buf.Len() != 0 {
		t.Fatalf("bar drew on a non-terminal: %q", buf.String())
	}
}

// TestMigrateCompactedStore: a directory that two cleanups compacted
// (archive-1 folded into archive-2) migrates to Redis and back: Python's
// own collector of the compacted directory, promstore's dump of the
// migrated Redis store and of the directory migrated back agree.
func TestMigrateCompactedStore(t *testing.T) {
	e := newMigrateEnv(t)
	dir := testenv.CopyStore(t, filepath.Join(testenv.FixturesDir(t), "python-0.16-files", "store"))
	testenv.AgeFiles(t, dir)
	for _, pid := range []string{"4100", "4101"} {
		if code, _, errOut := runCLI(t, nil, "cleanup", "--dir", dir, "--pid", pid); code != 0 {
			t.Fatalf("cleanup --pid %s: exit %d: %s", pid, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "counter_archive-2.db")); err != nil {
		t.Fatalf("no second-generation archive: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "counter_archive-1.db")); err == nil {
		t.Fatal("the first-generation archive was not folded")
	}
	want := pythonCollectSorted(t, dir)
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("to redis: %v\n%s", err, e.errOut)
	}
	testenv.CompareExposition(t, e.dumpRedisAs(testenv.PythonClient(t)), want)
	back := t.TempDir()
	// The 8-byte layout, which Debian's prometheus_client 0.16 reads.
	if err := e.run(e.opts("redis-to-file", "--dir", back, "--layout", "legacy")); err != nil {
		t.Fatalf("to files: %v\n%s", err, e.errOut)
	}
	if _, err := os.Stat(filepath.Join(back, "counter_archive-2.db")); err != nil {
		t.Fatalf("archive not migrated back under its name: %v", err)
	}
	testenv.CompareExposition(t, pythonCollectSorted(t, back), want)
}

// TestMigrateRunningSourceConflicts: a directory migrated while its
// processes run differs from the target on the next run (their counters
// grew): the conflicts of running processes' shards are named with a
// warning that an earlier migration most likely wrote them, and that sum
// would count them twice; with a dead pid, no such warning.
func TestMigrateRunningSourceConflicts(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	st, err := filestore.Open(ctx, dir, filestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := storetest.Key(t, "jobs", "jobs_total", nil, "Jobs.")
	id := store.ShardID{Kind: store.KindCounter, PID: "31007"}
	if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := e.run(e.opts("file-to-redis", "--dir", dir)); err != nil {
		t.Fatalf("first migration: %v\n%s", err, e.errOut)
	}
	if err := st.WriteShard(ctx, id, []store.Sample{{Key: k, Value: 7}}); err != nil { // the worker counted on
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alive store.Liveness
		args  []string
		want  string
	}{
		{store.AliveYes, nil, "overwrite takes their current values"},
		{store.AliveYes, []string{"--dry-run"}, "overwrite takes their current values"},
		{store.AliveYes, []string{"--on-conflict", "sum", "--journal", filepath.Join(t.TempDir(), "j"), "--dry-run"}, "counted twice if so"},
		{store.AliveNo, nil, ""},
	} {
		o := e.opts(append([]string{"file-to-redis", "--dir", dir}, tc.args...)...)
		o.Alive = func(pid string) store.Liveness {
			if pid != "31007" {
				t.Errorf("liveness of pid %q asked", pid)
			}
			return tc.alive
		}
		_ = e.run(o)
		warned := strings.Contains(e.errOut.String(), "conflicts in shards of 1 running process(es) (pid 31007)")
		if warned != (tc.want != "") || !strings.Contains(e.errOut.String(), tc.want) {
			t.Errorf("%v alive %s: stderr %q; want the warning: %v (%q)", tc.args, tc.alive, e.errOut.String(), tc.want != "", tc.want)
		}
	}
}

// TestMigrateBackKeepsDirLayout: migrating back into a directory that
// already holds shards writes them in its layout (without --layout), or
// refuses a --layout that would mix the two, which Python's collector of
// either release cannot read.
func TestMigrateBackKeepsDirLayout(t *testing.T) {
	e := newMigrateEnv(t)
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "sample-store")
	if err := e.run(e.opts("file-to-redis", "--dir", src)); err != nil {
		t.Fatalf("to redis: %v\n%s", err, e.errOut)
	}
	back := t.TempDir()
	if err := e.run(e.opts("redis-to-file", "--dir", back, "--layout", "legacy")); err != nil {
		t.Fatalf("back, legacy: %v\n%s", err, e.errOut)
	}
	// A process writes a sample in Redis: the next run has a conflict.
	ctx := context.Background()
	keys, err := e.srv.Client().Keys(ctx, "gunicorn:counter:*:metric:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	if err := e.srv.Client().HSet(ctx, keys[0], "value", "50.0").Err(); err != nil {
		t.Fatal(err)
	}
	before := testenv.DBFiles(t, back)
	o := e.opts("redis-to-file", "--dir", back, "--on-conflict", "overwrite", "--layout", "new")
	if err := e.run(o); err == nil || !strings.Contains(err.Error(), "would make a directory Python's collector cannot read") {
		t.Fatalf("--layout new into a legacy directory: %v", err)
	}
	if after := testenv.DBFiles(t, back); !maps.Equal(before, after) {
		t.Fatal("the refused run changed the directory")
	}
	if err := e.run(e.opts("redis-to-file", "--dir", back, "--on-conflict", "overwrite")); err != nil {
		t.Fatalf("back without --layout: %v\n%s", err, e.errOut)
	}
	if !strings.Contains(e.errOut.String(), "holds 33 shards in the 8-byte (--layout legacy) layout: writing in that layout") {
		t.Errorf("stderr %q", e.errOut.String())
	}
	if code, out, _ := runCLI(t, nil, "fsck", "--dir", back); code != 0 {
		t.Errorf("the directory migrated into is not clean:\n%s", out)
	}
	testenv.CompareExposition(t, pythonCollectSorted(t, back), e.dumpRedisAs(testenv.PythonClient(t)))
}
