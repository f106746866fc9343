"""The Redis backend: shared state for several gateway machines.

Values are JSON strings under `<namespace>v:<key>` and counters native integers under
`<namespace>c:<key>`, so a scan of values never meets a counter and other users of the same
database (the job queue, for one) never meet either. Expiry is Redis's own (PX on every write).

`update` runs the caller's function between WATCH and MULTI/EXEC and starts again when another
client changed the key meanwhile, so no write is ever lost. Sockets time out after about a
second and the client never retries by itself: a dead Redis gives `StoreUnavailable` quickly
instead of hanging a webhook, and a command is never silently sent twice (which could count a
member twice). A command that fails that way may or may not have been applied; it is never
half-applied.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError, WatchError
from redis.retry import Retry

from .base import (
    StoreUnavailable,
    Updater,
    check_key,
    check_ttl,
    decode_value,
    encode_value,
    mask_url,
)

DEFAULT_NAMESPACE = "gw:"
CONNECT_TIMEOUT = 1.0  # seconds
SOCKET_TIMEOUT = 1.0  # seconds, per command
UPDATE_DEADLINE = 5.0  # seconds of WATCH conflicts before `update` gives up
SCAN_COUNT = 1000
MGET_BATCH = 200

# Replies that mean "Redis is there but cannot serve now", as opposed to a bug in a command.
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "MASTERDOWN", "MISCONF", "NOREPLICAS", "BUSY")


class RedisStore:
    """`Store` on one Redis database; see the module docstring for the guarantees."""

    def __init__(self, url: str, *, namespace: str = DEFAULT_NAMESPACE):
        self.url = mask_url(url)
        # URL query options (e.g. ?socket_timeout=3) override these defaults.
        self._redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._values = namespace + "v:"
        self._counters = namespace + "c:"

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    # -- the Store interface -----------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        with self._errors():
            raw = self._redis.get(self._values + check_key(key))
        return None if raw is None else decode_value(raw)

    def put(self, key: str, value: dict, ttl: float) -> None:
        name, text, ms = self._values + check_key(key), encode_value(value), _millis(ttl)
        with self._errors():
            self._redis.set(name, text, px=ms)

    def put_if_absent(self, key: str, value: dict, ttl: float) -> bool:
        name, text, ms = self._values + check_key(key), encode_value(value), _millis(ttl)
        with self._errors():
            return bool(self._redis.set(name, text, px=ms, nx=True))

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        name, ms = self._values + check_key(key), _millis(ttl)
        deadline = time.monotonic() + UPDATE_DEADLINE
        conflicts = 0
        with self._errors(), self._redis.pipeline(transaction=True) as pipe:
            while True:
                pipe.watch(name)
                raw = pipe.get(name)
                new = fn(None if raw is None else decode_value(raw))
                text = None if new is None else encode_value(new)
                pipe.multi()
                if text is None:
                    pipe.delete(name)
                else:
                    pipe.set(name, text, px=ms)
                try:
                    pipe.execute()
                except WatchError:
                    conflicts += 1
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(
                            f"{self.url}: gave up updating a key after {conflicts} conflicts"
                        ) from None
                    if conflicts > 2:
                        # Jittered pause so a crowd of writers on one key stops colliding.
                        time.sleep(random.uniform(0, min(0.05, 0.001 * 2**conflicts)))
                    continue
                return new

    def incr(self, key: str, ttl: float) -> int:
        name, ms = self._counters + check_key(key), _millis(ttl)
        with self._errors(), self._redis.pipeline(transaction=True) as pipe:
            value, _ = pipe.incr(name).pexpire(name, ms).execute()
        return int(value)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._errors():
            self._redis.delete(self._values + key, self._counters + key)

    def scan(self, prefix: str) -> Iterator[tuple[str, dict]]:
        if not isinstance(prefix, str):
            raise TypeError(f"scan prefix is text, not {type(prefix).__name__}")
        pattern = _glob_escape(self._values + prefix) + "*"
        with self._errors():
            # SCAN may return a key twice and in any order; collect, then sort, so both
            # backends list keys the same way.
            names = set(self._redis.scan_iter(match=pattern, count=SCAN_COUNT))
        keys = sorted(_decoded_keys(names, len(self._values.encode())))
        for start in range(0, len(keys), MGET_BATCH):
            batch = keys[start : start + MGET_BATCH]
            with self._errors():
                raws = self._redis.mget([self._values + key for key in batch])
            for key, raw in zip(batch, raws, strict=True):
                if raw is not None:  # expired or deleted since the SCAN
                    yield key, decode_value(raw)

    def ping(self) -> bool:
        try:
            return bool(self._redis.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._redis.close()
        self._redis.connection_pool.disconnect()

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"{self.url}: {exc}") from exc
        except ResponseError as exc:
            if str(exc).startswith(_UNAVAILABLE_REPLIES):
                raise StoreUnavailable(f"{self.url}: {exc}") from exc
            raise


def _millis(ttl: float) -> int:
    return max(1, round(check_ttl(ttl) * 1000))


def _glob_escape(text: str) -> str:
    """Escape what Redis's MATCH treats as pattern syntax, so keys match literally."""
    return "".join("\\" + ch if ch in "\\*?[]" else ch for ch in text)


def _decoded_keys(names: set[bytes], skip: int) -> Iterator[str]:
    for name in names:
        try:
            yield name[skip:].decode()
        except UnicodeDecodeError:
            continue  # not written by us: our keys are always valid UTF-8
