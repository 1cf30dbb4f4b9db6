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
"""

import argparse
import json
import statistics
import sys
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
    if a.json:
        json.dump({k: {"value": v, "unit": u} for k, (v, u) in out.items()}, sys.stdout, indent=1)
        print()
    else:
        for k, (v, u) in out.items():
            print("%-14s %12.1f %s" % (k, v, u) if v >= 10 else "%-14s %12.3f %s" % (k, v, u))


if __name__ == "__main__":
    main()
