#!/usr/bin/env bash
# bench-migrate.sh: samples/s that `promstore migrate file-to-redis` moves
# from a multiprocess directory into a local redis-server.
#
#   scripts/bench-migrate.sh [PROCS] [SERIES]     (default 64 5000: 1,024,000 samples)
#   ROUNDS=3   migrations, each followed by the server's ceiling measured
#              on the same emptied server; the share of each and the median
#
# The store is generated with promstore's own file store writer
# (scripts/genstore, a Go program): writing a million samples through the
# Python client would take minutes. The redis-server runs on a free
# loopback port in a temporary directory, without persistence, and is
# stopped at the end. The rate printed by promstore covers reading the
# source, reading the (empty) target, planning and writing; the wall time
# below also includes verification (reading all of Redis back).
set -euo pipefail

PROCS=${1:-64}
SERIES=${2:-5000}
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
# shellcheck source=lib/redis.sh
. "$ROOT/scripts/lib/redis.sh"
cleanup() {
	bench_redis_stop
	rm -rf "$WORK"
}
trap cleanup EXIT

cd "$ROOT"
CGO_ENABLED=0 go build -o "$WORK/promstore" ./cmd/promstore
go run ./scripts/genstore -dir "$WORK/store" -procs "$PROCS" -series "$SERIES"

bench_redis_start "$WORK"

echo "promstore migrate file-to-redis of $(du -sh "$WORK/store" | cut -f1) into redis-server $("$REDIS_SERVER" --version | awk '{print $3}') on 127.0.0.1:$PORT, $ROUNDS rounds"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
# The server's own ceiling on this machine: redis-benchmark (the C client
# shipped with Redis, pipelining 100 commands) creating the two hashes the
# exporter layout needs per sample, a metric hash of 3 fields and a meta
# hash of 4 with a typical original_key, under random new names. No
# client can migrate faster than the server can create these. It is
# measured in every round, right after the migration, on the same empty
# server: this VM's speed drifts by 2x within minutes.
ceiling() {
	command -v redis-benchmark >/dev/null || { echo 0; return; }
	redis-cli -p "$PORT" flushall >/dev/null
	local N=1000000 KEY m t
	KEY='["http_request_duration_seconds", "http_request_duration_seconds_bucket", {"le": "0.25", "method": "GET", "route": "/api/v1/items/<id>", "status": "200"}, "Request latency"]'
	m=$(redis-benchmark -p "$PORT" -n "$N" -r 1000000000 -P 100 --csv hset 'gunicorn:histogram:__rand_int__:metric:0123456789abcdef0123456789abcdef' value 1.0 timestamp 0.0 updated_at 1732550000.123456 | tail -1 | awk -F'","' '{print $(NF-6)}')
	t=$(redis-benchmark -p "$PORT" -n "$N" -r 1000000000 -P 100 --csv hset 'gunicorn:histogram:__rand_int__:meta:0123456789abcdef0123456789abcdef' original_key "$KEY" created_at 1732550000.123456 typ histogram multiprocess_mode all | tail -1 | awk -F'","' '{print $(NF-6)}')
	echo "1 / (1 / $m + 1 / $t)" | bc -l
}
ratios=()
for round in $(seq "$ROUNDS"); do
	redis-cli -p "$PORT" flushall >/dev/null
	r0=$(cpu "$REDIS_PID")
	start=$(date +%s.%N)
	"$WORK/promstore" migrate file-to-redis --dir "$WORK/store" --redis-url "redis://127.0.0.1:$PORT/0" "${@:3}" >"$WORK/migrate.out" &
	MIG=$!
	# promstore's own CPU time, read just before it exits (it is our child).
	p=0
	while kill -0 "$MIG" 2>/dev/null; do
		p=$(cpu "$MIG" 2>/dev/null || echo "$p")
		sleep 0.2
	done
	wait "$MIG"
	end=$(date +%s.%N)
	r1=$(cpu "$REDIS_PID")
	rate=$(sed -n 's/.*(\([0-9]*\) samples\/s).*/\1/p' "$WORK/migrate.out" | head -1)
	c=$(ceiling)
	ratio=$(echo "scale=1; 100 * $rate / $c" | bc -l 2>/dev/null || echo 0)
	ratios+=("$ratio")
	printf "round %d: %s\n  wall time including verification %.1fs; CPU: promstore %.2fs (at most 0.2s before exit), redis-server %.2fs\n  redis-server ceiling (redis-benchmark, -P 100, right after): %.0f samples/s => migrate at %s%% of it\n" \
		"$round" "$(head -1 "$WORK/migrate.out")" "$(echo "$end - $start" | bc)" "$(echo "scale=2; $p / $TCK" | bc)" "$(echo "scale=2; ($r1 - $r0) / $TCK" | bc)" "$c" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo "share of the ceiling, per round: ${ratios[*]} (%); median ${median}% (target >= 90%)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
