"""`open_store` picks the backend from GATEWAY_STORE_URL and refuses what it cannot open."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.state import Store, open_store
from gateway.state.redis import RedisStore
from gateway.state.sqlite import SqliteStore


def test_sqlite_url_opens_sqlite(tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    assert isinstance(store, SqliteStore)
    assert isinstance(store, Store)
    assert store.path == tmp_path / "state.db"


@pytest.mark.parametrize("scheme", ["redis", "rediss", "REDIS"])
def test_redis_urls_open_redis_without_connecting(scheme: str):
    # Nothing listens on port 1: opening must still succeed (health reports it later).
    store = open_store(f"{scheme}://127.0.0.1:1/0")
    assert isinstance(store, RedisStore)
    assert isinstance(store, Store)
    assert store.ping() is False


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("mysql://user:hunter2@db/gateway", "scheme 'mysql'"),
        ("postgres://localhost/gateway", "scheme 'postgres'"),
        ("gateway.db", "no scheme"),
        ("", "no scheme"),
        ("sqlite://gateway.db", "bad SQLite store URL"),
        ("sqlite:///", "must name a database file"),
        ("sqlite:///:memory:", "must name a database file"),
        ("sqlite:///some/dir/", "must name a database file"),
        ("sqlite:///gateway.db?mode=ro", "bad SQLite store URL"),
        ("redis://:hunter2@host:notaport/0", "bad Redis store URL"),
        ("redis://:hunter2@host:70000/0", "bad Redis store URL"),
        ("redis://:hunter2@/0", "no host"),
        ("redis://:hunter2@host:6379/zero", "database must be a number"),
    ],
)
def test_bad_url_is_refused_naming_the_accepted_forms(url: str, complaint: str):
    with pytest.raises(ValueError) as raised:
        open_store(url)
    message = str(raised.value)
    assert complaint in message
    assert "hunter2" not in message
    if "scheme" in complaint or "SQLite" in complaint:
        assert "sqlite:///relative/path.db" in message
        assert "redis://[:password@]host:port/db" in message


def test_password_is_masked_in_the_refusal():
    with pytest.raises(ValueError) as raised:
        open_store("ftp://admin:hunter2@files.example/x")
    assert "ftp://admin:***@files.example/x" in str(raised.value)
