"""Work that outlives a request: durable, at-least-once jobs run by huey.

huey (its SQLite queue with a wake-up on the embedded default, see `jobqueue`; RedisHuey in
Redis mode; both from GATEWAY_STORE_URL) runs the work; the shared store keeps the book of what
must run (`job:<id>`), so nothing is lost when a process dies while a task is in flight (huey
removes a task from its queue when it starts it). A job is claimed with a lease (the claim's
transaction also reads what the handler reads first, when its kind says what that is); when its
handler finishes, the job is struck off. A task for a job this process is running is set aside,
and the job queued again when that run ends. A sweep on worker start and every minute re-queues
jobs whose time has come and whose lease has lapsed.

Job kinds: `flush` (deliver a stream's callbacks in order, see `deliveries`), `end_conference`,
`hangup_call`, `announce` (Twilio REST calls that emulate Plivo features, some on a timer).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from huey import crontab

from .jobqueue import queue_for
from .observability import DELIVERY_RETRIES
from .settings import DEFAULT_STORE_URL

log = logging.getLogger("gateway.jobs")

JOB_TTL = 7 * 24 * 3600.0
DEFAULT_LEASE = 90.0
HOST = socket.gethostname()


def owner() -> str:
    """Who holds a lease: this host and process."""
    return f"{HOST}:{os.getpid()}"


# The jobs this process is running now. A lease this process holds on any other job is one it
# could not give back (the store failed with the job): it has lapsed for this process.
_running: set[str] = set()
_running_lock = threading.Lock()
# Jobs whose task arrived while this process was running them (see `run_job`).
_asked_again: set[str] = set()


def lease_lapsed(job: dict, now: float, job_id: str | None = None, *,
                 claiming: bool = False) -> bool:
    """A lease lapses with time, or at once when its holder was a process of this host that no
    longer exists (a worker killed mid-job: its restart need not wait out the lease), or when
    the holder is this process and it is not running the job (`job_id`) any more. `claiming`:
    asked by a run of the job about to claim it; this process runs a job once at a time
    (`run_job`), so a lease of its own is one an earlier run could not give back."""
    if job.get("lease_until", 0) <= now:
        return True
    host, _, pid = str(job.get("owner", "")).rpartition(":")
    if host != HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        if claiming:
            # Before, the run asking was itself in `_running`: the lease an earlier run of this
            # process kept (the store failed as it gave it back) held for its full 90 s.
            return True
        if job_id is None:
            return False
        with _running_lock:
            return job_id not in _running
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


huey = queue_for(os.environ.get("GATEWAY_STORE_URL", "").strip() or DEFAULT_STORE_URL)

HANDLERS: dict[str, object] = {}
# What a kind's handler reads first, as a function of the job's id (a job's args are known only
# once it is claimed): the claim's transaction reads those keys too, and the handler gets their
# values as `read`, one store round trip fewer per job. Ids of such kinds start "<kind>:".
READS: dict[str, Callable[[str], dict[str, float]]] = {}


def handler(kind: str, *, reads: Callable[[str], dict[str, float]] | None = None):
    def register(fn):
        HANDLERS[kind] = fn
        if reads is not None:
            READS[kind] = reads
        return fn
    return register


# What the handlers run against (the store, the app client...): given by `gateway.runtime`
# when it is imported, so that this module, which every handler module imports, imports none
# of them back.
_runtime_provider: Callable[[], Any] | None = None


def use_runtime(provider: Callable[[], Any]) -> None:
    global _runtime_provider
    _runtime_provider = provider


def _runtime() -> Any:
    if _runtime_provider is None:
        raise RuntimeError("no runtime for the jobs: import gateway.runtime first")
    return _runtime_provider()


def job_key(job_id: str) -> str:
    return f"job:{job_id}"


def book(current: dict | None, kind: str, args: dict, due: float, now: float) -> dict:
    """The job's booking once it is asked to run at `due` (pure: `schedule`, or a caller that
    writes the booking in the same transaction as the work it books, as `deliveries` does)."""
    if current and not lease_lapsed(current, now):
        # Running now: book it again, so it runs once more after this run ends.
        return {**current, "due_at": due}
    if current:  # booked, not running: run it no later than either due time
        return {**current, "due_at": min(current.get("due_at", due), due)}
    return {"kind": kind, "args": args, "due_at": due, "lease_until": 0.0, "created_at": now}


def needs_queueing(job_id: str, before: dict | None, now: float) -> bool:
    """Whether a booking just written needs a task in huey's queue. Not while the job runs:
    the run queues the next one itself when it ends (`run_job`), and a task queued meanwhile
    would only find the job leased and do nothing (several per running flush in a burst)."""
    return before is None or lease_lapsed(before, now, job_id)


def schedule(kind: str, args: dict, *, delay: float = 0.0, job_id: str | None = None,
             store=None) -> str:
    """Record the job in the store, then hand it to huey. Returns the job id."""
    store = store or _runtime().store
    job_id = job_id or f"{kind}:{uuid.uuid4().hex}"
    now = time.time()
    due = now + max(0.0, delay)
    before: list[dict | None] = []

    def merge(current: dict | None) -> dict:
        before[:] = [current]
        return book(current, kind, args, due, now)

    store.update(job_key(job_id), merge, JOB_TTL)
    if needs_queueing(job_id, before[0], now):
        queue(job_id, delay)
    return job_id


def queue(job_id: str, delay: float = 0.0) -> None:
    """Hand a booked job to huey; if the queue cannot take it, the sweep will run it."""
    for attempt in (1, 2):
        try:
            run_job.schedule((job_id,), delay=max(0.0, delay))
            return
        except Exception as exc:
            # A queue connection that died with a Redis restart fails once, then reconnects.
            if attempt == 2:  # the book is written: the sweep will run it
                log.warning("job %s booked but not queued (%s); the sweep will run it",
                            job_id, exc)


def claim(store, job_id: str, lease: float = DEFAULT_LEASE) -> dict | None:
    """Take the job if it is due and nobody holds it; None otherwise."""
    return claim_reading(store, job_id, {}, lease)[0]


def claim_reading(store, job_id: str, reads: dict[str, float], lease: float = DEFAULT_LEASE
                  ) -> tuple[dict | None, dict[str, dict | None]]:
    """`claim`, reading the keys of `reads` (key: TTL) in the same transaction: (the job or
    None, their values). A job it does not take is left as it is, not written again."""
    now = time.time()
    key = job_key(job_id)
    won: list[dict] = []

    def take(current: dict) -> dict:
        won.clear()
        job = current[key]
        if (job is None or not lease_lapsed(job, now, job_id, claiming=True)
                or job["due_at"] > now + 1):
            return {}
        taken = {**job, "lease_until": now + lease, "owner": owner()}
        won.append(taken)
        return {key: taken}

    values = store.update_many({**reads, key: JOB_TTL}, take)
    return (won[0] if won else None), {name: values[name] for name in reads}


def renew(store, job_id: str, lease: float = DEFAULT_LEASE) -> None:
    """Extend a running job's lease (long jobs call this between steps)."""
    until = time.time() + lease

    def extend(current: dict | None) -> dict | None:
        return {**current, "lease_until": until} if current else None
    store.update(job_key(job_id), extend, JOB_TTL)


def finish(store, job_id: str, job: dict) -> dict | None:
    """Strike the job off, unless it was booked again meanwhile (then release the lease and
    return the new booking)."""
    return store.update(job_key(job_id), lambda current: _finished(current, job), JOB_TTL)


def _finished(current: dict | None, job: dict) -> dict | None:
    if current is None:
        return None
    if current.get("due_at", 0) > job["due_at"]:
        return {**current, "lease_until": 0.0}
    return None


# The job this thread (or greenlet) runs now, and its end if its handler wrote it already.
_current: contextvars.ContextVar[tuple[str, dict] | None] = contextvars.ContextVar(
    "gateway_job", default=None)
_ended: contextvars.ContextVar[tuple[dict | None] | None] = contextvars.ContextVar(
    "gateway_job_ended", default=None)


def finish_with(store, ttls: dict[str, float], change) -> dict[str, dict | None]:
    """A handler's last change and the end of its job, in one transaction (one write fewer
    per job: most flushes deliver one callback). `change` is an update_many function over
    `ttls`' keys. Outside a job, just the change."""
    running = _current.get()
    if running is None:
        return store.update_many(ttls, change)
    job_id, job = running

    def both(current: dict) -> dict:
        return {**change(current), job_key(job_id): _finished(current[job_key(job_id)], job)}

    values = store.update_many({**ttls, job_key(job_id): JOB_TTL}, both)
    _ended.set((values[job_key(job_id)],))
    return values


RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # a failed job runs again after these (then 30 s)


@huey.task()
def run_job(job_id: str) -> None:
    with _running_lock:
        if job_id in _running:
            # This process runs it now. A booking made before that run's end is seen by it
            # (it queues the next run itself), but one made after its last transaction, with
            # this task, is not: the run queues the job again once it is over, or the job
            # would wait for the straggler sweep (5-10 s; seen in a burst of joins and leaves).
            _asked_again.add(job_id)
            return
        _running.add(job_id)
    try:
        _run(job_id)
    finally:
        with _running_lock:
            _running.discard(job_id)
            again = job_id in _asked_again
            _asked_again.discard(job_id)
        if again:  # a run with nothing due claims nothing: harmless
            queue(job_id)


def _run(job_id: str) -> None:
    runtime = _runtime()
    kind = job_id.partition(":")[0]
    reads = READS[kind](job_id) if kind in READS else {}
    try:
        job, read = claim_reading(runtime.store, job_id, reads)
    except Exception as exc:  # the store is unreachable right now (e.g. Redis restarting)
        log.warning("job %s: cannot claim it (%s); trying again in %g s", job_id, exc,
                    RETRY_DELAYS[0])
        _retry_later(job_id, RETRY_DELAYS[0])
        return
    if job is None:
        return
    fn = HANDLERS.get(job["kind"])
    if fn is None:
        log.error("job %s: unknown kind %r; dropped", job_id, job["kind"])
        finish(runtime.store, job_id, job)
        return
    running, ended = _current.set((job_id, job)), _ended.set(None)
    try:
        if reads and job["kind"] == kind:
            fn(runtime, **job["args"], read=read)  # type: ignore[operator]
        else:
            fn(runtime, **job["args"])  # type: ignore[operator]
    except Exception:
        failures = int(job.get("failures", 0))
        delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
        log.exception("job %s (%s) failed; it runs again in %g s", job_id, job["kind"], delay)
        DELIVERY_RETRIES.labels(job["kind"]).inc()
        release(runtime.store, job_id, failures + 1, delay)
        _retry_later(job_id, delay)
        return
    finally:
        _current.reset(running)
        ended_with = _ended.get()
        _ended.reset(ended)
    latest = ended_with[0] if ended_with else finish(runtime.store, job_id, job)
    if latest is not None:  # booked again while it ran
        queue(job_id, latest["due_at"] - time.time())


def release(store, job_id: str, failures: int, delay: float) -> None:
    """Give the lease back after a failure, due again after `delay` (the retry's; sweeps wait
    for it too). When the store fails as well, this process's own claim no longer binds it (see
    `lease_lapsed`), and the retry below takes the job again once the store answers."""
    due = time.time() + delay
    with contextlib.suppress(Exception):
        store.update(job_key(job_id), lambda current: {
            **current, "lease_until": 0.0, "failures": failures,
            "due_at": max(current.get("due_at", 0.0), due)} if current else None, JOB_TTL)


def _retry_later(job_id: str, delay: float) -> None:
    try:
        run_job.schedule((job_id,), delay=delay)
    except Exception as exc:  # the queue is down too (the store restarting): keep trying
        log.warning("job %s: not re-queued (%s); queued again once the store answers",
                    job_id, exc)
        _requeue.add(job_id)


class _Requeue:
    """Jobs whose retry could not be queued: a daemon thread of this process queues them as soon
    as the queue answers again, so that a failure during a store outage waits neither for the
    lease to lapse nor for the minute's sweep."""

    INTERVAL = 0.5

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, job_id: str) -> None:
        with self._lock:
            self._ids.add(job_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="job-requeue",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.INTERVAL)
            with self._lock:
                waiting = sorted(self._ids)
                if not waiting:
                    self._thread = None
                    return
            for job_id in waiting:
                try:
                    run_job.schedule((job_id,), delay=0)
                except Exception:
                    break  # still down: try again after the interval
                with self._lock:
                    self._ids.discard(job_id)


_requeue = _Requeue()


def sweep(store=None, *, late: float = 0.0) -> int:
    """Queue every job due at least `late` seconds ago whose lease has lapsed. Returns how many
    were queued."""
    store = store or _runtime().store
    now, queued = time.time(), 0
    for key, job in store.scan("job:"):
        if job.get("due_at", 0) <= now - late and lease_lapsed(job, now, key[len("job:"):]):
            run_job(key[len("job:"):])
            queued += 1
    return queued


@huey.periodic_task(crontab(minute="*"))
def sweep_jobs() -> None:
    queued = sweep()
    if queued:
        log.info("sweep: %d job(s) queued again", queued)


_swept_at_start = threading.Event()


@huey.on_startup()
def sweep_on_start() -> None:
    # huey runs startup hooks in each of its worker threads: one sweep per process is enough
    # (eight queued every pending job eight times).
    if _swept_at_start.is_set():
        return
    _swept_at_start.set()
    try:
        queued = sweep()
        if queued:
            log.info("worker start: %d pending job(s) queued", queued)
    except Exception as exc:
        log.warning("worker start: sweep failed (%s); the periodic sweep will retry", exc)


# huey can lose a task it has taken from the queue: when the queue's store fails between the
# dequeue and the run (Redis restarting: huey's own bookkeeping raises before our code runs),
# the consumer logs "Unhandled error during execution of task" and forgets it. The job's book
# is still in the store, so a sweep finds it; this one runs every few seconds, in a thread of
# the worker (not as a huey periodic task, which needs the queue to be scheduled), and only
# takes jobs overdue by LATE_AFTER, which huey alone would have run long ago.
SWEEP_EVERY = 5.0
LATE_AFTER = 5.0


def _sweep_stragglers() -> None:
    while True:
        time.sleep(SWEEP_EVERY)
        try:
            queued = sweep(late=LATE_AFTER)
        except Exception as exc:  # the store is down: the next round tries again
            log.debug("straggler sweep failed (%s)", exc)
            continue
        if queued:
            log.warning("sweep: %d overdue job(s) queued again (lost by the queue)", queued)


def run_worker(workers: int = 8) -> None:
    """Run the huey consumer in this process (threads), and the straggler sweep."""
    threading.Thread(target=_sweep_stragglers, name="straggler-sweep", daemon=True).start()
    # Idle workers wait on the queue (Redis: BRPOP; SQLite: the wake-up of `jobqueue`); the
    # delays below only pace retries after the queue itself failed (e.g. Redis restarting).
    consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True,
                                    check_worker_health=True, scheduler_interval=0.2,
                                    initial_delay=0.02, backoff=1.2, max_delay=0.25)
    consumer.run()
