#!/usr/bin/env bash
# Benchmark of `promstore cleanup --dead-pids` on a directory of dead-pid
# shards written by the real prometheus_client (Debian's /usr/bin/python3,
# prometheus_client 0.16, 8-byte layout).
#
#   scripts/bench-cleanup.sh [PROCS] [SERIES]
#
# pystore.py --mode bench writes 5 shards per process (counter, histogram,
# summary, gauge_livesum, gauge_all), so PROCS=1000 (the default) gives
# 5,000 shards. The pids start at 100000, above the kernel's pid_max
# (32768 by default, at most 4194304 only if raised), so that none of them
# can be a running process. Files are back-dated two hours so that
# --min-idle does not spare them.
#
# Prints: the time to write the store, promstore dump and Python's
# MultiProcessCollector before and after, the cleanup itself, and checks
# that the output after equals the output before minus the live gauge
# family (bench_inflight, mode livesum), numerically within 1e-9.
set -euo pipefail

PROCS=${1:-1000}
SERIES=${2:-10}
PY=${PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-cleanup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DIR="$WORK/store"
BIN="$WORK/promstore"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f s", b - a }'; }

echo "building promstore"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$BIN" ./cmd/promstore)

echo "writing $PROCS processes x $SERIES series with $PY (prometheus_client $("$PY" -c 'import prometheus_client, importlib.metadata as m; print(m.version("prometheus_client"))' 2>/dev/null || echo '?'))"
t=$(now)
"$PY" "$ROOT/scripts/pystore.py" write "$DIR" --procs "$PROCS" --series "$SERIES" --pid-base 100000 --mode bench
echo "  written in $(since "$t")"
find "$DIR" -name '*.db' -exec touch -d '2 hours ago' {} +
SHARDS=$(find "$DIR" -name '*.db' | wc -l)
BYTES=$(du -sb "$DIR" | cut -f1)
echo "  $SHARDS shards, $BYTES bytes"

t=$(now); "$BIN" dump --dir "$DIR" >"$WORK/before.prom"; echo "promstore dump before:   $(since "$t")"
t=$(now); "$PY" "$ROOT/scripts/pystore.py" collect "$DIR" >"$WORK/py-before.prom"; echo "python collector before: $(since "$t")"

t=$(now); "$BIN" cleanup --dir "$DIR" --dead-pids --dry-run >/dev/null; echo "cleanup --dry-run:       $(since "$t")"
t=$(now); "$BIN" cleanup --dir "$DIR" --dead-pids >"$WORK/cleanup.out"; echo "cleanup --dead-pids:     $(since "$t")"
tail -n 1 "$WORK/cleanup.out" | sed 's/^/  /'
SHARDS_AFTER=$(find "$DIR" -name '*.db' | wc -l)
echo "  $SHARDS_AFTER shards left, $(du -sb "$DIR" | cut -f1) bytes"

t=$(now); "$BIN" dump --dir "$DIR" >"$WORK/after.prom"; echo "promstore dump after:    $(since "$t")"
t=$(now); "$PY" "$ROOT/scripts/pystore.py" collect "$DIR" >"$WORK/py-after.prom"; echo "python collector after:  $(since "$t")"

# Compare: before minus bench_inflight (livesum) == after, as numbers.
"$PY" - "$WORK" <<'EOF'
import math, re, sys
work = sys.argv[1]
def load(name):
    out = {}
    for line in open(f"{work}/{name}", encoding="utf-8"):
        if line.startswith("#") or not line.strip() or line.startswith("bench_inflight"):
            continue
        key, _, val = line.rstrip("\n").rpartition(" ")
        out[key] = float(val)
    return out
def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
bad = 0
for before, after in (("before.prom", "after.prom"), ("py-before.prom", "py-after.prom"), ("after.prom", "py-after.prom")):
    a, b = load(before), load(after)
    diff = [k for k in set(a) | set(b) if k not in a or k not in b or not same(a[k], b[k])]
    print(f"{before} vs {after}: {len(a)} samples, {len(diff)} differ")
    for k in sorted(diff)[:5]:
        print("   ", k, a.get(k), b.get(k))
    bad += len(diff)
sys.exit(1 if bad else 0)
EOF
