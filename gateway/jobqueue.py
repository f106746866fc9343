"""The job queue a store URL goes with, and the wake-up that spares the embedded one its polling.

Both queues are huey's, minus revocation (`NeverRevoked`): the gateway never revokes a task (a
job that must not run is struck off its book in the store, see `jobs`), and huey otherwise
reads the queue's store before every task (is it revoked?) and deletes its revocation key after
every run: on the embedded queue an exclusive transaction, in Redis a round trip, each per job.

Redis mode uses huey's RedisHuey, whose workers block on the list (BRPOP): a job starts as soon
as it is queued. huey's SQLite queue has no such wait, so its idle workers poll, and a callback
waited for the next poll (p99 100-130 ms on an idle gateway). Here every enqueue also sends a
one-byte datagram to the worker process, whose idle workers wait on it (bounded, so a lost
datagram costs at most one `POLL` interval):

- the address is a Linux abstract UNIX socket named after the queue file's real path, so web
  processes and the worker find each other with no file to create or clean up;
- the first worker process of a queue binds it; a second one (or a system without abstract
  sockets) just polls every `POLL` seconds, as before;
- a datagram that finds no worker, or a full buffer, is dropped: the job is in the queue anyway.

Under gevent (the web workers), SQLite's own busy wait would sleep inside C code and stall every
greenlet of the process while the worker holds the queue's lock; there the queue's connection
gives up at once and a statement refused for the lock is tried again after a cooperative sleep,
within the same `BUSY_SECONDS` huey would have waited.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

from huey import Huey, RedisHuey
from huey.storage import SqliteStorage

from .cooperative import greenlets_share_this_thread
from .state.sqlite import retry_while_locked

POLL = 0.25  # seconds an idle worker waits before looking at the queue again, woken or not
BUSY_SECONDS = 5.0  # longest wait for the queue's lock (huey's default)


def wake_address(queue_file: str) -> str | None:
    """The abstract socket name for a queue file (None where abstract sockets do not exist)."""
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha256(os.path.realpath(queue_file).encode()).hexdigest()[:32]
    return f"\0gateway-queue-{digest}"


class WakingSqliteStorage(SqliteStorage):
    """huey's SQLite queue storage, plus a wake-up datagram per enqueue (see the module)."""

    blocking = True  # dequeue() waits (up to POLL) itself: the consumer must not sleep too

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._address = wake_address(self.filename)
        self._sender: socket.socket | None = None
        self._sender_pid = 0
        self._listener: socket.socket | None = None
        self._listener_tried = False
        self._listener_lock = threading.Lock()

    def _create_connection(self):
        self._cooperative = greenlets_share_this_thread()
        if self._cooperative:
            self._timeout = 0  # refused at once; `sql` waits for the lock, yielding
        conn = super()._create_connection()
        # huey leaves SQLite's default, FULL: an fsync of the WAL at every commit, two per job
        # (queued, taken), 60 us of CPU and 200 us of waiting each, during which a gevent web
        # worker serves nobody. NORMAL, as the store (`state.sqlite`): in WAL mode it survives
        # any process crash; a power cut may lose the last few, whose bookings in the store
        # bring them back (the sweep).
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def sql(self, query, params=None, commit=False, results=False):
        if not getattr(self, "_cooperative", False):
            return super().sql(query, params, commit, results)
        return self._waiting_for_the_lock(lambda: super(WakingSqliteStorage, self).sql(
            query, params, commit, results))

    def initialize_schema(self):
        # Runs when a web process imports the app. Refused at once for a lock the job worker
        # holds, the import failed, and gunicorn, seeing a worker that cannot boot, stopped the
        # whole server (found by the fault campaign: a web worker restarted after a SIGKILL).
        # (The connection, and with it the cooperative mode, is made inside: always wait here.)
        return self._waiting_for_the_lock(super().initialize_schema)

    @staticmethod
    def _waiting_for_the_lock(statement):
        return retry_while_locked(statement, BUSY_SECONDS)

    # -- web side ------------------------------------------------------------------------------
    def enqueue(self, data, priority=None):
        # One statement in autocommit mode, atomic by itself (huey wraps it in BEGIN EXCLUSIVE
        # and COMMIT: three statements per job).
        self.sql("insert into task (queue, data, priority) values (?, ?, ?)",
                 (self.name, self.to_blob(data), priority or 0))
        self._wake()

    def _wake(self) -> None:
        if self._address is None:
            return
        if self._sender is None or self._sender_pid != os.getpid():  # a fork gets its own
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
            self._sender_pid = os.getpid()
        with contextlib.suppress(OSError):  # no worker listening, or its buffer is full
            self._sender.sendto(b"j", self._address)

    # -- worker side ---------------------------------------------------------------------------
    def dequeue(self):
        data = self._take()
        if data is not None:
            return data
        listener = self._listen()
        if listener is None:
            time.sleep(POLL)  # no wake-up here (another worker process has it): poll
        else:
            with contextlib.suppress(OSError):  # TimeoutError after POLL: look again anyway
                listener.recv(16)
        return self._take()

    def _take(self):
        """The next task in huey's order, or None. A read first, as huey does, so an empty
        queue costs no write lock; then one DELETE ... RETURNING in autocommit mode, atomic by
        itself: two workers never take the same task (huey's own dequeue is five statements:
        the read, BEGIN EXCLUSIVE, SELECT, DELETE, COMMIT)."""
        if not self.sql("select 1 from task where queue = ? limit 1", (self.name,),
                        results=True):
            return None
        rows = self.sql("delete from task where id = (select id from task where queue = ?"
                        " order by priority desc, id limit 1) returning data", (self.name,),
                        results=True)
        return rows[0][0] if rows else None

    def _listen(self) -> socket.socket | None:
        if self._listener_tried:
            return self._listener
        with self._listener_lock:
            if not self._listener_tried and self._address is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                try:
                    sock.bind(self._address)
                except OSError:  # another worker process of this queue has it: poll
                    sock.close()
                else:
                    sock.settimeout(POLL)
                    self._listener = sock
            self._listener_tried = True
        return self._listener


REVOKE_PREFIX = "r:"  # huey's key for a revoked task: Task.revoke_id


class NeverRevoked:
    """huey without task revocation (mixed in before Huey or RedisHuey; see the module)."""

    def is_revoked(self, task, timestamp=None, peek=True) -> bool:
        return False

    def delete(self, key):
        if key.startswith(REVOKE_PREFIX):  # the clean-up after each run: nothing to clean
            return False
        return super().delete(key)

    def revoke(self, *args, **kwargs):
        raise NotImplementedError("the gateway's queue does not revoke tasks: strike the job "
                                  "off its book in the store instead")

    revoke_all = revoke_by_id = revoke


class GatewayHuey(NeverRevoked, Huey):
    """huey's SQLite queue (storage_class: WakingSqliteStorage), never revoking."""


class GatewayRedisHuey(NeverRevoked, RedisHuey):
    """RedisHuey, never revoking."""


def queue_for(store_url: str) -> Huey:
    """The huey instance that goes with a store URL (same database file, or same Redis)."""
    if store_url.startswith("sqlite:///"):
        path = Path(store_url[len("sqlite:///"):])
        queue = path.with_name(path.stem + "-queue" + (path.suffix or ".db"))
        queue.parent.mkdir(parents=True, exist_ok=True)
        return GatewayHuey("gateway", storage_class=WakingSqliteStorage, filename=str(queue),
                           results=False, utc=True)
    return GatewayRedisHuey("gateway", url=store_url, results=False, utc=True)
