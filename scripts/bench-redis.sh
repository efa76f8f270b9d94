#!/usr/bin/env bash
# bench-redis.sh: `promstore dump` of a Redis store against a reader doing
# what gunicorn-prometheus-exporter's RedisMultiProcessCollector does
# (SCAN, then HGETALL meta + HGET value + HGET timestamp per key, one after
# the other, with redis-py), in one run on one local redis-server.
#
#   scripts/bench-redis.sh [PROCS] [SERIES] [RUNS]   (default 8 600 3: 100,800 metric keys)
#
# The store is written by the real Python client (scripts/pystore.py
# --mode bench: counter, histogram, summary, gauge livesum and all; 21
# samples per series and process) into a multiprocess directory and moved
# into Redis with `promstore migrate file-to-redis`, so the keys are
# exactly the exporter's layout (metric + meta hash per sample). The
# redis-server runs on a free loopback port in a temporary directory,
# without persistence, and is stopped on exit.
#
# Printed: best of RUNS for each reader (promstore: wall time of the whole
# `promstore dump` process, start, connect, aggregation and text output
# included; the exporter-like reader: the read alone, Python start
# excluded), the ratio, samples/s, round trips, server-side commands and
# read events and redis-server CPU seconds (INFO stats and cpu deltas), peak
# RSS of each process, and uptime.
# Needs /usr/bin/python3 with python3-redis and prometheus_client.
set -euo pipefail

PROCS=${1:-8}
SERIES=${2:-600}
RUNS=${3:-3}
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
go build -o "$WORK/promstore" ./cmd/promstore
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
print("metric keys read: %d by both (value sums agree); dump output %d lines" % (n, lines))
print("promstore dump:     best %7.3fs of %s  %10.0f samples/s  %6d round trips  %7d commands  %6d server reads  peak RSS %6.1f MiB" % (
    p, ["%.3f" % t for t in cmp_["promstore_runs"]], n / p, scan["round_trips"],
    cmp_["promstore_commands"], cmp_["promstore_reads"], cmp_["promstore_rss_mib"]))
print("exporter-like read: best %7.3fs of %s  %10.0f samples/s  %6d round trips  %7d commands  %6d server reads  peak RSS %6.1f MiB" % (
    r, ["%.3f" % t for t in cmp_["reader_runs"]], n / r, cmp_["reader_round_trips"],
    cmp_["reader_commands"], cmp_["reader_reads"], cmp_["reader_rss_mib"]))
print("redis-server CPU of one run: promstore %.2fs, exporter-like %.2fs" % (cmp_["promstore_server_cpu"], cmp_["reader_server_cpu"]))
print("promstore in-process read (Scan + aggregate, no start/output): %.3fs" % scan["seconds"])
print("ratio: promstore dump is %.1fx faster (target >= 30x)" % (r / p))
PY
echo "uptime: $(uptime)"
