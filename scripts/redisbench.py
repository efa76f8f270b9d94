#!/usr/bin/env python3
"""Compare `promstore dump` with an exporter-like Redis reader (bench-redis.sh).

    redisbench.py read PORT [PREFIX]
        Reads the store the way gunicorn-prometheus-exporter's
        RedisMultiProcessCollector does and prints one JSON line: seconds
        (the read alone, interpreter start excluded), samples, round trips,
        sum of the values.
    redisbench.py compare PORT PROMSTORE RUNS OUT
        Runs `PROMSTORE dump` (output to OUT) and `read` RUNS times each,
        in turns, every run a fresh process (the reader's runs stop once
        they took READER_BUDGET seconds in all; with PROMSTORE_BASE=binary
        that build is run too, in the same turns). Each run goes between
        CONFIG RESETSTAT and INFO commandstats, which give the server's own
        command time (the sum of usec) and commands of that run alone.
        Prints one JSON line: every run's wall time, the best run's CPU
        time (user+system) of the process, peak RSS, commands, server
        command time and CPU seconds, and the ratios.

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
    t0, c0 = time.perf_counter(), time.process_time()
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
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    total = sum(sums.values())
    print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "samples": samples, "keys": len(keys),
                      "round_trips": trips, "series": len(sums), "sum": total}))


def server_cpu(port):
    import redis
    r = redis.Redis(host="127.0.0.1", port=port)
    c = r.info("cpu")
    r.close()
    return c["used_cpu_user"] + c["used_cpu_sys"]


def reset_stats(port):
    """CONFIG RESETSTAT: zeroes INFO commandstats and the stats counters."""
    import redis
    r = redis.Redis(host="127.0.0.1", port=port)
    r.config_resetstat()
    r.close()


def command_stats(port):
    """Since the last CONFIG RESETSTAT: (calls, usec, {command: [calls, usec]})
    of every command but CONFIG RESETSTAT itself (INFO commandstats does not
    count itself: a command's stats are updated after it ran).

    usec is the time the server spent executing the commands (its own
    command time: no network, no parsing, no reply writing)."""
    import redis
    r = redis.Redis(host="127.0.0.1", port=port)
    cs = r.info("commandstats")
    r.close()
    calls = usec = 0
    per = {}
    for name, v in cs.items():
        cmd = name[len("cmdstat_"):] if name.startswith("cmdstat_") else name
        if cmd.startswith("config"):
            continue
        calls += int(v["calls"])
        usec += int(v["usec"])
        per[cmd] = [int(v["calls"]), int(v["usec"])]
    return calls, usec, per


# Seconds of exporter-like reading after which no further run starts.
READER_BUDGET = 75


def run(cmd, out):
    """Runs cmd in a fresh process; returns (wall seconds, peak RSS MiB,
    CPU seconds user+system)."""
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        p = subprocess.Popen(cmd, stdout=f)
        _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if status != 0:
        sys.exit("command failed (status %d): %s" % (status, " ".join(cmd)))
    return dt, ru.ru_maxrss / 1024.0, ru.ru_utime + ru.ru_stime


def measured(port, cmd, out):
    """Runs cmd once between CONFIG RESETSTAT and INFO commandstats."""
    cpu0 = server_cpu(port)
    reset_stats(port)
    dt, rss, cpu = run(cmd, out)
    calls, usec, per = command_stats(port)
    return {"wall": dt, "rss": rss, "cpu": cpu, "commands": calls,
            "server_usec": usec, "per_command": per,
            "server_cpu": server_cpu(port) - cpu0}


def compare(port, promstore, runs, out):
    url = "redis://127.0.0.1:%d/0" % port
    dump = [promstore, "dump", "--redis-url", url, "--strict"]
    base = os.environ.get("PROMSTORE_BASE")
    reader = [sys.executable, os.path.abspath(__file__), "read", str(port)]
    ps, bs, rs = [], [], []
    rres = None
    # Turns: promstore, (base), exporter-like reader, each a fresh process.
    for i in range(runs):
        ps.append(measured(port, dump, out))
        if base:
            bs.append(measured(port, [base] + dump[1:], out + ".base"))
        if sum(r["read"] for r in rs) > READER_BUDGET:
            continue  # keeps the benchmark bounded on a loaded machine
        m = measured(port, reader, out + ".reader")
        with open(out + ".reader") as f:
            rres = json.loads(f.read())
        m["read"], m["read_cpu"] = rres["seconds"], rres["cpu_seconds"]
        rs.append(m)
    if base:
        with open(out, "rb") as a, open(out + ".base", "rb") as b:
            if a.read() != b.read():
                sys.exit("outputs of %s and %s differ" % (promstore, base))

    def best(ms, key="wall"):
        return min(ms, key=lambda m: m[key])

    p, r = best(ps), best(rs, "read")
    res = {
        "promstore_seconds": p["wall"], "promstore_runs": [m["wall"] for m in ps],
        "promstore_cpu": p["cpu"], "promstore_rss_mib": max(m["rss"] for m in ps),
        "promstore_commands": p["commands"], "promstore_server_usec": p["server_usec"],
        "promstore_server_usec_runs": [m["server_usec"] for m in ps],
        "promstore_per_command": p["per_command"], "promstore_server_cpu": p["server_cpu"],
        "promstore_wall_over_server": [m["wall"] * 1e6 / m["server_usec"] for m in ps],
        "reader_seconds": r["read"], "reader_runs": [m["read"] for m in rs],
        "reader_cpu": r["read_cpu"], "reader_rss_mib": max(m["rss"] for m in rs),
        "reader_commands": r["commands"], "reader_server_usec": r["server_usec"],
        "reader_server_cpu": r["server_cpu"],
        "reader_round_trips": rres["round_trips"], "reader_samples": rres["samples"],
        "reader_keys": rres["keys"], "reader_sum": rres["sum"],
        "ratio": r["read"] / p["wall"],
    }
    if base:
        b = best(bs)
        res.update({"base_seconds": b["wall"], "base_runs": [m["wall"] for m in bs],
                    "base_cpu": b["cpu"], "base_server_usec": b["server_usec"],
                    "base_commands": b["commands"],
                    "base_wall_over_server": [m["wall"] * 1e6 / m["server_usec"] for m in bs],
                    "base_ratio": r["read"] / b["wall"]})
    print(json.dumps(res))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "read":
        read(int(sys.argv[2]), *sys.argv[3:4])
    elif len(sys.argv) == 6 and sys.argv[1] == "compare":
        compare(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
