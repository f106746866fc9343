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
