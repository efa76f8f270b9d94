#!/usr/bin/env bash
# Times Python's collector (MultiProcessCollector + generate_latest) and
# `promstore dump` on the same store written by the real prometheus_client,
# in one run, and prints both times, the ratio and both peak RSS values.
#
#   scripts/bench-dump.sh [PROCS] [SERIES] [RUNS]     (defaults 64 2000 5)
#
# The store (PROCS worker processes x SERIES series in each of 5 families:
# counter, histogram, summary, livesum and all gauges; about 1.4 GB of
# shard files at the defaults) is written once into $BENCH_DIR
# (default /tmp/promstore-bench-dump-PROCS-SERIES) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PROCS=${1:-64}
SERIES=${2:-2000}
RUNS=${3:-5}
DIR=${BENCH_DIR:-/tmp/promstore-bench-dump-$PROCS-$SERIES}

PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
[ -n "$PY" ] || { echo "need a python3 with prometheus_client (apt-get install python3-prometheus-client)" >&2; exit 1; }

if [ ! -f "$DIR/.complete" ]; then
  echo "writing the store with prometheus_client: $PROCS processes x $SERIES series per family into $DIR ..."
  rm -rf "$DIR"
  "$PY" scripts/pystore.py write "$DIR" --mode bench --procs "$PROCS" --series "$SERIES" --parallel 16
  touch "$DIR/.complete"
fi
BIN=$(mktemp -d)/promstore
go build -o "$BIN" ./cmd/promstore

files=$(find "$DIR" -name '*.db' | wc -l)
apparent=$(du -s --apparent-size --block-size=1M "$DIR" | cut -f1)
cat "$DIR"/*.db > /dev/null # same page cache for both
echo "store: $files shard files, $apparent MiB"

# The two sides take turns, so that both meet the machine in the same
# moods (this VM's speed drifts by minutes); best time, highest peak RSS.
py_s=; py_mb=0; ps_s=; ps_mb=0; py_all=; ps_all=
for _ in $(seq "$RUNS"); do
  read -r s mb < <("$PY" scripts/measure.py 1 /tmp/bench-dump-python.prom "$PY" scripts/pystore.py collect "$DIR")
  py_all="$py_all $s"
  py_s=$(awk -v a="$py_s" -v b="$s" 'BEGIN { print (a == "" || b < a) ? b : a }'); py_mb=$(awk -v a="$py_mb" -v b="$mb" 'BEGIN { print (b > a) ? b : a }')
  read -r s mb < <("$PY" scripts/measure.py 1 /tmp/bench-dump-promstore.prom "$BIN" dump --dir "$DIR")
  ps_all="$ps_all $s"
  ps_s=$(awk -v a="$ps_s" -v b="$s" 'BEGIN { print (a == "" || b < a) ? b : a }'); ps_mb=$(awk -v a="$ps_mb" -v b="$mb" 'BEGIN { print (b > a) ? b : a }')
done

py_lines=$(wc -l < /tmp/bench-dump-python.prom)
ps_lines=$(wc -l < /tmp/bench-dump-promstore.prom)
[ "$py_lines" = "$ps_lines" ] || { echo "output line counts differ: python $py_lines, promstore $ps_lines" >&2; exit 1; }
if ! cmp -s <(sort /tmp/bench-dump-python.prom) <(sort /tmp/bench-dump-promstore.prom); then
  echo "note: outputs differ as sorted lines (expected only if the directory changed between runs)" >&2
fi

echo "python runs (s):   $py_all"
echo "promstore runs (s):$ps_all"
printf '%-28s %10s %12s\n' "" "seconds" "peak RSS MiB"
printf '%-28s %10s %12s\n' "python collector (0.16)" "$py_s" "$py_mb"
printf '%-28s %10s %12s\n' "promstore dump" "$ps_s" "$ps_mb"
awk -v a="$py_s" -v b="$ps_s" -v c="$py_mb" -v d="$ps_mb" -v n="$ps_lines" \
  'BEGIN { printf "promstore is %.1fx faster with %.1fx less peak memory (%d output lines; best time and highest peak RSS of runs taken in turns)\n", a/b, c/d, n }'
