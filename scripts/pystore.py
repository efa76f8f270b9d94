#!/usr/bin/env python3
"""Write and read Prometheus multiprocess stores with the real prometheus_client.

    pystore.py write DIR [--procs N] [--series S] [--seed X] [--pid-base P] [--mode plan|bench]
        Starts N real worker processes (each its own Python interpreter) that
        write metrics of every kind and every gauge multiprocess mode the
        installed client supports into DIR, with process ids P, P+1, ...
    pystore.py collect DIR
        Prints generate_latest(MultiProcessCollector) of DIR: what a Python
        app would serve.
    pystore.py serve DIR PORT
        Serves DIR at http://127.0.0.1:PORT/metrics with the Python
        collector (for the serve load benchmark).

Used by promstore's interop tests and benchmarks; stdlib + prometheus_client.
"""
import argparse
import math
import os
import random
import subprocess
import sys

TRICKY = [
    "plain", "", " spaced ", "café", "日本", "🚀 rocket", 'say "hi"', "back\\slash",
    "new\nline", "tab\there", "cr\rret", "ls\u2028sep", "{a=\"b\",c=d}", "trailing\\",
    "lit\\n", "/api/v1/items/7?x=1&y=2", "\x7fdel", "L" * 300,
]
HELP = 'Help with "quotes", back\\slash, new\nline, café 日本 🚀 and a trailing backslash \\'
SPECIAL = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324, 1e-07]
CUSTOM_BUCKETS = (1e-05, 0.001, 0.5, 1.0, 2.5, 100.0, 1e6, 12345678.9, 1.5e7, 1e10, 1e21)


def worker(args):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = args.dir
    from prometheus_client import values
    values.ValueClass = values.MultiProcessValue(lambda: str(args.pid))
    from prometheus_client import Counter, Gauge, Histogram, Summary

    rnd = random.Random(args.seed * 100003 + args.pid)
    series = args.series
    modes = sorted(getattr(Gauge, "_MULTIPROC_MODES", ()))

    def lab(i):
        return {"route": "/api/v1/items/%d" % i, "tag": TRICKY[i % len(TRICKY)]}

    if args.mode == "bench":
        # Realistic sizes: long routes and help texts, as web apps have.
        help_ = "Benchmark metric of a typical Django or Flask application, labelled by route template and method."
        c = Counter("bench_requests", help_, ["route", "method", "status"])
        h = Histogram("bench_latency_seconds", help_, ["route", "method"])
        s = Summary("bench_payload_bytes", help_, ["route", "method"])
        g = Gauge("bench_inflight", help_, ["route", "method"], multiprocess_mode="livesum")
        ga = Gauge("bench_last", help_, ["route", "method"], multiprocess_mode="all")
        for i in range(series):
            r = "/api/v2/organisations/<org_id>/projects/<project_id>/environments/%d/deployments/<deployment_id>" % i
            m = ("GET", "POST", "PUT", "DELETE")[i % 4]
            c.labels(r, m, str(200 + i % 5)).inc(rnd.randint(1, 9))
            h.labels(r, m).observe(rnd.random() * 3)
            s.labels(r, m).observe(rnd.random() * 1000)
            g.labels(r, m).set(rnd.randint(0, 9))
            ga.labels(r, m).set(rnd.random())
        return

    c = Counter("app_requests", HELP, ["route", "tag"])
    ev = Counter("app_events_total", "Events (declared with _total).", ["kind"])
    nl = Counter("app_nolabel", "")
    h = Histogram("app_latency_seconds", HELP, ["route", "tag"])
    hc = Histogram("app_size_bytes", "Custom buckets.", ["route"], buckets=CUSTOM_BUCKETS)
    s = Summary("app_payload_bytes", HELP, ["route"])
    for i in range(series):
        if rnd.random() < 0.8:
            c.labels(**lab(i)).inc(rnd.randint(1, 1000) / 4)
        ev.labels(TRICKY[i % len(TRICKY)]).inc()
        for _ in range(rnd.randint(0, 4)):
            h.labels(**lab(i)).observe(rnd.choice([0.001, 0.03, 0.2, 0.7, 3.0, 12.0]))
        hc.labels("/r/%d" % i).observe(rnd.choice([1e-06, 0.3, 2.0, 5e5, 1.2e7, 1e9, 1e22]))
        s.labels("/r/%d" % i).observe(rnd.random() * 1e4)
    nl.inc(args.pid % 7)
    for mode in modes:
        g = Gauge("app_gauge_" + mode, "Gauge mode " + mode + ". " + HELP, ["route", "tag"],
                  multiprocess_mode=mode)
        for i in range(series):
            if rnd.random() < 0.15:
                continue
            gl = g.labels(**lab(i))
            if "mostrecent" in mode and i % 5 == 0:
                continue  # created, never set: Python leaves it out
            if rnd.random() < 0.1:
                gl.set(rnd.choice(SPECIAL))
            else:
                gl.set(round(rnd.uniform(-1000, 1000), 4))
        Gauge("app_nolabel_gauge_" + mode, "", multiprocess_mode=mode).set(args.pid % 11)


def write(args):
    os.makedirs(args.dir, exist_ok=True)
    procs = []
    for n in range(args.procs):
        cmd = [sys.executable, os.path.abspath(__file__), "_worker", args.dir,
               "--pid", str(args.pid_base + n), "--series", str(args.series),
               "--seed", str(args.seed), "--mode", args.mode]
        procs.append(subprocess.Popen(cmd))
        if len(procs) >= args.parallel:
            if procs.pop(0).wait() != 0:
                sys.exit("worker failed")
    for p in procs:
        if p.wait() != 0:
            sys.exit("worker failed")


def collect(args):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=args.dir)
    sys.stdout.buffer.write(generate_latest(reg))


def serve(args):
    from wsgiref.simple_server import make_server, WSGIRequestHandler
    from prometheus_client import CollectorRegistry, make_wsgi_app
    from prometheus_client.multiprocess import MultiProcessCollector
    reg = CollectorRegistry()
    MultiProcessCollector(reg, path=args.dir)

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass
    httpd = make_server("127.0.0.1", args.port, make_wsgi_app(reg), handler_class=Quiet)
    print("ready", flush=True)
    httpd.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("write", "_worker"):
        p = sub.add_parser(name)
        p.add_argument("dir")
        p.add_argument("--procs", type=int, default=4)
        p.add_argument("--parallel", type=int, default=8)
        p.add_argument("--series", type=int, default=12)
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--pid-base", type=int, default=4100)
        p.add_argument("--pid", type=int, default=0)
        p.add_argument("--mode", choices=("plan", "bench"), default="plan")
    p = sub.add_parser("collect")
    p.add_argument("dir")
    p = sub.add_parser("serve")
    p.add_argument("dir")
    p.add_argument("port", type=int)
    args = ap.parse_args()
    {"write": write, "_worker": worker, "collect": collect, "serve": serve}[args.cmd](args)


if __name__ == "__main__":
    main()
