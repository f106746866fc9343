"""The embedded (SQLite) job queue wakes its idle worker when a web process queues a job.

Real processes: the web side is a child Python process queueing through its own huey instance,
as a gunicorn worker does; the worker side is this process, dequeuing as huey's consumer does.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway import jobqueue

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the wake-up uses Linux abstract sockets; others poll")


def enqueue_from_another_process(store_url: str, count: int = 1) -> None:
    code = ("import sys; from gateway.jobqueue import queue_for\n"
            "q = queue_for(sys.argv[1])\n"
            f"for i in range({count}): q.storage.enqueue(b'job-%d' % i)\n")
    subprocess.run([sys.executable, "-c", code, store_url], check=True, timeout=60)


def test_a_job_queued_by_a_web_process_wakes_the_idle_worker(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    worker = jobqueue.queue_for(url).storage
    listener = worker._listen()
    assert listener is not None, "the first worker process of a queue binds its wake-up"
    enqueue_from_another_process(url)
    assert listener.recv(16) == b"j"  # the datagram the web process sent with its job
    assert worker.dequeue() == b"job-0"


def test_an_idle_worker_finds_each_queued_job_in_order(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    worker = jobqueue.queue_for(url).storage
    assert worker.dequeue() is None  # empty: waits at most one POLL, then answers
    enqueue_from_another_process(url, count=3)
    assert [worker.dequeue() for _ in range(3)] == [b"job-0", b"job-1", b"job-2"]
    assert worker.dequeue() is None


def test_a_second_worker_process_of_the_same_queue_polls_instead(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = jobqueue.queue_for(url).storage
    assert first._listen() is not None
    code = ("import sys; from gateway.jobqueue import queue_for\n"
            "s = queue_for(sys.argv[1]).storage\n"
            "print(s._listen() is None, s.dequeue())\n")
    enqueue_from_another_process(url)
    out = subprocess.run([sys.executable, "-c", code, url], check=True, timeout=60,
                         capture_output=True, text=True).stdout.split()
    assert out == ["True", "b'job-0'"]


def test_queues_of_different_stores_do_not_wake_each_other(tmp_path: Path):
    one = jobqueue.wake_address(str(tmp_path / "a-queue.db"))
    other = jobqueue.wake_address(str(tmp_path / "b-queue.db"))
    assert one is not None and other is not None and one != other
    assert one.startswith("\0")  # abstract: no file to create or clean up


def test_workers_racing_for_the_queue_take_each_job_once_in_order(tmp_path: Path):
    """The embedded queue takes a job in one DELETE ... RETURNING: four worker connections
    emptying it at once take every job exactly once, each in the queue's order."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    enqueue_from_another_process(url, count=400)
    taken: list[list[bytes]] = [[] for _ in range(4)]

    def work(mine: list[bytes]) -> None:
        storage = jobqueue.queue_for(url).storage  # a connection of its own, as a process has
        while (data := storage.dequeue()) is not None:
            mine.append(data)

    workers = [threading.Thread(target=work, args=(mine,)) for mine in taken]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    everything = [data for mine in taken for data in mine]
    assert sorted(everything) == sorted(b"job-%d" % i for i in range(400))
    for mine in taken:
        assert mine == sorted(mine, key=lambda data: int(data[4:]))


def test_the_embedded_queue_commits_without_an_fsync_each_time(tmp_path: Path):
    """WAL with synchronous=NORMAL, as the store: a process crash loses nothing, and a job
    costs no fsync (huey's default, FULL, paid two per job)."""
    storage = jobqueue.queue_for(f"sqlite:///{tmp_path / 'state.db'}").storage
    (mode,), = storage.sql("pragma journal_mode", results=True)
    (synchronous,), = storage.sql("pragma synchronous", results=True)
    assert (mode, synchronous) == ("wal", 1)  # 1: NORMAL
