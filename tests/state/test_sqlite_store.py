"""What only the SQLite backend has: a file to create, expired rows to purge, a lock to wait on."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from gateway.state import StoreUnavailable, open_store
from gateway.state.sqlite import SqliteStore

LIVE = 60.0
SHORT = 0.1


def wait_past(seconds: float) -> None:
    # Expiry here is wall-clock based; sleeping past the TTL is the only way to get there.
    time.sleep(seconds + 0.1)


def test_database_file_is_created_with_its_directories(tmp_path: Path):
    path = tmp_path / "new" / "nested" / "state.db"
    store = open_store(f"sqlite:///{path}")
    store.put("k", {"v": 1}, LIVE)
    assert path.is_file()
    assert open_store(f"sqlite:///{path}").get("k") == {"v": 1}


def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/gateway.db")
    store.put("k", {}, LIVE)
    assert (tmp_path / "var" / "gateway.db").is_file()
    assert store.url == "sqlite:///var/gateway.db"


def test_database_uses_write_ahead_logging(tmp_path: Path):
    open_store(f"sqlite:///{tmp_path / 'state.db'}")
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_purge_deletes_expired_rows(tmp_path: Path):
    store = SqliteStore(tmp_path / "state.db")
    for n in range(10):
        store.put(f"gone:{n}", {}, SHORT)
        store.incr(f"gone-counter:{n}", SHORT)
    store.put("kept", {}, LIVE)
    store.incr("kept-counter", LIVE)
    assert store.row_count() == 22
    wait_past(SHORT)
    assert store.purge_expired() == 20
    assert store.row_count() == 2
    assert store.get("kept") == {}


def test_writes_purge_expired_rows_by_themselves(tmp_path: Path):
    store = SqliteStore(tmp_path / "state.db", purge_every=10)
    for n in range(5):
        store.put(f"gone:{n}", {}, SHORT)
    wait_past(SHORT)
    for n in range(10):
        store.put(f"live:{n}", {}, LIVE)
    assert store.row_count() == 10


def test_writes_purge_on_a_timer_too(tmp_path: Path):
    store = SqliteStore(tmp_path / "state.db", purge_every=10_000, purge_interval=SHORT)
    store.put("gone", {}, SHORT)
    wait_past(SHORT)
    store.put("live", {}, LIVE)
    assert store.row_count() == 1


def test_purge_works_in_batches(tmp_path: Path):
    store = SqliteStore(tmp_path / "state.db")
    for n in range(30):
        store.put(f"gone:{n}", {}, SHORT)
    wait_past(SHORT)
    assert store.purge_expired(limit=20) == 20
    assert store.purge_expired(limit=20) == 10
    assert store.row_count() == 0


def test_lock_held_too_long_gives_store_unavailable_and_writes_nothing(tmp_path: Path):
    path = tmp_path / "state.db"
    store = SqliteStore(path, busy_timeout=0.2)
    store.put("k", {"v": 1}, LIVE)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.update("k", lambda v: {"v": 2}, LIVE)
        with pytest.raises(StoreUnavailable):
            store.incr("c", LIVE)
        assert store.get("k") == {"v": 1}  # readers are not blocked by the writer in WAL mode
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.update("k", lambda v: {"v": 2}, LIVE) == {"v": 2}


def test_closed_store_is_unavailable_and_unhealthy(tmp_path: Path):
    store = SqliteStore(tmp_path / "state.db")
    store.put("k", {}, LIVE)
    store.close()
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.get("k")


def test_unwritable_directory_gives_store_unavailable(tmp_path: Path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="directory"):
        open_store(f"sqlite:///{tmp_path / 'file' / 'state.db'}")
