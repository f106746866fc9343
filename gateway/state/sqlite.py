"""The SQLite backend: shared state for every worker process and thread on one machine.

One database file in WAL mode, so readers never wait for the writer. Each operation borrows one
of its process's idle connections (or opens one) and gives it back: a connection never crosses a
fork and is never used by two threads or greenlets at once, and none is opened per request;
writers that read first (`update`, `update_many`, `incr`) take the write lock up front with
`BEGIN IMMEDIATE`, so two workers cannot both read the old value (`put_if_absent` and a `put`
with `unless` are one statement each, atomic on their own). Waiting for that lock is bounded
by `busy_timeout`; past it the caller gets `StoreUnavailable`.

Under gevent (gunicorn's gevent workers) SQLite's own busy wait would sleep inside C code and
stall every greenlet of the process while another process holds the write lock; there the
connection waits in Python instead (`_CooperativeConnection`), with sleeps that let the other
greenlets run, up to the same `busy_timeout`. Single-statement writes (`put`, `put_if_absent`)
that find the lock taken wait together and are committed in one transaction (group commit,
`_Batch`): with two web workers writing every call's claim and save, one statement in ten found
the lock taken, and each then waited, took the lock and committed on its own.

Expiry is by wall-clock time (the only clock every process shares): expired rows are invisible at
once and deleted in small batches every few hundred writes or every minute, by whichever process
writes next.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import TypeVar

from ..cooperative import greenlets_share_this_thread
from .base import (
    ManyUpdater,
    StoreUnavailable,
    Updater,
    check_changes,
    check_key,
    check_ttl,
    decode_value,
    encode_value,
)

DEFAULT_BUSY_TIMEOUT = 5.0  # seconds; well inside Twilio's 15 s webhook budget
# Page cache per connection, in KiB. Under gevent every greenlet (one per client connection) has
# a connection of its own, and SQLite's default cache (2000 KiB) filled up as the file grew: a
# worker's memory crept up by ~2 MB per kept-alive client for as long as the store grew
# (benchmarks/soak.py). The cache buys little here: the kernel caches the file anyway, and in WAL
# mode a connection drops its cache whenever another one has written.
CACHE_KIB = 256
DEFAULT_PURGE_EVERY = 500  # writes between purges of expired rows
DEFAULT_PURGE_INTERVAL = 60.0  # seconds; purge at least this often while writes happen
PURGE_BATCH = 1000  # rows per purge, so a purge never holds the write lock for long
OPPORTUNISTIC_PURGE_WAIT_MS = 50
SCAN_BATCH = 200
MAX_IDLE = 32  # idle connections a process keeps for reuse

# Write KEY (value, expires_at) unless a live row holds the key named 4th (none when it is
# NULL): one statement, atomic on its own (autocommit). SQLite needs the WHERE of an INSERT ...
# SELECT ... ON CONFLICT. `put_if_absent` adds a WHERE to the update: only an expired row.
_INSERT_UNLESS = (
    "INSERT INTO kv (key, value, expires_at) SELECT ?, ?, ?"
    " WHERE NOT EXISTS (SELECT 1 FROM kv WHERE key = ? AND expires_at > ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at")

_INSERT_UNLESS_EXPIRED = _INSERT_UNLESS + " WHERE kv.expires_at <= ?"
_UPSERT = ("INSERT INTO kv (key, value, expires_at) VALUES (?, ?, ?)"
           " ON CONFLICT (key) DO UPDATE SET"
           " value = excluded.value, expires_at = excluded.expires_at")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at)",
    "CREATE TABLE IF NOT EXISTS counters ("
    " key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS counters_expires ON counters (expires_at)",
)


class _Connection:
    """One thread's connection, tagged with the process that opened it."""

    __slots__ = ("__weakref__", "conn", "pid", "store")

    def __init__(self, conn: sqlite3.Connection, store: SqliteStore):
        self.conn = conn
        self.pid = os.getpid()
        self.store = store


# Connections of this process, for close(); weak so a finished thread's connection goes with it.
_live: weakref.WeakSet[_Connection] = weakref.WeakSet()
# Connections inherited through fork. They are kept referenced and never touched, because even
# closing a connection opened by another process can disturb that process's locks.
_inherited: list[_Connection] = []


def _forget_parent_connections() -> None:
    _inherited.extend(_live)
    _live.clear()


os.register_at_fork(after_in_child=_forget_parent_connections)


class SqliteStore:
    """`Store` on one SQLite file; see the module docstring for the guarantees."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        url: str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        purge_every: int = DEFAULT_PURGE_EVERY,
        purge_interval: float = DEFAULT_PURGE_INTERVAL,
    ):
        self.path = Path(path)
        self.url = url or f"sqlite:///{self.path}"
        self._busy_timeout = busy_timeout
        self._purge_every = purge_every
        self._purge_interval = purge_interval
        self._idle: list[_Connection] = []  # this process's connections not in use now
        self._idle_pid = os.getpid()
        self._idle_lock = threading.Lock()
        self._writes = 0
        self._last_purge = time.time()
        self._closed = False
        self._waiting: _Batch | None = None  # writes of this process waiting for the lock
        self._create()

    def __repr__(self) -> str:
        return f"SqliteStore({self.url!r})"

    # -- the Store interface -----------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        check_key(key)
        with self._errors(), self._borrowed() as conn:
            row = conn.execute(
                "SELECT value FROM kv WHERE key = ? AND expires_at > ?", (key, time.time())
            ).fetchone()
        return None if row is None else decode_value(row[0])

    def put(self, key: str, value: dict, ttl: float, *, unless: str | None = None) -> bool:
        check_key(key)
        text, now = encode_value(value), time.time()
        expires_at = now + check_ttl(ttl)
        with self._errors():
            if unless is None:
                self._one_statement(_UPSERT, (key, text, expires_at))
            # It saves every answered call: one statement, as put_if_absent.
            elif self._one_statement(_INSERT_UNLESS, (key, text, expires_at, check_key(unless),
                                                      now)) != 1:
                return False
        self._wrote()
        return True

    def put_if_absent(self, key: str, value: dict, ttl: float, *,
                      unless: str | None = None) -> bool:
        check_key(key)
        text, ttl = encode_value(value), check_ttl(ttl)
        now = time.time()
        # Insert, or replace a row that has expired; a live row is left alone and no row
        # changes. (It answers every new call: one statement instead of BEGIN, SELECT, INSERT,
        # COMMIT, and a SELECT before it for `unless`.)
        with self._errors():
            written = self._one_statement(
                _INSERT_UNLESS_EXPIRED,
                (key, text, now + ttl, check_key(unless) if unless is not None else None,
                 now, now)) == 1
        if written:
            self._wrote()
        return written

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        check_key(key)
        ttl = check_ttl(ttl)
        with self._errors(), self._transaction() as conn:
            now = time.time()
            row = conn.execute(
                "SELECT value FROM kv WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
            new = fn(None if row is None else decode_value(row[0]))
            if new is None:
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            else:
                self._write(conn, key, encode_value(new), now + ttl)
        self._wrote()
        return new

    def update_many(self, ttls: Mapping[str, float], fn: ManyUpdater) -> dict[str, dict | None]:
        ttls = {check_key(key): check_ttl(ttl) for key, ttl in ttls.items()}
        with self._errors(), self._transaction() as conn:
            now = time.time()
            marks = ",".join("?" * len(ttls))
            rows = conn.execute(
                f"SELECT key, value FROM kv WHERE key IN ({marks}) AND expires_at > ?",
                (*ttls, now),
            ).fetchall()
            current: dict[str, dict | None] = dict.fromkeys(ttls)
            current.update((key, decode_value(text)) for key, text in rows)
            changes = check_changes(ttls, fn(dict(current)))
            # Encode everything before the first write: a bad value writes nothing.
            texts = {key: None if new is None else encode_value(new)
                     for key, new in changes.items()}
            for key, text in texts.items():
                if text is None:
                    conn.execute("DELETE FROM kv WHERE key = ?", (key,))
                else:
                    self._write(conn, key, text, now + ttls[key])
        self._wrote()
        return {**current, **changes}

    def incr(self, key: str, ttl: float) -> int:
        check_key(key)
        ttl = check_ttl(ttl)
        with self._errors(), self._transaction() as conn:
            now = time.time()
            (value,) = conn.execute(
                "INSERT INTO counters (key, value, expires_at) VALUES (?, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                " value = CASE WHEN counters.expires_at > ? THEN counters.value + 1 ELSE 1 END,"
                " expires_at = excluded.expires_at"
                " RETURNING value",
                (key, now + ttl, now),
            ).fetchone()
        self._wrote()
        return value

    def delete(self, key: str) -> None:
        check_key(key)
        with self._errors(), self._transaction() as conn:
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            conn.execute("DELETE FROM counters WHERE key = ?", (key,))

    def scan(self, prefix: str) -> Iterator[tuple[str, dict]]:
        if not isinstance(prefix, str):
            raise TypeError(f"scan prefix is text, not {type(prefix).__name__}")
        # Keyset pagination in short reads: no read transaction stays open while the caller
        # works on a batch (it may write to the store meanwhile).
        upper = _prefix_upper_bound(prefix)
        after: str | None = None
        while True:
            sql = ["SELECT key, value FROM kv WHERE expires_at > ?"]
            args: list[object] = [time.time()]
            if after is None:
                sql.append("AND key >= ?")
                args.append(prefix)
            else:
                sql.append("AND key > ?")
                args.append(after)
            if upper is not None:
                sql.append("AND key < ?")
                args.append(upper)
            sql.append("ORDER BY key LIMIT ?")
            args.append(SCAN_BATCH)
            with self._errors(), self._borrowed() as conn:
                rows = conn.execute(" ".join(sql), args).fetchall()
            for key, text in rows:
                # Keys with the prefix sort together right after it; the first one without
                # it ends the scan (this also covers prefixes with no computable upper bound).
                if not key.startswith(prefix):
                    return
                yield key, decode_value(text)
            if len(rows) < SCAN_BATCH:
                return
            after = rows[-1][0]

    def ping(self) -> bool:
        try:
            with self._borrowed() as conn:
                conn.execute("SELECT 1 FROM kv LIMIT 1").fetchall()
        except Exception:
            return False
        return True

    def close(self) -> None:
        self._closed = True
        pid = os.getpid()
        for holder in list(_live):
            if holder.pid == pid and holder.store is self:
                holder.conn.close()
                _live.discard(holder)
        self._idle = []

    # -- housekeeping ------------------------------------------------------------------------

    def purge_expired(self, limit: int = PURGE_BATCH) -> int:
        """Delete up to `limit` expired rows from each table; returns how many went."""
        with self._errors(), self._borrowed() as conn:
            return self._purge(conn, limit)

    def _purge(self, conn: sqlite3.Connection, limit: int = PURGE_BATCH) -> int:
        removed = 0
        with _immediate(conn):
            now = time.time()
            for table in ("kv", "counters"):
                removed += conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN"
                    f" (SELECT rowid FROM {table} WHERE expires_at <= ? LIMIT ?)",
                    (now, limit),
                ).rowcount
        self._last_purge = time.time()
        return removed

    def row_count(self) -> int:
        """Rows physically present, expired or not (values and counters)."""
        with self._errors(), self._borrowed() as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("kv", "counters")
            )

    # -- internals ---------------------------------------------------------------------------

    def _create(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create the directory of {self.url}: {exc}") from exc
        # Workers starting together all get here at once, and switching a new file to WAL takes
        # a lock SQLite does not wait for: retry within the busy timeout.
        deadline = time.monotonic() + self._busy_timeout
        with self._errors():
            while True:
                try:
                    return self._set_up()
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(random.uniform(0.005, 0.05))

    def _set_up(self) -> None:
        # A connection of its own, closed at once, so nothing opened here survives a fork
        # (gunicorn's master may open the store before forking its workers).
        conn = self._connect()
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, self._busy_timeout,
                       check_same_thread=False)  # only so close() may close it from another thread
        # In WAL mode NORMAL survives any process crash; only a power cut can lose the
        # last commits.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        return conn

    @contextmanager
    def _borrowed(self) -> Iterator[sqlite3.Connection]:
        """A connection of this process for one operation, never used by two at once. Idle
        ones are kept and reused by any thread or greenlet: under gevent every request is a new
        greenlet, and opening a connection per request cost more than the request's queries."""
        if self._closed:
            raise StoreUnavailable(f"{self.url} is closed")
        pid = os.getpid()
        with self._idle_lock:
            if self._idle_pid != pid:  # forked: the parent's connections are not ours
                self._idle, self._idle_pid = [], pid
            holder = self._idle.pop() if self._idle else None
        if holder is None:
            holder = _Connection(self._connect(), self)
            _live.add(holder)
        try:
            yield holder.conn
        finally:
            if holder.conn.in_transaction or self._closed:
                holder.conn.close()  # an interrupted transaction: never reuse it (rolls back)
                _live.discard(holder)
            else:
                with self._idle_lock:
                    if len(self._idle) < MAX_IDLE and self._idle_pid == pid:
                        self._idle.append(holder)
                        holder = None
                if holder is not None:
                    holder.conn.close()
                    _live.discard(holder)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._borrowed() as conn, _immediate(conn):
            yield conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:  # locked too long, unreadable, disk full...
            raise StoreUnavailable(f"{self.url}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"{self.url}: {exc}") from exc

    @staticmethod
    def _write(conn: sqlite3.Connection, key: str, text: str, expires_at: float) -> None:
        conn.execute(_UPSERT, (key, text, expires_at))

    def _one_statement(self, sql: str, parameters: tuple) -> int:
        """A write that is one statement (a `put`, a `put_if_absent`); its row count. Under
        gevent, one that finds SQLite's write lock held by another process waits with the
        others of this process that find it so meanwhile, and the first of them commits them
        all in one transaction once it has the lock: one lock taken and one commit instead of
        one each (group commit). Each statement keeps its own outcome (its row count), and
        all of them land or none."""
        batch = self._waiting
        if batch is not None and batch.thread == threading.get_native_id():
            return batch.join(sql, parameters)
        with self._borrowed() as conn:
            if not isinstance(conn, _CooperativeConnection):
                return conn.execute(sql, parameters).rowcount
            try:
                return sqlite3.Connection.execute(conn, sql, parameters).rowcount
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
            batch = self._waiting = _Batch(sql, parameters)
            try:
                return batch.lead(conn, self)
            finally:
                if self._waiting is batch:
                    self._waiting = None

    def _wrote(self) -> None:
        """Count a write; now and then, delete expired rows (best effort)."""
        self._writes += 1
        due = self._writes >= self._purge_every
        if not due and time.time() - self._last_purge < self._purge_interval:
            return
        self._writes = 0
        self._last_purge = time.time()
        # Housekeeping must neither fail the caller's write, which is already committed, nor
        # make a webhook wait: if another writer holds the lock, give up quickly and let a later
        # write purge.
        with suppress(sqlite3.Error, StoreUnavailable), self._errors(), self._borrowed() as conn:
            if isinstance(conn, _CooperativeConnection):
                with conn.waiting_at_most(OPPORTUNISTIC_PURGE_WAIT_MS / 1000):
                    self._purge(conn)
                return
            conn.execute(f"PRAGMA busy_timeout = {OPPORTUNISTIC_PURGE_WAIT_MS}")
            try:
                self._purge(conn)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction on `conn`, its lock taken up front; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # The original error matters more; SQLite rolls back on close anyway.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def connect(path, busy_seconds: float, **options) -> sqlite3.Connection:
    """A connection in autocommit mode (BEGIN/COMMIT are issued by hand) that waits up to
    `busy_seconds` for a lock held elsewhere, cooperatively under gevent."""
    if greenlets_share_this_thread():
        conn = sqlite3.connect(path, timeout=0, isolation_level=None,
                               factory=_CooperativeConnection, **options)
        conn.busy_seconds = busy_seconds  # type: ignore[attr-defined]
        return conn
    return sqlite3.connect(path, timeout=busy_seconds, isolation_level=None, **options)


T = TypeVar("T")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Refused for a lock held elsewhere (retrying is safe: the statement did nothing)."""
    return "locked" in str(exc) or "busy" in str(exc)


def retry_while_locked(statement: Callable[[], T], seconds: float) -> T:
    """`statement()`, tried again after a short sleep (under gevent, a switch to the other
    greenlets) while SQLite refuses it for a lock held elsewhere, until `seconds` have passed
    since the first refusal. Retrying is safe: a statement refused for a lock has done nothing.
    The cooperative connections below, and huey's queue (`jobqueue`), wait this way."""
    deadline = None
    pause = 0.0005
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            now = time.monotonic()
            deadline = deadline or now + seconds
            if now >= deadline:
                raise
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.02)


class _Batch:
    """Single-statement writes of one process's greenlets, waiting together for SQLite's write
    lock (see `SqliteStore._one_statement`). The first one leads: it waits for the lock,
    cooperatively, then runs them all, in the order they came, in one transaction."""

    def __init__(self, sql: str, parameters: tuple):
        self.statements: list[tuple[str, tuple]] = [(sql, parameters)]
        self.row_counts: list[int] = []
        self.thread = threading.get_native_id()  # greenlets of this thread only
        self.done = threading.Event()  # gevent's, under its monkey-patching
        self.failure: str | None = None

    def join(self, sql: str, parameters: tuple) -> int:
        index = len(self.statements)
        self.statements.append((sql, parameters))
        self.done.wait()
        if self.failure is not None:
            raise sqlite3.OperationalError(self.failure)
        return self.row_counts[index]

    def lead(self, conn: _CooperativeConnection, store: SqliteStore) -> int:
        try:
            time.sleep(0.0005)  # it was just refused: let the holder finish, the others come
            retry_while_locked(partial(self._begin, conn, store), conn.busy_seconds)
            try:
                for sql, parameters in self.statements:
                    self.row_counts.append(
                        sqlite3.Connection.execute(conn, sql, parameters).rowcount)
                sqlite3.Connection.execute(conn, "COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        sqlite3.Connection.execute(conn, "ROLLBACK")
                raise
        except BaseException as exc:
            self.failure = f"{exc} (the writes waiting with it were not made)" if isinstance(
                exc, sqlite3.Error) else "the write leading this one was interrupted"
            raise
        finally:
            self.done.set()
        return self.row_counts[0]

    def _begin(self, conn: _CooperativeConnection, store: SqliteStore) -> None:
        sqlite3.Connection.execute(conn, "BEGIN IMMEDIATE")
        if store._waiting is self:  # closed: it runs now, without a switch to anyone else
            store._waiting = None


class _CooperativeConnection(sqlite3.Connection):
    """A connection whose busy wait yields (gevent): SQLite gives up at once (timeout 0) and the
    statement is tried again after a short sleep, which gevent turns into a switch to the other
    greenlets, until `busy_seconds` have passed. Retrying is safe: a statement refused for a
    busy lock has done nothing (BEGIN IMMEDIATE takes the lock first, so the statements inside
    a transaction never meet it)."""

    busy_seconds = DEFAULT_BUSY_TIMEOUT

    def execute(self, sql, parameters=(), /):  # type: ignore[override]
        return retry_while_locked(partial(sqlite3.Connection.execute, self, sql, parameters),
                                  self.busy_seconds)

    @contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        kept, self.busy_seconds = self.busy_seconds, seconds
        try:
            yield
        finally:
            self.busy_seconds = kept


def _prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`, or None.

    SQLite compares TEXT as UTF-8 bytes, which is code point order, so bumping the last code
    point that can be bumped gives an exclusive upper bound for an indexed range scan.
    """
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if 0xD800 <= point <= 0xDFFF:  # surrogates cannot be encoded: jump past them
            point = 0xE000
        if point <= 0x10FFFF:
            return "".join(chars) + chr(point)
    return None
