"""A local, durable spool for Twilio's events that arrive while the shared store is down.

Twilio does not resend status callbacks, so an event the gateway cannot process now is written
to a small SQLite file on this machine (`GATEWAY_SPOOL`, default `gateway-spool.db`) and answered
with 200. Once the store is healthy again, spooled events are processed in arrival order before
new ones: by the next event or /healthz probe, and by a drainer thread of each web process
holding spooled events, which probes the store every `DRAIN_INTERVAL` seconds until the spool is
empty, so that no event waits for traffic.

When the spool's file cannot take an event either (its disk is full, as the store's usually is
then: SQLite's "database or disk is full"), the event is kept in this process's memory, after
whatever the file holds, with a log line saying so: it survives the outage, not a crash of the
process. While memory holds events, new ones go there too, so this process replays them in
arrival order (the file first, then memory).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .state.sqlite import connect

log = logging.getLogger("gateway.spool")

DRAIN_INTERVAL = 1.0  # seconds between store probes while events are spooled
BUSY_SECONDS = 10.0  # longest wait for another process's lock on the spool


class Spool:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._draining = threading.Lock()
        self._drainer: threading.Thread | None = None
        self._drainer_lock = threading.Lock()
        # Events the file could not take: (kind, params), oldest first; this process only.
        self._memory: deque[tuple[str, dict[str, list[str]]]] = deque()
        self._memory_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._count_db: sqlite3.Connection | None = None
        self._count_pid: int | None = None
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS spooled (id INTEGER PRIMARY KEY "
                       "AUTOINCREMENT, kind TEXT NOT NULL, params TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        key = os.getpid()
        db = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != key:
            db = connect(self.path, BUSY_SECONDS)  # cooperative under gevent
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db, self._local.pid = db, key
        return db

    def add(self, kind: str, params: dict[str, list[str]]) -> str:
        """Keep the event: in the file, or in memory when the file cannot take it (see the
        module's docstring). Never raises; returns where it went ("file" or "memory")."""
        with self._memory_lock:
            if not self._memory:
                try:
                    self._connect().execute("INSERT INTO spooled (kind, params) VALUES (?, ?)",
                                            (kind, json.dumps(params)))
                    return "file"
                except sqlite3.Error as exc:
                    log.error("spool: %s cannot take events (%s): keeping them in memory until "
                              "the store is back (lost if this process dies)", self.path, exc)
            self._memory.append((kind, params))
            return "memory"

    def __len__(self) -> int:
        with self._memory_lock:
            held = len(self._memory)
        # Asked before every event: one connection per process, not one per thread or
        # greenlet (under gevent each request is a new greenlet, which would open a connection
        # per event). A single read in WAL mode never waits for a writer.
        with self._count_lock:
            if self._count_pid != os.getpid():
                self._count_db = connect(self.path, BUSY_SECONDS, check_same_thread=False)
                self._count_pid = os.getpid()
            return held + self._count_db.execute("SELECT COUNT(*) FROM spooled").fetchone()[0]

    def drain(self, process: Callable[[str, dict[str, list[str]]], None]) -> int:
        """Process spooled events in order; stop at the first that fails again.

        Each event is taken under the database's write lock, so the workers and processes
        sharing the spool never process one twice nor out of order.
        """
        if not self._draining.acquire(blocking=False):
            return 0
        done = 0
        try:
            db = self._connect()
            while True:
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute("SELECT id, kind, params FROM spooled ORDER BY id LIMIT 1"
                                     ).fetchone()
                    if row is None:
                        db.execute("COMMIT")
                        break
                    process(row[1], json.loads(row[2]))
                    db.execute("DELETE FROM spooled WHERE id = ?", (row[0],))
                    db.execute("COMMIT")
                    done += 1
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            done += self._drain_memory(process)
        finally:
            self._draining.release()
        if done:
            log.info("spool: %d event(s) processed after the store came back", done)
        return done

    def _drain_memory(self, process: Callable[[str, dict[str, list[str]]], None]) -> int:
        """The events kept in memory, after the file's (the caller holds `_draining`)."""
        done = 0
        while True:
            with self._memory_lock:
                if not self._memory:
                    return done
                kind, params = self._memory[0]
            process(kind, params)  # raises while the store is still down: the event stays
            with self._memory_lock:
                self._memory.popleft()
            done += 1

    def drain_in_background(self, store_healthy: Callable[[], bool], replay: Callable[[], object],
                            interval: float = DRAIN_INTERVAL) -> None:
        """Start (once per process) a daemon thread that replays the spool as soon as the store
        answers again. `replay()` raises while the store is still failing; the thread ends when
        the spool is empty and is started again by the next event spooled."""
        with self._drainer_lock:
            if self._drainer is not None and self._drainer.is_alive():
                return
            self._drainer = threading.Thread(target=self._drain_loop, name="spool-drainer",
                                             args=(store_healthy, replay, interval), daemon=True)
            self._drainer.start()

    def _drain_loop(self, store_healthy, replay, interval: float) -> None:
        while len(self):
            time.sleep(interval)
            try:
                if store_healthy():
                    replay()
            except Exception as exc:  # the store failing again: keep the events, probe later
                log.info("spool: %d event(s) still waiting (%s)", len(self), exc)
