# Sourced by the bench scripts that need a redis-server of their own.
#
# bench_redis_start DIR: starts redis-server on a free loopback port with
# DIR as its working directory, without persistence, and waits until it
# accepts connections; sets REDIS_SERVER, REDIS_PID and PORT.
# bench_redis_stop: stops it (call it from the script's EXIT trap).

bench_redis_start() {
	REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
	[ -x "$REDIS_SERVER" ] || { echo "$(basename "$0"): redis-server not found" >&2; exit 1; }
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --dir "$1" --save "" --appendonly no \
		--daemonize no --logfile "$1/redis.log" --protected-mode no &
	REDIS_PID=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "$(basename "$0"): redis-server did not start on port $PORT" >&2
	exit 1
}

bench_redis_stop() {
	if [ -n "${REDIS_PID:-}" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
}
