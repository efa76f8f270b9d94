#!/usr/bin/env bash
# bench-redis.sh: `promstore dump` of a Redis store against a reader doing
# what gunicorn-prometheus-exporter's RedisMultiProcessCollector does
# (SCAN, then HGETALL meta + HGET value + HGET timestamp per key, one after
# the other, with redis-py), in one run on one local redis-server.
#
#   scripts/bench-redis.sh [PROCS] [SERIES] [RUNS]   (default 4 275 5: 23,100 metric keys)
#   PROMSTORE_BASE=path   also runs that binary (e.g. an earlier build) in
#                         the same turns and prints its figures too
#
# The store is written by the real Python client (scripts/pystore.py
# --mode bench: counter, histogram, summary, gauge livesum and all; 21
# samples per series and process) into a multiprocess directory and moved
# into Redis with `promstore migrate file-to-redis`, so the keys are
# exactly the exporter's layout (metric + meta hash per sample). The
# redis-server runs on a free loopback port in a temporary directory,
# without persistence, and is stopped on exit. `scripts/bench-redis.sh 8
# 600 3` is the larger store of 100,800 metric keys.
#
# Every run (promstore, base, reader in turns, RUNS each) is a fresh
# process between CONFIG RESETSTAT and INFO commandstats. Printed: every
# run's wall time and the best (promstore: the whole `promstore dump`
# process, start, connect, aggregation and text output included; the
# exporter-like reader: the read alone, Python start excluded), the CPU
# time (user+system) of the best run's process (the reader: of its read),
# the ratio, the server's own command time of each promstore run (the sum
# of INFO commandstats usec: executing the commands, no network, parsing
# or replies) and promstore's wall time over it, commands, redis-server
# CPU seconds, peak RSS, and the load average before and after.
# Needs /usr/bin/python3 with python3-redis and prometheus_client.
set -euo pipefail

PROCS=${1:-4}
SERIES=${2:-275}
RUNS=${3:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
# shellcheck source=lib/redis.sh
. "$ROOT/scripts/lib/redis.sh"
cleanup() {
	bench_redis_stop
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PY=/usr/bin/python3
"$PY" -c 'import redis, prometheus_client' 2>/dev/null ||
	{ echo "bench-redis: $PY needs redis-py and prometheus_client (Debian python3-redis, python3-prometheus-client)" >&2; exit 1; }

cd "$ROOT"
CGO_ENABLED=0 go build -o "$WORK/promstore" ./cmd/promstore
go build -o "$WORK/redisscan" ./scripts/redisscan

bench_redis_start "$WORK"
URL="redis://127.0.0.1:$PORT/0"

t0=$(date +%s.%N)
"$PY" scripts/pystore.py write "$WORK/store" --mode bench --procs "$PROCS" --series "$SERIES"
t1=$(date +%s.%N)
"$WORK/promstore" migrate file-to-redis --dir "$WORK/store" --redis-url "$URL" >"$WORK/migrate.log"
t2=$(date +%s.%N)
KEYS=$("$PY" -c 'import redis,sys; print(redis.Redis(port=int(sys.argv[1])).dbsize())' "$PORT")
printf 'store: %d procs x %d series written by prometheus_client in %.1fs, migrated in %.1fs: %d Redis keys (redis-server %s)\n' \
	"$PROCS" "$SERIES" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$KEYS" "$("$REDIS_SERVER" --version | awk '{print $3}')"

LOAD0=$(cut -d" " -f1-3 /proc/loadavg)
SCAN=$("$WORK/redisscan" -url "$URL")
CMP=$("$PY" scripts/redisbench.py compare "$PORT" "$WORK/promstore" "$RUNS" "$WORK/dump.txt")

"$PY" - "$SCAN" "$CMP" "$WORK/dump.txt" <<'PY'
import json, math, sys
scan, cmp_ = json.loads(sys.argv[1]), json.loads(sys.argv[2])
lines = sum(1 for _ in open(sys.argv[3], "rb"))
n = scan["samples"]
if n != cmp_["reader_samples"]:
    sys.exit("bench-redis: promstore read %d samples, the exporter-like reader %d" % (n, cmp_["reader_samples"]))
if not math.isclose(scan["sum"], cmp_["reader_sum"], rel_tol=1e-9):
    sys.exit("bench-redis: value sums differ: promstore %r, reader %r" % (scan["sum"], cmp_["reader_sum"]))
p, r = cmp_["promstore_seconds"], cmp_["reader_seconds"]
runs = lambda xs: " ".join("%.3f" % t for t in xs)
print("metric keys read: %d by both (value sums agree); dump output %d lines" % (n, lines))
print("promstore dump:     best %.3f s wall, %.3f CPU-s (user+sys) of that process, %.0f samples/s, %d commands, %.1f ms server command time, %.3f s redis-server CPU, peak RSS %.1f MiB" % (
    p, cmp_["promstore_cpu"], n / p, cmp_["promstore_commands"], cmp_["promstore_server_usec"] / 1000,
    cmp_["promstore_server_cpu"], cmp_["promstore_rss_mib"]))
print("  runs (s): %s" % runs(cmp_["promstore_runs"]))
print("  server command time per run (ms): %s" % runs(u / 1000 for u in cmp_["promstore_server_usec_runs"]))
print("  per command (calls, usec) of the best run: %s" % ", ".join(
    "%s %d/%d" % (k, v[0], v[1]) for k, v in sorted(cmp_["promstore_per_command"].items(), key=lambda kv: -kv[1][1])))
if "base_seconds" in cmp_:
    print("base dump:          best %.3f s wall, %.3f CPU-s, %d commands, %.1f ms server command time; runs (s): %s" % (
        cmp_["base_seconds"], cmp_["base_cpu"], cmp_["base_commands"], cmp_["base_server_usec"] / 1000, runs(cmp_["base_runs"])))
print("exporter-like read: best %.3f s wall, %.3f CPU-s of the read, %.0f samples/s, %d round trips, %d commands, %.1f ms server command time, %.3f s redis-server CPU, peak RSS %.1f MiB" % (
    r, cmp_["reader_cpu"], n / r, cmp_["reader_round_trips"], cmp_["reader_commands"],
    cmp_["reader_server_usec"] / 1000, cmp_["reader_server_cpu"], cmp_["reader_rss_mib"]))
print("  runs (s): %s" % runs(cmp_["reader_runs"]))
print("promstore in-process read (Scan + aggregate, no start/output): %.3fs, %d round trips" % (scan["seconds"], scan["round_trips"]))
print("ratio: promstore dump is %.1fx faster than the exporter-like read (best vs best; target >= 40x)" % (r / p))
ws = cmp_["promstore_wall_over_server"]
print("promstore wall / its server command time: best run %.2fx, all runs %s (target <= 1.5x)" % (
    p * 1e6 / cmp_["promstore_server_usec"], " ".join("%.2f" % w for w in ws)))
if "base_seconds" in cmp_:
    print("base: %.1fx faster than the reader; wall / server command time %s" % (
        cmp_["base_ratio"], " ".join("%.2f" % w for w in cmp_["base_wall_over_server"])))
PY
echo "load average: before $LOAD0, after $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) cores"
