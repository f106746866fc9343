"""The Redis backend: shared state for several gateway machines.

Values are JSON strings under `<namespace>v:<key>` and counters native integers under
`<namespace>c:<key>`, so a scan of values never meets a counter and other users of the same
database (the job queue, for one) never meet either. Expiry is Redis's own (PX on every write).

`update` and `update_many` read the keys (one MGET), run the caller's function, and write with a
compare-and-set script (one EVALSHA) that writes only if every key still holds what was read;
otherwise they start again, so no write is ever lost. Two round trips per update instead of
WATCH, GET and MULTI/EXEC's three, and one for several keys instead of one per key.

Sockets time out after about a second and the client never retries by itself: a dead Redis
gives `StoreUnavailable` quickly instead of hanging a webhook, and a command is never silently
sent twice (which could count a member twice). A command that fails that way may or may not
have been applied; it is never half-applied.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

from .base import (
    ManyUpdater,
    StoreUnavailable,
    Updater,
    check_changes,
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

# The write half of update_many: ARGV holds what was read of each key ("" for none), then a
# (value, PX) pair per key: _KEEP leaves the key alone, _DELETE deletes it. Values are JSON
# objects, so neither marker can be a value. Returns 0, writing nothing, if any key changed.
_KEEP, _DELETE = "=", "-"
_COMPARE_AND_SET = """
local n = #KEYS
for i = 1, n do
  local current = redis.call('GET', KEYS[i])
  if current == false then current = '' end
  if current ~= ARGV[i] then return 0 end
end
for i = 1, n do
  local value = ARGV[n + 2 * i - 1]
  if value == '-' then
    redis.call('DEL', KEYS[i])
  elseif value ~= '=' then
    redis.call('SET', KEYS[i], value, 'PX', ARGV[n + 2 * i])
  end
end
return 1
"""

# SET NX, unless another key holds a value: a call's record is claimed unless its end is marked.
_SET_NX_UNLESS = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
return 0
"""

# SET, unless another key holds a value: a call's record is saved unless its end is marked.
_SET_UNLESS = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

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
        # redis-py sends the script by its SHA and loads it once when Redis does not know it.
        self._compare_and_set = self._redis.register_script(_COMPARE_AND_SET)
        self._set_nx_unless = self._redis.register_script(_SET_NX_UNLESS)
        self._set_unless = self._redis.register_script(_SET_UNLESS)

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r})"

    # -- the Store interface -----------------------------------------------------------------

    def get(self, key: str) -> dict | None:
        with self._errors():
            raw = self._redis.get(self._values + check_key(key))
        return None if raw is None else decode_value(raw)

    def put(self, key: str, value: dict, ttl: float, *, unless: str | None = None) -> bool:
        name, text, ms = self._values + check_key(key), encode_value(value), _millis(ttl)
        with self._errors():
            if unless is None:
                self._redis.set(name, text, px=ms)
                return True
            other = self._values + check_key(unless)
            return bool(self._set_unless(keys=[name, other], args=[text, ms]))

    def put_if_absent(self, key: str, value: dict, ttl: float, *,
                      unless: str | None = None) -> bool:
        name, text, ms = self._values + check_key(key), encode_value(value), _millis(ttl)
        with self._errors():
            if unless is None:
                return bool(self._redis.set(name, text, px=ms, nx=True))
            other = self._values + check_key(unless)
            return bool(self._set_nx_unless(keys=[name, other], args=[text, ms]))

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        def one(current: dict[str, dict | None]) -> dict[str, dict | None]:
            return {key: fn(current[key])}  # always written: `update` resets the TTL
        return self.update_many({key: ttl}, one)[key]

    def update_many(self, ttls: Mapping[str, float], fn: ManyUpdater) -> dict[str, dict | None]:
        names = [self._values + check_key(key) for key in ttls]
        keys = list(ttls)
        millis = [_millis(ttl) for ttl in ttls.values()]
        deadline = time.monotonic() + UPDATE_DEADLINE
        conflicts = 0
        with self._errors():
            while True:
                raws = self._redis.mget(names)
                current = {key: None if raw is None else decode_value(raw)
                           for key, raw in zip(keys, raws, strict=True)}
                changes = check_changes(ttls, fn(dict(current)))
                if not changes:  # MGET read them all at one instant: nothing to set
                    return current
                writes = []
                for key, ms in zip(keys, millis, strict=True):
                    if key not in changes:
                        writes += [_KEEP, ""]
                    elif changes[key] is None:
                        writes += [_DELETE, ""]
                    else:
                        writes += [encode_value(changes[key]), ms]
                seen = [b"" if raw is None else raw for raw in raws]
                if self._compare_and_set(keys=names, args=[*seen, *writes]):
                    return {**current, **changes}
                conflicts += 1
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"{self.url}: gave up updating a key after {conflicts} conflicts")
                if conflicts > 2:
                    # Jittered pause so a crowd of writers on one key stops colliding.
                    time.sleep(random.uniform(0, min(0.05, 0.001 * 2**conflicts)))

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
