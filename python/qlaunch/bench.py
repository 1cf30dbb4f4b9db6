"""Benchmarks of Python tasks on a running qlaunch runtime, beside the Go
kernels measured in the same run:

    qlaunch run configs/local.toml -- python3 -m qlaunch.bench [--tasks N] [--json]

Workloads (each the median of --repeat runs):
  client-map      a client maps N no-op Python functions       (tasks/s)
  client-map-go   a client maps N noop Go kernels               (tasks/s)
  task-map        a Python task maps N no-op Python functions   (tasks/s)
  task-map-go     a fanout Go kernel maps N noop Go kernels     (tasks/s)
  round-trip      one Python task from the client, median of 200 (µs)
  round-trip-go   one noop Go kernel from the client, median     (µs)
  task-round-trip one awaited submit inside a task, median of 200 (µs)
  nested          Python fork-join 100 x 100                    (s)
  *-chunked       the same with map(…, chunksize=--chunksize) (nested: a tenth of it)
  nested-go       fanout 100 2 (Go)                             (s)
  startup         qlaunch run … -- python3 -c (a client's first result), with --qlaunch (s)

After the table come ratios (text) or a "ratios" list (--json): each Python
figure against the Go kernel's of the same run, and against the peers'
medians measured on this kind of machine (PEERS, from
shared/reference/peer-figures.md: BQSKit with TCP_NODELAY and as shipped,
Dask), each as a speed-up (> 1: qlaunch is faster), with the issue's goal
for it. Ratios compare across runs where absolute figures do not; nothing
here fails on a figure.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import qlaunch


def noop(*_):
    return None


async def task_map(n):
    await qlaunch.get_runtime().map(noop, range(n))
    return n


async def task_map_chunked(n, chunksize):
    await qlaunch.get_runtime().map(noop, range(n), chunksize=chunksize)
    return n


async def nested(width, depth, chunksize=None):
    if depth == 0:
        return 1
    return sum(await qlaunch.get_runtime().map(nested, [width] * width, [depth - 1] * width,
                                               [chunksize] * width, chunksize=chunksize))


async def task_round_trips(k):
    """Medians of k sequential awaited submits inside a task, in µs."""
    rt = qlaunch.get_runtime()
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        await rt.submit(noop)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e6


# PEERS are the peers' medians for the same workloads on this kind of
# machine (2 vCPUs, 2 workers; shared/reference/peer-figures.md, main table
# and its TCP_NODELAY diagnostic): workload -> [(peer, value)].
PEERS = {
    "task-map": [("BQSKit+NODELAY W1 in-task", 11515), ("BQSKit W1 in-task", 9969)],
    "client-map": [("Dask local W1", 534), ("Dask tcp W1", 551),
                   ("BQSKit W1 top-level submit", 958)],
    "round-trip": [("BQSKit+NODELAY W2 client", 2013), ("Dask local W2", 10668),
                   ("BQSKit W2 client", 44001)],
    "task-round-trip": [("BQSKit+NODELAY W2 in-task", 660)],
    "nested": [("BQSKit+NODELAY W4", 0.518), ("BQSKit W4", 0.719), ("Dask local W4", 18.8)],
    "startup": [("BQSKit W5 start-up", 1.82), ("Dask local W5 start-up", 0.724)],
}
# The Go figure of the same run each Python figure is set beside.
GO_PEER = {
    "client-map": "client-map-go", "client-map-chunked": "client-map-go",
    "task-map": "task-map-go", "task-map-chunked": "task-map-go",
    "round-trip": "round-trip-go", "nested": "nested-go", "nested-chunked": "nested-go",
}
# The goals (issue 17): workload -> the figure to reach.
GOALS = {"task-map": 100000, "client-map": 50000, "round-trip": 500, "nested": 0.25, "startup": 0.3}


def higher_is_better(unit):
    return unit == "tasks/s"


def speedup(ours, theirs, unit):
    """How many times faster qlaunch's figure is than theirs (> 1: faster)."""
    if ours <= 0 or theirs <= 0:
        return float("nan")
    return ours / theirs if higher_is_better(unit) else theirs / ours


def ratios(out):
    """The ratios out (name -> (value, unit)) allows: dicts of figure,
    against, speedup; against Go first, then the peers, then the goal."""
    rs = []
    for name, (v, unit) in out.items():
        go = GO_PEER.get(name)
        if go in out:
            rs.append({"figure": name, "against": go + " (same run)", "speedup": speedup(v, out[go][0], unit)})
        base = name[:-len("-chunked")] if name.endswith("-chunked") else name
        for peer, pv in PEERS.get(base, []):
            rs.append({"figure": name, "against": peer, "speedup": speedup(v, pv, unit)})
        if base in GOALS:
            g = GOALS[base]
            r = speedup(v, g, unit)
            rs.append({"figure": name, "against": "goal %g %s" % (g, unit), "speedup": r,
                       "goal_met": r >= 1})
    return rs


def startup(qlaunch_bin, topology, python, repeat):
    """Median seconds from starting qlaunch run TOPOLOGY -- python -c … to
    its exit after the first Python result, each run with address and
    secret files of its own."""
    code = "import qlaunch\nwith qlaunch.Client() as c:\n    assert c.submit(abs, -1).result(60) == 1\n"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                    env.get("PYTHONPATH", "")] if p)
    for k in ("QLAUNCH_ADDR", "QLAUNCH_ADDRESS", "QLAUNCH_SECRET"):
        env.pop(k, None)
    ts = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="qlaunch-bench-") as d:
            env["QLAUNCH_ADDRESS_FILE"] = os.path.join(d, "addr")
            env["QLAUNCH_SECRET_FILE"] = os.path.join(d, "secret")
            t0 = time.perf_counter()
            p = subprocess.run([qlaunch_bin, "run", topology, "--", python, "-c", code], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
            ts.append(time.perf_counter() - t0)
            if p.returncode != 0:
                raise RuntimeError("startup: qlaunch run exited with status %d:\n%s" %
                                   (p.returncode, p.stderr.decode(errors="replace")))
    return statistics.median(ts)


def timed(fn, repeat):
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m qlaunch.bench")
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunksize", type=int, default=100, help="of the -chunked workloads")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--qlaunch", default="", help="qlaunch binary for the startup workload (none: skip it)")
    ap.add_argument("--topology", default="configs/local.toml", help="topology of the startup workload")
    a = ap.parse_args(argv)
    n = a.tasks
    only = set(filter(None, a.only.split(",")))
    out = {}
    with qlaunch.Client() as c:
        c.submit(noop).result(60)  # warm the executors
        c.map(noop, range(64)).result(60)

        def run(name, unit, fn):
            if only and name not in only:
                return
            out[name] = (fn(), unit)

        run("client-map", "tasks/s", lambda: n / timed(lambda: c.map(noop, range(n)).result(600), a.repeat))
        cs = a.chunksize
        run("client-map-chunked", "tasks/s",
            lambda: n / timed(lambda: c.map(noop, range(n), chunksize=cs).result(600), a.repeat))
        run("client-map-go", "tasks/s",
            lambda: n / timed(lambda: c.kernel_map("noop", [()] * n).result(600), a.repeat))
        run("task-map", "tasks/s", lambda: n / timed(lambda: c.submit(task_map, n).result(600), a.repeat))
        run("task-map-chunked", "tasks/s",
            lambda: n / timed(lambda: c.submit(task_map_chunked, n, cs).result(600), a.repeat))
        run("task-map-go", "tasks/s", lambda: n / timed(lambda: c.kernel("fanout", n, 1).result(600), a.repeat))

        def rt(submit):
            ts = []
            for _ in range(200):
                t0 = time.perf_counter()
                submit().result(60)
                ts.append(time.perf_counter() - t0)
            return statistics.median(ts) * 1e6

        run("round-trip", "µs", lambda: rt(lambda: c.submit(noop)))
        run("round-trip-go", "µs", lambda: rt(lambda: c.kernel("noop")))
        run("task-round-trip", "µs", lambda: c.submit(task_round_trips, 200).result(600))
        run("nested", "s", lambda: timed(lambda: c.submit(nested, 100, 2).result(600), a.repeat))
        run("nested-chunked", "s",
            lambda: timed(lambda: c.submit(nested, 100, 2, max(1, cs // 10)).result(600), a.repeat))
        run("nested-go", "s", lambda: timed(lambda: c.kernel("fanout", 100, 2).result(600), a.repeat))
    if a.qlaunch and (not only or "startup" in only):
        out["startup"] = (startup(a.qlaunch, a.topology, sys.executable, a.repeat), "s")
    rs = ratios(out)
    if a.json:
        doc = {k: {"value": v, "unit": u} for k, (v, u) in out.items()}
        doc["ratios"] = rs
        json.dump(doc, sys.stdout, indent=1)
        print()
        return
    for k, (v, u) in out.items():
        print("%-18s %12.1f %s" % (k, v, u) if v >= 10 else "%-18s %12.3f %s" % (k, v, u))
    if rs:
        print("\nspeed-ups (> 1: qlaunch's Python figure is better; peers' medians from shared/reference/peer-figures.md):")
        for r in rs:
            mark = ""
            if "goal_met" in r:
                mark = "  met" if r["goal_met"] else "  MISSED"
            print("  %-18s %9.3g×  against %s%s" % (r["figure"], r["speedup"], r["against"], mark))


if __name__ == "__main__":
    main()
