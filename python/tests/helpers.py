"""Task functions of the tests. They live in a module of their own, as a
user's would, so executors import them through the client's sys.path."""

import asyncio
import logging
import os
import threading

import qlaunch
from qlaunch import get_runtime


def square(x):
    return x * x


def add(a, b, scale=1):
    return (a + b) * scale


def noop():
    return None


def fail(msg):
    raise ValueError(msg)


def where():
    return os.getpid(), os.environ.get("OMP_NUM_THREADS")


@qlaunch.retryable
def retryable_add(a, b):
    return a + b


async def submit_retryable(x):
    """An in-task submit of a function marked retryable: a child task of
    the retryable kernel."""
    return await get_runtime().submit(qlaunch.retryable(square), x)


def unpicklable():
    return threading.Lock()


def die():
    os.kill(os.getpid(), 9)


async def nested(width, depth):
    """A fork-join tree: width children per level, depth levels; returns the
    number of leaves."""
    if depth == 0:
        return 1
    counts = await get_runtime().map(nested, [width] * width, [depth - 1] * width)
    return sum(counts)


async def map_noops(n):
    r = await get_runtime().map(noop_arg, range(n))
    return len(r)


def noop_arg(_):
    return None


async def submit_one(x):
    return await get_runtime().submit(square, x)


async def collect_next(n):
    rt = get_runtime()
    fut = rt.map(square, range(n))
    seen = []
    while len(seen) < n:
        for i, v in await rt.next(fut):
            seen.append((i, v))
    return sorted(seen)


async def cancel_children():
    rt = get_runtime()
    fut = rt.map(sleep_then, [30.0] * 4)
    rt.cancel(fut)
    try:
        await fut
    except Exception as e:
        return type(e).__name__
    return "not cancelled"


def sleep_then(s):
    import time
    time.sleep(s)
    return s


def apply(fn, *args):
    return fn(*args)


def coordinates(point):
    return (point.x, point.y)


async def await_sleep(s):
    return await get_runtime().submit(sleep_then, s)


async def child_fails():
    try:
        await get_runtime().submit(fail, "deep")
    except Exception as e:
        return str(e)
    return "no error"


async def cache_count():
    c = get_runtime().get_cache()
    c["n"] = c.get("n", 0) + 1
    return c["n"], os.getpid()


async def awaits_asyncio():
    await asyncio.sleep(0)


def logs(level, msg):
    logging.getLogger("qlaunch.test.task").log(level, msg)
    return True


async def logs_nested(msg):
    logging.getLogger("qlaunch.test.task").warning("parent %s", msg)
    await get_runtime().submit(logs, logging.WARNING, "child " + msg, task_name="kid",
                               log_context={"who": "child"})
    return True


def in_task_handle_outside():
    return get_runtime().task_name


async def nested_chunked(width, depth, chunksize):
    """nested, with each level's map in chunks: the coroutines of a chunk
    await their own children from one task."""
    if depth == 0:
        return 1
    counts = await get_runtime().map(nested_chunked, [width] * width, [depth - 1] * width,
                                     [chunksize] * width, chunksize=chunksize)
    return sum(counts)


async def map_chunked(n, chunksize):
    rt = get_runtime()
    fut = rt.map(square, range(n), chunksize=chunksize)
    seen = []
    while len(seen) < n:
        seen.extend(await rt.next(fut))
    whole = await rt.map(square, range(n), chunksize=chunksize)
    return sorted(seen), whole


def fail_odd(x):
    if x % 2:
        raise ValueError("odd %d" % x)
    return x


# --- the behaviours of BQSKit's runtime test-suite (tests/runtime) -------

def sleepi(i):
    import time
    time.sleep(i)
    return i


async def next_no_duplicates():
    rt = get_runtime()
    fut = rt.map(sleepi, [0.3, 0.4, 0.1, 0.2, 0.5])
    seen = []
    while len(seen) < 5:
        for i, v in await rt.next(fut):
            assert v not in [s[1] for s in seen], (v, seen)
            seen.append((i, v))
    return sorted(seen)


async def await_after_next():
    rt = get_runtime()
    fut = rt.map(sleepi, [0.3, 0.4, 0.1, 0.2])
    first = await rt.next(fut)
    return len(first) >= 1, await fut


async def next_after_await():
    rt = get_runtime()
    fut = rt.map(sleepi, [0.1, 0.2])
    await fut
    try:
        await rt.next(fut)
    except RuntimeError as e:
        return "RuntimeError: %s" % e
    return "no error"


async def next_never_loses():
    import time
    rt = get_runtime()
    fut = rt.map(sleepi, [0.1])
    time.sleep(0.3)
    return await rt.next(fut)


async def future_done():
    fut = get_runtime().submit(sleepi, 0.1)
    before = fut._done
    await fut
    return before, fut._done


async def send_future():
    rt = get_runtime()
    fut = rt.submit(sleepi, 0.1)
    rt.submit(square, fut)


async def await_cancelled():
    rt = get_runtime()
    fut = rt.submit(sleepi, 1)
    rt.cancel(fut)
    await fut


async def cancel_without_await():
    rt = get_runtime()
    rt.cancel(rt.submit(sleepi, 1))
    return "ok"


def iden(i):
    return i


async def parent_pair(i):
    return await get_runtime().map(iden, [2 * i, 2 * i + 1])


async def two_level_map(n):
    return await get_runtime().map(parent_pair, list(range(n)))


async def cache_put(key, value):
    get_runtime().get_cache()[key] = value
    return os.getpid()


async def cache_get(key):
    return os.getpid(), get_runtime().get_cache().get(key)


class NonSerializable:
    def __reduce__(self):
        import pickle
        raise pickle.PicklingError("This class is not serializable")

    def __str__(self):
        return "NonSerializable"


async def log_pass():
    logging.getLogger("bqskit").info("bqskit_info")
    logging.getLogger("bqskit.dummy").info("bqskit_dummy_info")
    logging.getLogger("dummy2").info("dummy2_info")
    logging.getLogger("bqskit").debug("bqskit_debug")
    logging.getLogger("bqskit.dummy").debug("bqskit_dummy_debug")
    logging.getLogger("dummy2").debug("dummy2_debug")
    logging.getLogger("dummy2").debug("int %d", 1)
    logging.getLogger("dummy2").debug("NonSerializable %s", NonSerializable())


async def log_nested(level=0):
    logging.getLogger("bqskit").info("bqskit_level%d" % level)
    logging.getLogger("dummy2").info("dummy2_level%d" % level)
    if level < 3:
        await get_runtime().submit(log_nested, level + 1)


async def named_children():
    rt = get_runtime()
    await rt.map(log_name, [0, 1], task_name=["first", "second"],
                 log_context=[{"k": "a"}, {"k": "b"}])


def log_name(i):
    logging.getLogger("dummy2").warning("child %d", i)


def affinity(_):
    return sorted(os.sched_getaffinity(0))


def make_adder(k):
    return lambda x: x + k


def plain_map(n):
    """A plain (def) task that maps children and waits for them blocking."""
    return sum(get_runtime().map(square, range(n)).result())


def plain_nested(width, depth):
    """nested's fork-join tree, with plain tasks that block in result()."""
    if depth == 0:
        return 1
    return sum(get_runtime().map(plain_nested, [width] * width, [depth - 1] * width).result())


async def async_over_plain(width, n):
    """Async parents (suspended in await) over plain children that block:
    both kinds share the executors."""
    return sum(await get_runtime().map(plain_map, [n] * width))


def plain_next(n):
    """Takes a plain task's map results as they finish, blocking."""
    rt = get_runtime()
    fut = rt.map(square, range(n))
    seen = []
    while len(seen) < n:
        seen.extend(rt.next(fut).result())
    return sorted(seen)


def plain_child_error():
    """The error of a child waited on with result()."""
    try:
        get_runtime().submit(fail, "child failed").result()
    except qlaunch.TaskError as e:
        return str(e)
    return "no error"


async def result_in_async_task():
    """result() inside a coroutine is refused (await is the way there)."""
    fut = get_runtime().submit(square, 3)
    try:
        fut.result()
    except RuntimeError as e:
        refused = str(e)
    else:
        refused = "not refused"
    return refused, await fut


def plain_submit_retry(x):
    """An in-task submit with retry=True, waited on blocking."""
    return get_runtime().submit(square, x, retry=True).result()


def plain_submit_plain(x):
    """An in-task submit without retry."""
    return get_runtime().submit(square, x).result()


async def map_retry(n):
    """An in-task map with retry=True."""
    return await get_runtime().map(square, range(n), retry=True)


def pid_then_sleep(path):
    """Writes its executor's pid to path, then sleeps (to be killed);
    returns at once when path exists already (a retried run)."""
    if os.path.exists(path):
        return "second run"
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    import time
    time.sleep(600)
    return "not killed"


def child_retry_outcome(path):
    """A plain task whose child (retry=True) runs pid_then_sleep: the
    child's value, or the text of its error."""
    try:
        return "value", get_runtime().submit(pid_then_sleep, path, retry=True).result()
    except qlaunch.TaskError as e:
        return "error", str(e)


async def child_retry_outcome_async(path):
    """child_retry_outcome, awaiting: the child may run on the parent's own
    executor (suspended, it gives its slot back)."""
    try:
        return "value", await get_runtime().submit(pid_then_sleep, path, retry=True)
    except qlaunch.TaskError as e:
        return "error", str(e)


def pid(_):
    return os.getpid()
