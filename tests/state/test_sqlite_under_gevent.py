"""Under gevent (gunicorn's gevent workers), waiting for SQLite's write lock must not stall the
other greenlets of the process: while another process holds the lock, a greenlet's write waits,
the others keep running, and the write lands once the lock is free. So for the store, and for
the embedded job queue a web process adds jobs to.

The gevent side runs in a child process (monkey-patching is for the whole process); the lock is
held by this one, through a plain sqlite3 connection."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, sys, time
    import gevent
    from gateway.state.sqlite import SqliteStore

    if sys.argv[2] == "store":
        store = SqliteStore(sys.argv[1])
        write = lambda: store.put("call:CA1", {"step": 1}, 60)
        read = lambda: store.get("call:CA1")
    else:
        from gateway.jobqueue import queue_for
        queue = queue_for("sqlite:///" + sys.argv[1]).storage
        write = lambda: queue.enqueue(b"job")
        read = lambda: queue.queue_size()
    ticks = []
    def tick():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)
    ticker = gevent.spawn(tick)
    gevent.sleep(0.05)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent holds the write lock now
    began = time.monotonic()
    write()  # waits for the lock
    waited = time.monotonic() - began
    ticker.kill()
    during = [t for t in ticks if began <= t <= began + waited]
    print(json.dumps({"waited": waited, "ticks_while_waiting": len(during),
                      "value": read()}), flush=True)
""")


def held_while_a_greenlet_writes(store: Path, locked: Path, what: str) -> dict:
    """Hold `locked`'s write lock for 0.5 s while the gevent child writes (`what`: the `store`,
    or the job queue that goes with it); the child's report."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store), what],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "ready"
        holder = sqlite3.connect(locked, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(0.5)
        holder.execute("COMMIT")
        holder.close()
        result = json.loads(child.stdout.readline())
    finally:
        child.kill()
        child.wait(10)
    return result


def test_a_write_waiting_for_the_lock_lets_the_other_greenlets_run(tmp_path: Path):
    path = tmp_path / "gateway.db"
    result = held_while_a_greenlet_writes(path, path, "store")
    assert result["value"] == {"step": 1}
    assert result["waited"] >= 0.3  # it did wait for the lock
    # A tick every 10 ms: a stalled process would have ticked once or not at all.
    assert result["ticks_while_waiting"] >= 10


def test_a_job_queued_while_the_worker_holds_the_queue_lets_the_other_greenlets_run(
        tmp_path: Path):
    result = held_while_a_greenlet_writes(tmp_path / "gateway.db",
                                          tmp_path / "gateway-queue.db", "queue")
    assert result["value"] == 1  # the job is queued once the lock is free
    assert result["waited"] >= 0.3
    assert result["ticks_while_waiting"] >= 10


# Several greenlets of one process write while another process holds the lock: they wait
# together, and the first commits them all in one transaction (group commit), each keeping its
# own outcome. The child reports each write's outcome and, once all are done, the store.
WAITING_TOGETHER = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, sys
    import gevent
    from gateway.state import StoreUnavailable
    from gateway.state.sqlite import SqliteStore

    store = SqliteStore(sys.argv[1], busy_timeout=float(sys.argv[2]))
    store.put("call:CA0", {"step": 0}, 60)          # already there
    store.put("ended:CA3", {"ended_at": 1.0}, 60)   # the end of CA3 is marked
    writes = {
        "claim CA1": lambda: store.put_if_absent("call:CA1", {"step": 1}, 60),
        "claim CA0 again": lambda: store.put_if_absent("call:CA0", {"step": 99}, 60),
        "save CA2": lambda: store.put("call:CA2", {"step": 2}, 60, unless="ended:CA2"),
        "save CA3 after its end": lambda: store.put("call:CA3", {"step": 3}, 60,
                                                    unless="ended:CA3"),
        "first of two": lambda: store.put("room:R", {"n": 1}, 60),
        "second of two": lambda: store.put("room:R", {"n": 2}, 60),
    }
    def outcome(write):
        try:
            return write()
        except StoreUnavailable:
            return "unavailable"
    print("ready", flush=True)
    sys.stdin.readline()  # the parent holds the write lock now
    greenlets = {name: gevent.spawn(outcome, write) for name, write in writes.items()}
    gevent.sleep(0.2)
    waiting = sum(not g.ready() for g in greenlets.values())
    gevent.joinall(list(greenlets.values()))
    keys = ["call:CA0", "call:CA1", "call:CA2", "call:CA3", "room:R"]
    print(json.dumps({"waiting": waiting,
                      "outcomes": {name: g.value for name, g in greenlets.items()},
                      "values": {key: store.get(key) for key in keys}}), flush=True)
""")


def commits_in_wal(path: Path) -> int:
    """Transactions committed in the database's write-ahead log (since it last started over):
    its frames that end a transaction, of the log's current generation (its salts)."""
    data = Path(f"{path}-wal").read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    commits, offset = 0, 32
    while offset + 24 + page_size <= len(data):
        header = data[offset:offset + 24]
        if header[8:16] != salts:
            break
        commits += int.from_bytes(header[4:8], "big") != 0  # the database's size: a commit
        offset += 24 + page_size
    return commits


def writes_waiting_together(path: Path, hold: float, busy_timeout: float) -> dict:
    child = subprocess.Popen([sys.executable, "-c", WAITING_TOGETHER, str(path),
                              str(busy_timeout)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "ready"
        before = commits_in_wal(path)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(hold)
        holder.execute("COMMIT")
        holder.close()
        result = json.loads(child.stdout.readline())
        after = commits_in_wal(path) if Path(f"{path}-wal").exists() else None  # checkpointed
        return {**result, "commits": None if after is None else after - before}
    finally:
        child.kill()
        child.wait(10)


def test_writes_waiting_for_the_lock_together_land_each_with_its_own_outcome(tmp_path: Path):
    result = writes_waiting_together(tmp_path / "gateway.db", hold=0.5, busy_timeout=5.0)
    assert result["waiting"] == 6  # none could write while the other process held the lock
    assert result["commits"] == 1  # all six in one transaction
    assert result["outcomes"] == {"claim CA1": True, "claim CA0 again": False,
                                  "save CA2": True, "save CA3 after its end": False,
                                  "first of two": True, "second of two": True}
    assert result["values"] == {"call:CA0": {"step": 0}, "call:CA1": {"step": 1},
                                "call:CA2": {"step": 2}, "call:CA3": None,
                                "room:R": {"n": 2}}  # in the order they came


def test_writes_waiting_together_past_the_busy_timeout_all_fail_and_none_lands(tmp_path: Path):
    result = writes_waiting_together(tmp_path / "gateway.db", hold=1.5, busy_timeout=0.5)
    assert set(result["outcomes"].values()) == {"unavailable"}
    assert result["values"] == {"call:CA0": {"step": 0}, "call:CA1": None, "call:CA2": None,
                                "call:CA3": None, "room:R": None}
