#!/usr/bin/env python3
"""measure.py RUNS OUTFILE CMD...: run CMD RUNS times with stdout to OUTFILE;
print the best wall time in seconds, the peak RSS in MiB and the user and
system CPU seconds (of the run with the best time) as "seconds mib user sys".
Stdlib only."""
import os
import resource
import subprocess
import sys
import time

runs, outfile, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
best = None
for _ in range(runs):
    # A fresh process per run, so that the children's ru_maxrss and CPU
    # times are this child's own.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        with open(outfile, "wb") as out:
            t0 = time.perf_counter()
            rc = subprocess.call(cmd, stdout=out)
            dt = time.perf_counter() - t0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        os.write(w, ("%d %f %f %f %f" % (rc, dt, ru.ru_maxrss / 1024.0, ru.ru_utime, ru.ru_stime)).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 100)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    rc, *vals = data.split()
    if int(rc) != 0:
        sys.exit("command failed: %s" % " ".join(cmd))
    vals = tuple(float(v) for v in vals)
    if best is None or vals[0] < best[0]:
        best = vals
print("%.3f %.1f %.2f %.2f" % best)
