"""Job leases: who may take a booked job, and when.

A worker that fails with a job while the store is down cannot give the lease back; it must not
leave the job waiting out the lease (90 s) and the minute's sweep once the store answers: a lease
this process holds binds nobody when this process claims the job again (it runs a job once at a
time, so no run of its own holds it). A lease another live process holds still does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gateway import jobs
from gateway.state import open_store


def booked(store, job_id: str, *, owner: str, lease_for: float = 90.0) -> None:
    store.put(jobs.job_key(job_id), {"kind": "flush", "args": {}, "due_at": time.time() - 1,
                                     "lease_until": time.time() + lease_for, "owner": owner},
              jobs.JOB_TTL)


def test_a_lease_this_process_could_not_give_back_binds_nobody(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    booked(store, "flush:member:a", owner=jobs.owner())
    taken = jobs.claim(store, "flush:member:a")
    assert taken is not None and taken["owner"] == jobs.owner()


def test_a_job_this_process_runs_now_is_not_run_twice_at_once(tmp_path, monkeypatch):
    """The queue may hand this process the same job again while a run of it is under way (it
    was booked again meanwhile): the second run leaves it alone, the first books its next."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    booked(store, "flush:member:b", owner=jobs.owner())
    before = store.get(jobs.job_key("flush:member:b"))
    # A second run that went on would ask for the runtime (the store, the app client) first.
    monkeypatch.setattr(jobs, "_runtime_provider", lambda: pytest.fail("the job ran twice"))
    with jobs._running_lock:
        jobs._running.add("flush:member:b")
    try:
        jobs.run_job.call_local("flush:member:b")
        assert "flush:member:b" in jobs._asked_again  # the run under way queues it once over
    finally:
        with jobs._running_lock:
            jobs._running.discard("flush:member:b")
            jobs._asked_again.discard("flush:member:b")
    assert store.get(jobs.job_key("flush:member:b")) == before  # not claimed, not run


def test_a_lease_held_by_another_live_process_waits_for_it(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        booked(store, "flush:member:c", owner=f"{jobs.HOST}:{other.pid}")
        assert jobs.claim(store, "flush:member:c") is None
        booked(store, "flush:member:d", owner=f"{jobs.HOST}:{other.pid}", lease_for=-1)
        assert jobs.claim(store, "flush:member:d") is not None  # its lease ran out
    finally:
        other.kill()
        other.wait()
    # Once that process is gone, its lease is void at once.
    assert jobs.claim(store, "flush:member:c") is not None


def test_leases_of_other_hosts_run_their_course(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    booked(store, "flush:member:e", owner=f"elsewhere.example:{os.getpid()}")
    assert jobs.claim(store, "flush:member:e") is None


def test_a_claim_reads_what_the_job_reads_first_in_the_same_transaction(store):
    """A flush reads its outbox in the transaction that claims it (one round trip fewer per
    job); a job that is not taken is left exactly as it was."""
    outbox = {"done": 0, "items": {"1": {"kind": "enter"}}}
    store.put("outbox:member:f", outbox, 60)
    booked(store, "flush:member:f", owner=jobs.owner(), lease_for=-1)
    job, read = jobs.claim_reading(store, "flush:member:f", {"outbox:member:f": 60})
    assert job is not None and job["lease_until"] > time.time()
    assert read == {"outbox:member:f": outbox}
    assert store.get(jobs.job_key("flush:member:f")) == job

    other = f"elsewhere.example:{os.getpid()}"
    booked(store, "flush:member:g", owner=other)
    before = store.get(jobs.job_key("flush:member:g"))
    job, read = jobs.claim_reading(store, "flush:member:g", {"outbox:member:g": 60})
    assert (job, read) == (None, {"outbox:member:g": None})
    assert store.get(jobs.job_key("flush:member:g")) == before


# A child process, so that the job queue is huey's on a store of this test's own (the module's
# queue is made from GATEWAY_STORE_URL when it is imported).
BOOKED_AGAIN_AFTER_THE_END = """
import sys
from gateway import jobs
from gateway.state import open_store

store = open_store(sys.argv[1])
runtime = type("Runtime", (), {"store": store})()
jobs.use_runtime(lambda: runtime)
runs = []

@jobs.handler("probe")
def probe(runtime):
    runs.append(len(runs) + 1)
    if len(runs) == 1:
        # The run's last transaction ends the job, as a flush's last strike-off does...
        jobs.finish_with(store, {}, lambda current: {})
        # ... then, before the run is over, the web books it anew and queues a task, which a
        # second worker thread takes at once:
        jobs.schedule("probe", {}, job_id="probe:x", store=store)
        jobs.huey.execute(jobs.huey.dequeue())

jobs.schedule("probe", {}, job_id="probe:x", store=store)
jobs.huey.execute(jobs.huey.dequeue())
print("queued after the first run:", [task.args for task in jobs.huey.pending()])
while (task := jobs.huey.dequeue()) is not None:
    jobs.huey.execute(task)
print("runs:", runs, "booked:", store.get(jobs.job_key("probe:x")))
"""


def test_a_job_booked_again_as_its_run_ends_is_not_left_for_the_sweep(tmp_path):
    """A task that finds its job running in this process is not dropped: the job may have been
    booked again after the run's last look at it. The run queues it again once over."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    out = subprocess.run([sys.executable, "-c", BOOKED_AGAIN_AFTER_THE_END, url],
                         env={**os.environ, "GATEWAY_STORE_URL": url}, check=True, timeout=60,
                         capture_output=True, text=True).stdout.splitlines()
    assert out == ["queued after the first run: [('probe:x',)]",
                   "runs: [1, 2] booked: None"]
