"""The Store contract under contention: several processes and threads, both backends.

Child processes are forked, as gunicorn forks its workers. Some open the store themselves from
its URL; others use a store the parent opened before forking, which must not hand them the
parent's connection.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from gateway.state import Store, open_store

LIVE = 60.0
JOIN_TIMEOUT = 60.0  # seconds; bounds every wait on a child, never reached when all is well
_fork = multiprocessing.get_context("fork")


def run_processes(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(index)` in `count` forked processes at once; return their results in order."""
    results: multiprocessing.Queue = _fork.Queue()
    start = _fork.Barrier(count)

    def child(index: int) -> None:
        try:
            start.wait(timeout=JOIN_TIMEOUT)
            results.put((index, "ok", work(index)))
        except BaseException as exc:
            results.put((index, "error", repr(exc)))

    processes = [_fork.Process(target=child, args=(i,)) for i in range(count)]
    for process in processes:
        process.start()
    collected = {}
    try:
        for _ in processes:
            index, status, value = results.get(timeout=JOIN_TIMEOUT)
            assert status == "ok", f"process {index} failed: {value}"
            collected[index] = value
    finally:
        for process in processes:
            process.join(timeout=JOIN_TIMEOUT)
            if process.is_alive():
                process.kill()
    return [collected[i] for i in range(count)]


def add_one(current: dict | None) -> dict:
    return {"n": (current or {"n": 0})["n"] + 1}


def test_update_from_several_processes_loses_no_write(store_url: str):
    def work(index: int) -> None:
        store = open_store(store_url)
        for _ in range(200):
            store.update("total", add_one, LIVE)
        store.close()

    run_processes(4, work)
    assert open_store(store_url).get("total") == {"n": 800}


def test_store_opened_before_fork_works_in_every_child(store: Store):
    store.put("opened-by", {"pid": "parent"}, LIVE)

    def work(index: int) -> None:
        for _ in range(100):
            store.update("total", add_one, LIVE)

    run_processes(3, work)
    assert store.get("total") == {"n": 300}
    assert store.get("opened-by") == {"pid": "parent"}


def test_update_from_many_threads_loses_no_write(store: Store):
    def work(_: int) -> None:
        for _ in range(100):
            store.update("total", add_one, LIVE)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(8)))
    assert store.get("total") == {"n": 800}


def test_update_many_from_processes_and_threads_moves_every_unit_once(store_url: str):
    """Each change takes one unit from one key and adds it to another: concurrent changes over
    overlapping keys neither lose nor double a unit."""
    def move(current: dict) -> dict:
        source, target = current["left"] or {"n": 1000}, current["right"] or {"n": 0}
        return {"left": {"n": source["n"] - 1}, "right": {"n": target["n"] + 1}}

    def work(index: int) -> None:
        store = open_store(store_url)

        def run(_: int) -> None:
            for _ in range(25):
                store.update_many({"left": LIVE, "right": LIVE}, move)
                store.update("right", add_one, LIVE)  # a single-key writer in the way

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(run, range(4)))

    run_processes(3, work)
    store = open_store(store_url)
    assert store.get("left") == {"n": 1000 - 300}
    assert store.get("right") == {"n": 300 + 300}


def test_update_appends_from_processes_and_threads_keep_every_item(store_url: str):
    def work(index: int) -> None:
        store = open_store(store_url)

        def append(thread: int) -> None:
            for n in range(25):
                item = f"{index}-{thread}-{n}"
                store.update("room", lambda v, i=item: {"m": [*(v or {"m": []})["m"], i]}, LIVE)

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(append, range(4)))

    run_processes(3, work)
    items = open_store(store_url).get("room")["m"]
    expected = [f"{p}-{t}-{n}" for p in range(3) for t in range(4) for n in range(25)]
    assert sorted(items) == sorted(expected)


def test_fifty_concurrent_incr_give_one_to_fifty(store_url: str):
    # 5 processes x 10 threads, all released at once: the member IDs of 50 callers joining.
    def work(index: int) -> list[int]:
        store = open_store(store_url)
        start = threading.Barrier(10)

        def join(_: int) -> int:
            start.wait(timeout=JOIN_TIMEOUT)
            return store.incr("room:member-ids", LIVE)

        with ThreadPoolExecutor(max_workers=10) as pool:
            return list(pool.map(join, range(10)))

    ids = [member_id for ids in run_processes(5, work) for member_id in ids]
    assert sorted(ids) == list(range(1, 51))


def test_fifty_threads_incr_give_one_to_fifty(store: Store):
    start = threading.Barrier(50)

    def join(_: int) -> int:
        start.wait(timeout=JOIN_TIMEOUT)
        return store.incr("room:member-ids", LIVE)

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(join, range(50)))
    assert sorted(ids) == list(range(1, 51))


def test_put_if_absent_race_has_one_winner_per_key(store_url: str):
    keys = [f"event:{n}" for n in range(40)]

    def work(index: int) -> list[str]:
        store = open_store(store_url)
        return [key for key in keys if store.put_if_absent(key, {"by": index}, LIVE)]

    winners = {}
    for index, keys_won in enumerate(run_processes(4, work)):
        for key in keys_won:
            assert key not in winners, f"{key} written by {winners[key]} and {index}"
            winners[key] = index
    assert sorted(winners) == sorted(keys)
    store = open_store(store_url)
    assert {key: store.get(key)["by"] for key in keys} == winners


def test_put_if_absent_race_between_threads_has_one_winner(store: Store):
    start = threading.Barrier(20)
    wins: queue.Queue[int] = queue.Queue()

    def claim(index: int) -> None:
        start.wait(timeout=JOIN_TIMEOUT)
        if store.put_if_absent("twilio-event:EV1", {"by": index}, LIVE):
            wins.put(index)

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(claim, range(20)))
    assert wins.qsize() == 1
    assert store.get("twilio-event:EV1") == {"by": wins.get_nowait()}


def test_workers_starting_together_all_open_a_new_sqlite_file(tmp_path):
    # gunicorn starts its workers at once; the first start finds no database file at all.
    for attempt in range(5):
        url = f"sqlite:///{tmp_path / f'new-{attempt}' / 'state.db'}"

        def work(index: int, url: str = url) -> int:
            return open_store(url).incr("started", LIVE)

        assert sorted(run_processes(6, work)) == [1, 2, 3, 4, 5, 6]
