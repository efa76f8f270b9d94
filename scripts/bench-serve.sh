#!/usr/bin/env bash
# Load benchmark of `promstore serve` against Python's own collector
# serving the same store, in one run: scrapes/s, p50/p99 latency and peak
# RSS with 1 and 50 concurrent scrapers (scripts/loadgen), and the ratios.
#
#   scripts/bench-serve.sh [PROCS] [SERIES] [SECONDS]   (defaults 4 4200 10)
#
# The store is written by the real prometheus_client (scripts/pystore.py
# write --mode bench: a counter, a histogram, a summary, a livesum and an
# "all" gauge) with PROCS processes x SERIES series, which aggregates to
# SERIES*(21+PROCS) output samples: 4 x 4200 gives 105,000. It goes to a
# temporary directory, or to $BENCH_DIR (reused when already complete).
# Everything listens on 127.0.0.1 only; each of the 4 load runs lasts
# SECONDS (scrapes still running then are cut and counted as "cut"), the
# servers are stopped on exit (promstore also stops by itself, --for), and
# the whole run takes about 4*SECONDS plus building and writing the store.
#
# Both servers are scraped without Accept and Accept-Encoding headers, so
# both answer the Prometheus text format uncompressed; the script checks
# that the two bodies hold the same lines before measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
PROCS=${1:-4}
SERIES=${2:-4200}
SECS=${3:-10}

PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
[ -n "$PY" ] || { echo "need a python3 with prometheus_client (apt-get install python3-prometheus-client)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/promstore-bench-serve.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

echo "building promstore and scripts/loadgen ..."
CGO_ENABLED=0 go build -o "$TMP/promstore" ./cmd/promstore
go build -o "$TMP/loadgen" ./scripts/loadgen

DIR=${BENCH_DIR:-$TMP/store}
if [ ! -f "$DIR/.complete" ]; then
  echo "writing the store with prometheus_client: $PROCS processes x $SERIES series into $DIR ..."
  rm -rf "$DIR"
  "$PY" scripts/pystore.py write "$DIR" --mode bench --procs "$PROCS" --series "$SERIES"
  touch "$DIR/.complete"
fi
SAMPLES=$("$TMP/promstore" dump --dir "$DIR" | grep -vc '^#')
echo "store: $(ls "$DIR"/*.db | wc -l) shard files, $(du -sh "$DIR" | cut -f1), $SAMPLES output samples"
if [ "$SAMPLES" -lt 100000 ]; then
  echo "warning: fewer than 100,000 output samples; give more PROCS or SERIES" >&2
fi

freeport() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(freeport)
P2=$(freeport)
GO_URL=http://127.0.0.1:$P1/metrics
PY_URL=http://127.0.0.1:$P2/metrics

# --scrape-timeout 60s: on a loaded machine one read can exceed the default 10s.
"$TMP/promstore" serve --dir "$DIR" --web.listen-address "127.0.0.1:$P1" --for "$((SECS * 4 + 120))s" --scrape-timeout 60s --log.level warn &
GO_PID=$!
PIDS+=("$GO_PID")
"$PY" scripts/pystore.py serve "$DIR" "$P2" >/dev/null &
PY_PID=$!
PIDS+=("$PY_PID")

# fetch URL FILE: one scrape into FILE (Python's stdlib, no curl needed).
fetch() { "$PY" -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1], timeout=120).read())' "$1" "$2"; }
for url in "$GO_URL" "$PY_URL"; do
  for i in $(seq 1 100); do
    if fetch "$url" "$TMP/probe" 2>/dev/null; then break; fi
    [ "$i" = 100 ] && { echo "server at $url did not come up" >&2; exit 1; }
    sleep 0.2
  done
done

fetch "$GO_URL" "$TMP/go.txt"
fetch "$PY_URL" "$TMP/py.txt"
if cmp -s <(LC_ALL=C sort "$TMP/go.txt") <(LC_ALL=C sort "$TMP/py.txt"); then
  echo "check: promstore and Python serve the same lines ($(wc -c <"$TMP/go.txt") bytes)"
else
  echo "check FAILED: promstore's and Python's bodies differ (beyond line order)" >&2
  exit 1
fi

echo
echo "load: ${SECS}s per run, text format, no compression"
RES=$TMP/results.jsonl
for c in 1 50; do
  "$TMP/loadgen" -url "$GO_URL" -c "$c" -d "${SECS}s" -label promstore -json | tee -a "$RES" >/dev/null
  "$TMP/loadgen" -url "$PY_URL" -c "$c" -d "${SECS}s" -label python -json | tee -a "$RES" >/dev/null
done

hwm() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
GO_RSS=$(hwm "$GO_PID")
PY_RSS=$(hwm "$PY_PID")

"$PY" - "$RES" "$GO_RSS" "$PY_RSS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
go_rss, py_rss = float(sys.argv[2]), float(sys.argv[3])
print("%-10s %4s %8s %10s %10s %10s %6s %5s" % ("server", "c", "scrapes", "scrapes/s", "p50 ms", "p99 ms", "errors", "cut"))
for r in rows:
    print("%-10s %4d %8d %10.2f %10.1f %10.1f %6d %5d" % (r["label"], r["concurrency"], r["scrapes"],
          r["scrapes_per_second"], r["p50_ms"], r["p99_ms"], r["errors"], r["cut"]))
print()
by = {(r["label"], r["concurrency"]): r for r in rows}
for c in (1, 50):
    g, p = by[("promstore", c)], by[("python", c)]
    if not g["scrapes"] or not p["scrapes"]:
        print("c=%-3d promstore completed %d scrapes, python %d, in %.0fs: no ratio" % (c, g["scrapes"], p["scrapes"], g["seconds"]))
        continue
    tp = g["scrapes_per_second"] / p["scrapes_per_second"]
    lat = p["p50_ms"] / g["p50_ms"]
    print("c=%-3d promstore/python: %.1fx scrapes/s, python/promstore p50 latency: %.1fx" % (c, tp, lat))
print("peak RSS: promstore %.1f MiB, python %.1f MiB (ratio python/promstore %.1fx)" % (go_rss, py_rss, py_rss / go_rss))
if any(r["errors"] for r in rows):
    sys.exit("some scrapes failed")
EOF
