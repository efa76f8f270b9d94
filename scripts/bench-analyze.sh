#!/usr/bin/env bash
# Times `promstore analyze` against `promstore dump` of the same store, in
# turns, and prints every run's time, the best of each and the ratio
# (analyze must be no slower than dump).
#
#   scripts/bench-analyze.sh [DIR] [RUNS]     (defaults: the store of
#                                             scripts/bench-dump.sh, 5)
#
# Write the default store first with scripts/bench-dump.sh (64 processes x
# 2000 series per family, 320 shards, about 1.4 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/promstore-bench-dump-64-2000}
RUNS=${2:-5}
[ -d "$DIR" ] || { echo "no store at $DIR: run scripts/bench-dump.sh first or give a directory" >&2; exit 1; }
BIN=$(mktemp -d)/promstore
CGO_ENABLED=0 go build -o "$BIN" ./cmd/promstore
files=$(find "$DIR" -maxdepth 1 -name '*.db' | wc -l)
apparent=$(du -s --apparent-size --block-size=1M "$DIR" | cut -f1)
cat "$DIR"/*.db > /dev/null # same page cache for both
echo "store: $DIR, $files shard files, $apparent MiB"
now() { date +%s.%N; }
best_d=999999 best_a=999999
for i in $(seq "$RUNS"); do
  t0=$(now); "$BIN" dump --dir "$DIR" > /dev/null; t1=$(now)
  "$BIN" analyze --dir "$DIR" -o json > /dev/null; t2=$(now)
  d=$(echo "$t1 - $t0" | bc); a=$(echo "$t2 - $t1" | bc)
  printf 'run %d: dump %.3f s, analyze %.3f s\n' "$i" "$d" "$a"
  best_d=$(echo "if ($d < $best_d) $d else $best_d" | bc)
  best_a=$(echo "if ($a < $best_a) $a else $best_a" | bc)
done
printf 'best of %d: dump %.3f s, analyze %.3f s, analyze/dump %.2f\n' "$RUNS" "$best_d" "$best_a" "$(echo "$best_a / $best_d" | bc -l)"
