"""The test helper that runs a real redis-server: start, restart on the same port, teardown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.support.redis_server import RedisServer, RedisServerMissing

pytestmark = pytest.mark.redis


def test_missing_redis_server_names_the_install_script(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RedisServerMissing, match=r"scripts/ensure-redis\.sh"):
        RedisServer().start()


def test_server_listens_on_loopback_and_restarts_on_the_same_port(
    redis_server_factory: Callable[..., RedisServer],
):
    server = redis_server_factory()
    port = server.port
    assert server.url() == f"redis://127.0.0.1:{port}/0"
    assert server.client().ping()
    first_pid = server.pid
    server.restart()
    assert server.port == port
    assert server.pid != first_pid
    assert server.client().ping()


def test_data_is_not_kept_across_restart_unless_asked(
    redis_server_factory: Callable[..., RedisServer],
):
    volatile = redis_server_factory()
    durable = redis_server_factory(appendonly=True)
    for server in (volatile, durable):
        server.client().set("k", "v")
        server.restart(kill=True)
    assert volatile.client().get("k") is None
    assert durable.client().get("k") == b"v"


def test_stopped_server_is_gone_and_its_directory_removed_on_cleanup():
    server = RedisServer().start()
    directory, client = server.directory, server.client()
    server.cleanup()
    assert not server.running
    assert not Path(directory).exists()
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_shared_server_is_flushed_for_each_test(redis_server: RedisServer, redis_url: str):
    assert redis_server.client().dbsize() == 0
    redis_server.client().set("left-behind", "by this test")
    assert redis_url == redis_server.url()
