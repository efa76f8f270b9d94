package testenv

import (
	"strconv"
	"testing"
)

// forkJobWriters is run by the real Python: it forks N processes one after
// the other; each increments jobs_total{kind="a"} once and, when asked,
// observes 0.5 in the histogram lat, then exits. With a directory (multiprocess mode)
// the child uses prometheus_client; with a Redis URL it writes what the
// gunicorn exporter writes for the counter (metric and meta hash, TTL
// seconds when given); with PROMSTORE_TEST_STARTED_KEY set, it first
// INCRs that Redis key, so that a reader reading the key after a read
// has an upper bound of the true total; in a directory,
// PROMSTORE_TEST_STARTED_FILE gets a byte appended before the writes and
// PROMSTORE_TEST_DONE_FILE one after them (bounds of the true total by
// their sizes). It prints the children's pids.
const forkJobWriters = `
import hashlib, json, os, sys, time
n, where = int(sys.argv[1]), sys.argv[2]
ttl, lat = int(sys.argv[3]), sys.argv[4] == "lat"
if where.startswith("redis://"):
    import redis
else:
    from prometheus_client import Counter, Histogram
pids = []
for i in range(n):
    p = os.fork()
    if p == 0:
        try:
            if where.startswith("redis://"):
                r = redis.from_url(where)
                started = os.environ.get("PROMSTORE_TEST_STARTED_KEY")
                if started:
                    r.incr(started)
                key = json.dumps(["jobs", "jobs_total", {"kind": "a"}, "Jobs."], sort_keys=True)
                h = hashlib.md5(key.encode("utf-8")).hexdigest()
                pid = str(os.getpid())
                mk = "gunicorn:counter:%s:metric:%s" % (pid, h)
                tk = "gunicorn:counter:%s:meta:%s" % (pid, h)
                r.hset(mk, mapping={"value": 1.0, "timestamp": 0.0, "updated_at": time.time()})
                r.hset(tk, mapping={"original_key": key, "created_at": time.time(), "typ": "counter", "multiprocess_mode": "all"})
                if ttl:
                    r.expire(mk, ttl)
                    r.expire(tk, ttl)
            else:
                started = os.environ.get("PROMSTORE_TEST_STARTED_FILE")
                if started:
                    with open(started, "ab") as f:
                        f.write(b"x")
                Counter("jobs", "Jobs.", ["kind"]).labels(kind="a").inc()
                if lat:
                    Histogram("lat", "Latency.", buckets=(0.1, 1.0)).observe(0.5)
                done = os.environ.get("PROMSTORE_TEST_DONE_FILE")
                if done:
                    with open(done, "ab") as f:
                        f.write(b"x")
            os._exit(0)
        except BaseException as e:
            sys.stderr.write("child: %r\n" % e)
            os._exit(1)
    _, status = os.waitpid(p, 0)
    if status != 0:
        sys.exit("a child failed")
    pids.append(p)
print(" ".join(str(p) for p in pids))
`

// WriteDeadJobs runs n short-lived real Python processes that each add 1
// to jobs_total{kind="a"} in where, a multiprocess directory or a
// redis:// URL (exporter layout, keys expiring after ttl seconds when
// ttl > 0); with lat, each also observes 0.5 in the histogram lat (in a
// directory); env adds "NAME=value" settings to the script's environment.
// They have all exited when it returns.
func WriteDeadJobs(t testing.TB, n int, where string, ttl int, lat bool, env ...string) {
	t.Helper()
	what := "counter"
	if lat {
		what = "lat"
	}
	RunPython(t, nil, forkJobWriters, append([]string{"PROMETHEUS_MULTIPROC_DIR=" + where}, env...), strconv.Itoa(n), where, strconv.Itoa(ttl), what)
}
