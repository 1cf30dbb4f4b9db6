"""qlaunch from Python: a client map, a nested map inside a task, and a
BQSKit-style pass, on the runtime that `qlaunch run` starts:

    qlaunch run configs/local.toml -- python3 examples/python/hello.py

(with qlaunch's Python package installed, `pip install ./python`, or not:
this script then finds it in the repository, and so do the executors,
through the client's sys.path).
"""

import logging
import os
import sys
import time

try:
    import qlaunch
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
    import qlaunch


def square(x):
    return x * x


async def count_leaves(width, depth):
    """Nested fork-join: each task maps width children, depth levels."""
    if depth == 0:
        return 1
    rt = qlaunch.get_runtime()
    return sum(await rt.map(count_leaves, [width] * width, [depth - 1] * width))


def optimize_block(block):
    """Stands for the expensive work on one block of a circuit."""
    return sorted(block)


class SortBlocksPass:
    """Written the way a BQSKit pass is: an async run() that farms its
    blocks out with get_runtime().map and awaits them."""

    async def run(self, circuit, data):
        rt = qlaunch.get_runtime()
        logging.getLogger("example.pass").info("optimizing %d blocks", len(circuit))
        cache = rt.get_cache()
        cache["runs"] = cache.get("runs", 0) + 1
        data["optimized"] = await rt.map(optimize_block, circuit, task_name="optimize")
        return data


async def run_pass(p, circuit):
    return await p.run(circuit, {})


def main():
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s (rank %(rank)s): %(message)s")
    with qlaunch.Client() as client:
        print("squares:", client.map(square, range(10)).result())
        t0 = time.perf_counter()
        leaves = client.submit(count_leaves, 10, 3).result()
        print("nested map: %d leaves in %.3f s" % (leaves, time.perf_counter() - t0))
        circuit = [[3, 1, 2], [9, 7, 8], [6, 4, 5]]
        print("pass:", client.submit(run_pass, SortBlocksPass(), circuit).result())
        print("Go kernel fanout 10 2:", client.kernel("fanout", 10, 2).result().decode())
        try:
            client.submit(int, "not a number").result()
        except qlaunch.TaskError as e:
            print("remote error on rank %d (%s): %s" % (e.rank, e.host, e.message.splitlines()[-1]))


if __name__ == "__main__":
    main()
