#!/usr/bin/env bash
# Times Python's collector (MultiProcessCollector + generate_latest) and
# `promstore dump` on the same stores written by the real prometheus_client,
# in one run, and prints for each store both times, both peak RSS values
# and the ratio. The outputs must hold the same lines (Python's order is
# its directory order, promstore's is sorted), or the script fails.
#
#   scripts/bench-dump.sh [STORE...]     (default: inorder big churn)
#   RUNS=5 (runs of each side per store)
#   PROMSTORE_BIN=path (time that binary instead of building this tree)
#   PROMSTORE_BASE=path (also time that binary, e.g. an earlier build, in
#   the same turns, and print its ratio too; the two builds take the place
#   right after Python's run in alternate turns)
#
# Stores (each written once into $BENCH_ROOT, default /tmp, and reused):
#   inorder  64 processes x 2,000 series in each of 5 families (counter,
#            histogram, summary, livesum and all gauges), every process
#            writing the same series in the same order: the reader's BEST
#            CASE (every positional key guess hits). scripts/pystore.py.
#   big      48 workers, each serving 6,500 requests over 3,000 route
#            templates of Zipf-skewed popularity: each its own subset of
#            series in its own order, every kind and every gauge mode of
#            the client. scripts/prodstore.py --size big.
#   churn    2,500 dead workers recycled after 2-12 requests each: about
#            26,000 nearly empty shards of 64 KiB. scripts/prodstore.py --size churn.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
ROOT=${BENCH_ROOT:-/tmp}
STORES=("$@")
[ ${#STORES[@]} -gt 0 ] || STORES=(inorder big churn)

PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
[ -n "$PY" ] || { echo "need a python3 with prometheus_client (apt-get install python3-prometheus-client)" >&2; exit 1; }
PYVER=$("$PY" -c 'from importlib.metadata import version; print(version("prometheus_client"))' 2>/dev/null || echo "?")

TMP=$(mktemp -d /tmp/promstore-bench-dump.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BIN=${PROMSTORE_BIN:-$TMP/promstore}
[ -n "${PROMSTORE_BIN:-}" ] || CGO_ENABLED=0 go build -o "$BIN" ./cmd/promstore

# store NAME: the directory of store NAME, written when missing.
store() {
  local dir
  case $1 in
    inorder) dir=$ROOT/promstore-bench-dump-64-2000 ;;
    big | churn) dir=$ROOT/promstore-bench-prod-$1 ;;
    *) echo "unknown store $1 (inorder, big, churn)" >&2; exit 2 ;;
  esac
  if [ ! -f "$dir/.complete" ]; then
    echo "writing the $1 store with prometheus_client $PYVER into $dir (minutes) ..." >&2
    rm -rf "$dir"
    case $1 in
      inorder) "$PY" scripts/pystore.py write "$dir" --mode bench --procs 64 --series 2000 --parallel 16 >&2 ;;
      *) "$PY" scripts/prodstore.py "$dir" --size "$1" >&2 ;;
    esac
    touch "$dir/.complete"
  fi
  echo "$dir"
}

best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
most() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

summary=()
for name in "${STORES[@]}"; do
  DIR=$(store "$name")
  files=$(find "$DIR" -name '*.db' | wc -l)
  apparent=$(du -s --apparent-size --block-size=1M "$DIR" | cut -f1)
  cat "$DIR"/*.db > /dev/null # same page cache for both
  samples=$("$BIN" dump --dir "$DIR" --raw | tail -n +2 | wc -l)
  echo "== $name: $files shard files, $apparent MiB, $samples samples in the shards"

  # The two sides take turns, so that both meet the machine in the same
  # moods (this VM's speed drifts by minutes); best time, highest peak RSS.
  py_s=; py_mb=0; py_cpu=; ps_s=; ps_mb=0; py_all=; ps_all=; ps_cpu=; b_s=; b_mb=0; b_all=
  # With a base, the two builds swap places from turn to turn: the run
  # right after Python's (which has just freed some 600 MiB) is slower on
  # this VM, whichever build it is.
  run_base() {
    read -r s mb _ _ < <("$PY" scripts/measure.py 1 "$TMP/base.prom" "$PROMSTORE_BASE" dump --dir "$DIR")
    b_all="$b_all $s"; b_s=$(best "$b_s" "$s"); b_mb=$(most "$b_mb" "$mb")
  }
  run_promstore() {
    read -r s mb u sy < <("$PY" scripts/measure.py 1 "$TMP/promstore.prom" "$BIN" dump --dir "$DIR")
    ps_all="$ps_all $s"; ps_mb=$(most "$ps_mb" "$mb")
    if [ "$(best "$ps_s" "$s")" = "$s" ]; then ps_cpu="$u user + $sy system"; fi
    ps_s=$(best "$ps_s" "$s")
  }
  for turn in $(seq "$RUNS"); do
    read -r s mb u sy < <("$PY" scripts/measure.py 1 "$TMP/python.prom" "$PY" scripts/pystore.py collect "$DIR")
    py_all="$py_all $s"; py_mb=$(most "$py_mb" "$mb")
    if [ "$(best "$py_s" "$s")" = "$s" ]; then py_cpu="$u user + $sy system"; fi
    py_s=$(best "$py_s" "$s")
    if [ -z "${PROMSTORE_BASE:-}" ]; then
      run_promstore
    elif [ $((turn % 2)) = 1 ]; then
      run_promstore; run_base
    else
      run_base; run_promstore
    fi
  done

  lines=$(wc -l < "$TMP/promstore.prom")
  if ! cmp -s <(LC_ALL=C sort "$TMP/python.prom") <(LC_ALL=C sort "$TMP/promstore.prom"); then
    echo "outputs of $name differ (as sorted lines): python $(wc -l < "$TMP/python.prom") lines, promstore $lines" >&2
    exit 1
  fi
  echo "python runs (s):   $py_all"
  echo "promstore runs (s):$ps_all"
  echo "python best run:    $py_cpu CPU-s"
  echo "promstore best run: $ps_cpu CPU-s"
  if [ -n "${PROMSTORE_BASE:-}" ]; then
    cmp -s "$TMP/base.prom" "$TMP/promstore.prom" || { echo "outputs of $PROMSTORE_BASE and promstore differ on $name" >&2; exit 1; }
    echo "base runs (s):     $b_all"
    awk -v a="$py_s" -v b="$b_s" -v d="$b_mb" 'BEGIN { printf "base (%s): best %.3f s, %.0f MiB: %.1fx faster than python\n", ENVIRON["PROMSTORE_BASE"], b, d, a/b }'
  fi
  line=$(awk -v n="$name" -v a="$py_s" -v b="$ps_s" -v c="$py_mb" -v d="$ps_mb" -v l="$lines" \
    'BEGIN { printf "%-8s python %7.2f s %6.0f MiB   promstore %6.3f s %5.0f MiB   %5.1fx faster, %4.1fx less memory (%d output lines, identical)", n, a, c, b, d, a/b, c/d, l }')
  echo "$line"
  summary+=("$line")
done

echo
echo "prometheus_client $PYVER; best time and highest peak RSS of $RUNS runs per side, taken in turns:"
printf '%s\n' "${summary[@]}"
