"""What only the Redis backend has: a server that can go away, passwords, a shared keyspace.

The outage tests use private servers (`redis_server_factory`) so the session's shared one stays
up. "Quickly" is bounded generously (a few seconds): the point is that nothing hangs.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from gateway.state import Store, StoreUnavailable, open_store
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

LIVE = 60.0
FAILS_FAST = 5.0  # seconds; the client's own timeouts are about 1 s


def every_operation(store: Store) -> dict[str, Callable[[], object]]:
    return {
        "get": lambda: store.get("k"),
        "put": lambda: store.put("k", {"v": 2}, LIVE),
        "put unless": lambda: store.put("k", {"v": 2}, LIVE, unless="other"),
        "put_if_absent": lambda: store.put_if_absent("other", {}, LIVE),
        "update": lambda: store.update("k", lambda v: {"v": 3}, LIVE),
        "incr": lambda: store.incr("c", LIVE),
        "delete": lambda: store.delete("k"),
        "scan": lambda: list(store.scan("")),
    }


def assert_unavailable_quickly(store: Store) -> None:
    for name, operation in every_operation(store).items():
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            operation()
        assert time.monotonic() - started < FAILS_FAST, f"{name} took too long to fail"
    started = time.monotonic()
    assert store.ping() is False
    assert time.monotonic() - started < FAILS_FAST


def test_stopped_redis_is_unavailable_then_works_after_restart(
    redis_server_factory: Callable[..., RedisServer],
):
    server = redis_server_factory()
    store = open_store(server.url())
    store.put("k", {"v": 1}, LIVE)
    port = server.port
    server.stop()

    assert_unavailable_quickly(store)

    server.start()
    assert server.port == port
    assert store.ping() is True
    store.put("k", {"v": 1}, LIVE)
    assert store.get("k") == {"v": 1}
    assert store.incr("c", LIVE) == 1


def test_restarted_redis_with_appendonly_keeps_the_data(
    redis_server_factory: Callable[..., RedisServer],
):
    server = redis_server_factory(appendonly=True)
    store = open_store(server.url())
    store.put("room:1", {"members": [1, 2]}, LIVE)
    assert store.incr("room:1", LIVE) == 1

    server.restart(kill=True)  # a crash, not a clean shutdown

    assert store.get("room:1") == {"members": [1, 2]}
    assert store.incr("room:1", LIVE) == 2


def test_hung_redis_times_out_instead_of_hanging(redis_server_factory: Callable[..., RedisServer]):
    # A stopped process still accepts connections (the kernel does), then never answers:
    # only the client's socket timeout saves the webhook.
    server = redis_server_factory()
    store = open_store(server.url())
    store.put("k", {"v": 1}, LIVE)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get("k")
        assert time.monotonic() - started < FAILS_FAST
    finally:
        os.kill(server.pid, signal.SIGCONT)
    assert store.ping() is True
    assert store.get("k") == {"v": 1}


def test_timeouts_can_be_set_in_the_url(redis_server_factory: Callable[..., RedisServer]):
    server = redis_server_factory()
    store = open_store(server.url() + "?socket_timeout=0.1&socket_connect_timeout=0.1")
    store.put("k", {"v": 1}, LIVE)
    os.kill(server.pid, signal.SIGSTOP)
    try:
        assert_unavailable_quickly(store)
    finally:
        os.kill(server.pid, signal.SIGCONT)
    # What was sent while Redis was stopped may still run once it resumes: the outcome of a
    # failed command is unknown, never half-applied. The store answers again either way.
    store.put("k", {"v": 9}, LIVE)
    assert store.get("k") == {"v": 9}


def test_redis_down_at_open_does_not_fail_the_open(
    redis_server_factory: Callable[..., RedisServer],
):
    server = redis_server_factory()
    server.stop()
    store = open_store(server.url())
    assert store.ping() is False
    server.start()
    assert store.ping() is True


def test_password_in_url_is_used_and_masked(redis_server_factory: Callable[..., RedisServer]):
    server = redis_server_factory(password="s3cret-pw")
    store = open_store(server.url())
    store.put("k", {"v": 1}, LIVE)
    assert store.get("k") == {"v": 1}
    assert "s3cret-pw" not in store.url
    assert store.url == f"redis://:***@127.0.0.1:{server.port}/0"
    assert "s3cret-pw" not in repr(store)
    server.stop()
    with pytest.raises(StoreUnavailable) as raised:
        store.get("k")
    assert "s3cret-pw" not in str(raised.value)


def test_wrong_password_is_unavailable_not_a_crash(
    redis_server_factory: Callable[..., RedisServer],
):
    server = redis_server_factory(password="right")
    store = open_store(f"redis://:wrong@127.0.0.1:{server.port}/0")
    assert store.ping() is False
    with pytest.raises(StoreUnavailable) as raised:
        store.get("k")
    assert "wrong" not in str(raised.value)


def test_database_number_in_url_is_used(redis_server: RedisServer, redis_url: str):
    store = open_store(redis_server.url(db=3))
    store.put("k", {"v": 1}, LIVE)
    assert redis_server.client(db=3).dbsize() == 1
    assert redis_server.client(db=0).dbsize() == 0
    store.delete("k")


def test_store_keeps_to_its_namespace_and_every_key_expires(
    redis_server: RedisServer, redis_url: str
):
    other = redis_server.client()
    other.set("huey.queue", "not ours")
    other.set("gw:stray", "not a value")
    store = open_store(redis_url)
    store.put("room", {"v": 1}, LIVE)
    store.incr("room", LIVE)
    store.update("call", lambda v: {"v": 2}, LIVE)
    store.put_if_absent("event", {}, LIVE)

    assert [key for key, _ in store.scan("")] == ["call", "event", "room"]
    ours = sorted(name.decode() for name in other.keys("gw:[vc]:*"))
    assert ours == ["gw:c:room", "gw:v:call", "gw:v:event", "gw:v:room"]
    assert all(0 < other.pttl(name) <= LIVE * 1000 for name in ours)
