#!/usr/bin/env python3
"""Compare `promstore dump` with an exporter-like Redis reader (bench-redis.sh).

    redisbench.py read PORT [PREFIX]
        Reads the store the way gunicorn-prometheus-exporter's
        RedisMultiProcessCollector does and prints one JSON line: seconds
        (the read alone, interpreter start excluded), samples, round trips,
        sum of the values.
    redisbench.py compare PORT PROMSTORE RUNS OUT
        Runs `PROMSTORE dump` (output to OUT) and `read` RUNS times each,
        alternating, every run a fresh process (the reader's runs stop once
        they took READER_BUDGET seconds in all); prints the best time of
        each, the ratio, samples/s, peak RSS and the server-side command and
        read-event counts and CPU seconds (INFO stats and cpu deltas) of
        the last run of each.

The reader does exactly what RedisMultiProcessCollector._read_metrics_from_redis
does with redis-py (the client the exporter uses, decode_responses=False):
list(scan_iter(match="<prefix>:*:*:metric:*", count=100)), then for each
metric key, one after the other: HGETALL of its meta hash (":metric:"
replaced by ":meta:"), json.loads of original_key through a cache, HGET
value, HGET timestamp, float(); the aggregation is kept minimal (a sum per
series name and labels). Every command is a blocking call, so round trips
equal commands sent. Needs /usr/bin/python3 (Debian's python3-redis).
"""
import json
import os
import resource
import subprocess
import sys
import time


def read(port, prefix="gunicorn"):
    import redis
    r = redis.Redis(host="127.0.0.1", port=port, db=0, decode_responses=False,
                    socket_timeout=5.0, socket_connect_timeout=5.0)
    t0 = time.perf_counter()
    trips = 0

    # scan_iter, counting its SCAN calls (the same loop redis-py runs).
    keys, cursor = [], "0"
    while cursor != 0:
        cursor, batch = r.scan(cursor=cursor, match=prefix + ":*:*:metric:*", count=100)
        trips += 1
        keys.extend(batch)

    cache = {}
    sums = {}
    samples = 0
    for k in keys:
        meta = r.hgetall(k.replace(b":metric:", b":meta:", 1))
        trips += 1
        if not meta:
            continue
        ok = meta.get(b"original_key")
        if not ok:
            continue
        ok = ok.decode("utf-8")
        parsed = cache.get(ok)
        if parsed is None:
            metric_name, name, labels, help_text = json.loads(ok)
            parsed = cache[ok] = (name, tuple(sorted(labels.items())))
        value = r.hget(k, "value")
        timestamp = r.hget(k, "timestamp")
        trips += 2
        if value is None or timestamp is None:
            continue
        v = float(value)
        float(timestamp)
        sums[parsed] = sums.get(parsed, 0.0) + v
        samples += 1
    dt = time.perf_counter() - t0
    total = sum(sums.values())
    print(json.dumps({"seconds": dt, "samples": samples, "keys": len(keys),
                      "round_trips": trips, "series": len(sums), "sum": total}))


def info(port):
    """Server counters: commands, read events, CPU seconds (user+sys)."""
    import redis
    r = redis.Redis(host="127.0.0.1", port=port)
    s = r.info("stats")
    c = r.info("cpu")
    r.close()
    return (s["total_commands_processed"], s.get("total_reads_processed", 0),
            c["used_cpu_user"] + c["used_cpu_sys"])


# Seconds of exporter-like reading after which no further run starts.
READER_BUDGET = 75


def run(cmd, out):
    """Runs cmd in a fresh process; returns (wall seconds, peak RSS MiB, stdout)."""
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        p = subprocess.Popen(cmd, stdout=f)
        _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if status != 0:
        sys.exit("command failed (status %d): %s" % (status, " ".join(cmd)))
    return dt, ru.ru_maxrss / 1024.0


def compare(port, promstore, runs, out):
    dump = [promstore, "dump", "--redis-url", "redis://127.0.0.1:%d/0" % port, "--strict"]
    reader = [sys.executable, os.path.abspath(__file__), "read", str(port)]
    ptimes, prss, rtimes, rrss = [], [], [], []
    pcmds = rcmds = None
    rres = None
    for i in range(runs):
        c0 = info(port)
        dt, rss = run(dump, out)
        c1 = info(port)
        ptimes.append(dt)
        prss.append(rss)
        # INFO stats + INFO cpu are two commands: subtract those counted in c1.
        pcmds = (c1[0] - c0[0] - 2, c1[1] - c0[1] - 2, c1[2] - c0[2])

        if sum(rtimes) > READER_BUDGET:
            continue  # keeps the benchmark bounded on a loaded machine
        c0 = info(port)
        _, rss = run(reader, out + ".reader")
        c1 = info(port)
        with open(out + ".reader") as f:
            rres = json.loads(f.read())
        rtimes.append(rres["seconds"])
        rrss.append(rss)
        rcmds = (c1[0] - c0[0] - 2, c1[1] - c0[1] - 2, c1[2] - c0[2])
    print(json.dumps({
        "promstore_seconds": min(ptimes), "promstore_runs": ptimes,
        "promstore_rss_mib": max(prss),
        "promstore_commands": pcmds[0], "promstore_reads": pcmds[1], "promstore_server_cpu": pcmds[2],
        "reader_seconds": min(rtimes), "reader_runs": rtimes,
        "reader_rss_mib": max(rrss),
        "reader_commands": rcmds[0], "reader_reads": rcmds[1], "reader_server_cpu": rcmds[2],
        "reader_round_trips": rres["round_trips"], "reader_samples": rres["samples"],
        "reader_keys": rres["keys"], "reader_sum": rres["sum"],
        "ratio": min(rtimes) / min(ptimes),
    }))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "read":
        read(int(sys.argv[2]), *sys.argv[3:4])
    elif len(sys.argv) == 6 and sys.argv[1] == "compare":
        compare(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
