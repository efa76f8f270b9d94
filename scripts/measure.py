#!/usr/bin/env python3
"""measure.py RUNS OUTFILE CMD...: run CMD RUNS times with stdout to OUTFILE;
print the best wall time in seconds and the peak RSS in MiB (of the run
with the best time) as "seconds mib". Stdlib only."""
import os
import resource
import subprocess
import sys
import time

runs, outfile, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
best = None
for _ in range(runs):
    # A fresh process per run, so that ru_maxrss of the children is this
    # child's own peak.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with open(outfile, "wb") as out:
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, stdout=out)
            dt = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        os.write(w, ("%d %f %f" % (rc, dt, rss)).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 100)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    rc, dt, rss = data.split()
    if int(rc) != 0:
        sys.exit("command failed: %s" % " ".join(cmd))
    dt, rss = float(dt), float(rss)
    if best is None or dt < best[0]:
        best = (dt, rss)
print("%.3f %.1f" % best)
