#!/usr/bin/env python3
"""Write a multiprocess store that looks like production, with the real
prometheus_client.

    prodstore.py DIR --size big|churn|small [--seed X] [--parallel N]

Each simulated gunicorn worker serves its own stream of requests: routes
drawn with Zipf-skewed popularity (a few hot routes, a long tail), so
every worker writes its own subset of series in its own first-touch order.
Every metric kind and every gauge multiprocess mode the installed client
has are written, through prometheus_client's own MultiProcessValue and
MmapedDict; histograms have 15 (default) and 13 (response size) buckets;
label values are route templates of realistic lengths.

Sizes:
  big    48 workers with 6,500 requests each over 3,000 route templates
         (about 2.2M samples in 528 shards with prometheus_client 0.16).
  churn  2,500 dead workers recycled by max_requests after 2 to 12
         requests each (about 26,000 shards of 64 KiB, all nearly empty).
  small  6 workers and 40 dead ones, 160 routes (interop tests).

A worker is a fresh MultiProcessValue class with its own process id and
fresh metric objects, as in a forked gunicorn worker; several workers are
simulated one after the other in each of --parallel Python processes
(forking thousands of interpreters would take longer than the benchmark).
Process ids start at 100000, so none is alive on this host. Stdlib +
prometheus_client.
"""
import argparse
import bisect
import itertools
import os
import random
import subprocess
import sys

SIZES = {
    # workers, requests per worker (min, max), routes, dead churn workers,
    # their requests (min, max)
    "big": dict(workers=48, requests=(6500, 6500), routes=3000, churn=0, churn_requests=(0, 0)),
    "churn": dict(workers=0, requests=(0, 0), routes=600, churn=2500, churn_requests=(2, 12)),
    "small": dict(workers=6, requests=(300, 600), routes=160, churn=40, churn_requests=(1, 6)),
}
PID_BASE = 100000

RESOURCES = ["users", "orders", "projects", "organisations", "invoices", "payments", "deployments",
             "environments", "sessions", "products", "carts", "reports", "webhooks", "teams",
             "subscriptions", "notifications", "audit-logs", "api-keys", "builds", "artifacts"]
PARAMS = ["<int:id>", "<uuid:pk>", "<slug:slug>", "<int:org_id>", "<str:name>"]
PREFIXES = ["/api/v1", "/api/v2", "/internal", "/admin", "/v3/public", "/graphql/batch", "/ops"]
STATUSES = [("200", 0.86), ("201", 0.04), ("204", 0.02), ("302", 0.02), ("400", 0.02),
            ("403", 0.01), ("404", 0.02), ("500", 0.007), ("503", 0.003)]
CACHES = ["default", "sessions", "templates", "query-results", "rate-limits", "feature-flags"]
POOLS = [("primary", "busy"), ("primary", "idle"), ("replica", "busy"), ("replica", "idle")]
SIZE_BUCKETS = (100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1e6)


def routes(n, rnd):
    """n distinct route templates, 10 to 100 characters, with their methods."""
    out, seen = [], set()
    while len(out) < n:
        parts = [rnd.choice(PREFIXES)]
        for _ in range(rnd.randint(1, 4)):
            parts.append(rnd.choice(RESOURCES))
            if rnd.random() < 0.6:
                parts.append(rnd.choice(PARAMS))
        if rnd.random() < 0.3:
            parts.append(rnd.choice(["export", "search", "bulk", "history", "preview"]))
        r = "/".join(parts) + ("/" if rnd.random() < 0.5 else "")
        if r in seen:
            continue
        seen.add(r)
        methods = ["GET"] + rnd.sample(["POST", "PUT", "PATCH", "DELETE"], rnd.randint(0, 2))
        out.append((r, methods))
    return out


def simulate(d, pid, nreq, table, cum, rnd, modes):
    """One worker: nreq requests, written through a fresh MultiProcessValue."""
    from prometheus_client import values
    values.ValueClass = values.MultiProcessValue(lambda: str(pid))
    from prometheus_client import Counter, Gauge, Histogram, Summary

    reqs = Counter("http_requests", "Total HTTP requests by route template, method and status code.",
                   ["route", "method", "status"], registry=None)
    lat = Histogram("http_request_duration_seconds", "HTTP request latency in seconds, by route template and method.",
                    ["route", "method"], registry=None)
    size = Histogram("http_response_size_bytes", "HTTP response body size in bytes.", ["route"],
                     buckets=SIZE_BUCKETS, registry=None)
    body = Summary("http_request_size_bytes", "HTTP request body size in bytes.", ["route", "method"], registry=None)
    gauges = {}
    # Every gauge mode the client has, each as an application would use it.
    spec = {
        "livesum": ("http_requests_in_progress", "Requests in progress.", ["route", "method"]),
        "max": ("http_request_last_timestamp_seconds", "When a route was last requested.", ["route"]),
        "min": ("http_request_first_timestamp_seconds", "When a route was first requested.", ["route"]),
        "livemax": ("http_request_peak_latency_seconds", "Slowest request of a live worker.", ["route"]),
        "livemin": ("http_request_best_latency_seconds", "Fastest request of a live worker.", ["route"]),
        "sum": ("app_cache_entries", "Entries in the worker's caches.", ["cache"]),
        "all": ("process_worker_resident_memory_bytes", "Resident memory of each worker.", []),
        "liveall": ("app_db_pool_connections", "Database pool connections of each live worker.", ["pool", "state"]),
        "mostrecent": ("app_config_generation", "Configuration generation last loaded.", []),
        "livemostrecent": ("app_feature_flags_loaded", "Feature flags last loaded by a live worker.", []),
    }
    for mode in modes:
        name, help_, labels = spec[mode]
        gauges[mode] = Gauge(name, help_, labels, multiprocess_mode=mode, registry=None)

    t0 = 1.7e9 + rnd.random() * 1e5
    scodes = [s for s, _ in STATUSES]
    scum = list(itertools.accumulate(w for _, w in STATUSES))
    for i in range(nreq):
        route, methods = table[bisect.bisect(cum, rnd.random() * cum[-1])]
        method = methods[0] if len(methods) == 1 or rnd.random() < 0.7 else rnd.choice(methods)
        status = scodes[min(bisect.bisect(scum, rnd.random() * scum[-1]), len(scodes) - 1)]
        d_s = rnd.lognormvariate(-3.0, 1.2)
        ts = t0 + i * 0.05
        if "livesum" in gauges:
            g = gauges["livesum"].labels(route, method)
            g.inc()
        reqs.labels(route, method, status).inc()
        lat.labels(route, method).observe(d_s)
        size.labels(route).observe(int(rnd.lognormvariate(7.5, 1.5)))
        if method != "GET":
            body.labels(route, method).observe(int(rnd.lognormvariate(6, 1)))
        if "livesum" in gauges:
            g.dec()
        for mode, value in (("max", ts), ("min", ts), ("livemax", d_s), ("livemin", d_s)):
            if mode in gauges:
                gl = gauges[mode].labels(route)
                cur = gl._value.get()
                if cur == 0 or (value > cur if "max" in mode else value < cur):
                    gl.set(value)
    if "sum" in gauges:
        for c in CACHES[:rnd.randint(1, len(CACHES))]:
            gauges["sum"].labels(c).set(rnd.randint(0, 5000))
    if "all" in gauges:
        gauges["all"].set(rnd.randint(80, 400) * 1048576)
    if "liveall" in gauges:
        for p, s in POOLS:
            gauges["liveall"].labels(p, s).set(rnd.randint(0, 20))
    for mode in ("mostrecent", "livemostrecent"):
        if mode in gauges:
            gauges[mode].set(rnd.randint(1, 40))
    # The worker exits: close its files (MmapedDict keeps each open).
    fn = values.ValueClass._MmapedValue__check_for_pid_change
    files = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__)))["files"]
    for f in files.values():
        f.close()
    files.clear()


def run(args):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = args.dir
    from prometheus_client import Gauge
    modes = sorted(getattr(Gauge, "_MULTIPROC_MODES", ()))
    size = SIZES[args.size]
    rnd = random.Random(args.seed)
    table = routes(size["routes"], rnd)
    # Zipf popularity with s = 1.1 over a shuffled route list.
    cum = list(itertools.accumulate(1.0 / (k + 1) ** 1.1 for k in range(len(table))))
    jobs = []
    for w in range(size["workers"]):
        jobs.append((PID_BASE + w, rnd.randint(*size["requests"])))
    for w in range(size["churn"]):
        jobs.append((PID_BASE + size["workers"] + w, rnd.randint(*size["churn_requests"])))
    for n, (pid, nreq) in enumerate(jobs):
        if n % args.parallel != args.part:
            continue
        simulate(args.dir, pid, nreq, table, cum, random.Random(args.seed * 1000003 + pid), modes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--part", type=int, default=-1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.part >= 0:
        run(args)
        return
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), args.dir, "--size", args.size,
                               "--seed", str(args.seed), "--parallel", str(args.parallel), "--part", str(i)])
             for i in range(args.parallel)]
    if any(p.wait() != 0 for p in procs):
        sys.exit("a writer failed")


if __name__ == "__main__":
    main()
