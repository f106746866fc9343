"""Memory per SQLite connection stays small, because under gevent there are many of them.

gunicorn's gevent worker serves each client connection in a greenlet of its own, and the store
keeps one SQLite connection per greenlet (a connection must not be shared by code that may
switch mid-statement). With SQLite's default page cache each of those connections grew towards
2 MB as the store's file grew, so a worker's memory crept up for as long as the store grew, by
~2 MB per kept-alive client (found by benchmarks/soak.py).

The greenlets run in a child process (monkey-patching is for the whole process), which reports
its own RSS before and while they hold their connections.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

CONNECTIONS = 24
ROWS = 2500  # ~10 MB of 4 KB values: far more than any one connection's cache

CHILD = textwrap.dedent(f"""
    from gevent import monkey
    monkey.patch_all()
    import json, sys
    import gevent
    from gevent.event import Event
    from gateway.state.sqlite import SqliteStore

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    store = SqliteStore(sys.argv[1])
    for i in range({ROWS}):
        store.put(f"call:CA{{i:06d}}", {{"blob": "x" * 4000, "i": i}}, 3600)
    release = Event()
    read = []

    def client():  # what one kept-alive client's greenlet does: read calls, then wait
        for i in range({ROWS}):
            store.get(f"call:CA{{i:06d}}")
        read.append(1)
        release.wait()

    before = rss_mb()
    greenlets = [gevent.spawn(client) for _ in range({CONNECTIONS})]
    while len(read) < {CONNECTIONS}:
        gevent.sleep(0.01)
    during = rss_mb()
    release.set()
    gevent.joinall(greenlets)
    print(json.dumps({{"grew_mb": during - before}}))
""")


def test_many_greenlets_reading_a_large_store_add_little_memory_each(tmp_path: Path):
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "state.db")],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    grew = json.loads(result.stdout.strip().splitlines()[-1])["grew_mb"]
    # SQLite's default cache: ~2.1 MB per connection here (50 MB for 24); bounded: ~0.3 MB.
    assert grew / CONNECTIONS < 1.0, f"{grew:.1f} MB for {CONNECTIONS} connections"
