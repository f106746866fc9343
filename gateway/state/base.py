"""The `Store` protocol every state backend implements, its error, and the rules they share.

A store holds JSON-serialisable dict values under text keys; every key expires. Backends differ
in reach (one machine for SQLite, many for Redis), never in behaviour: the same contract tests
run against each. The helpers here (value encoding, TTL and key checks, URL masking) are the
single place those shared rules live, so the backends cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

Updater = Callable[[dict | None], dict | None]
# update_many's function: every key's current value in, the values it changes out.
ManyUpdater = Callable[[dict[str, dict | None]], Mapping[str, dict | None]]


class StoreUnavailable(RuntimeError):
    """The backend cannot be reached (Redis down, database locked too long). Callers turn this
    into a 'temporarily unavailable' answer; nothing is half-written."""


@runtime_checkable
class Store(Protocol):
    """Shared key-value state: JSON-serialisable dict values, string keys, every key expires."""

    url: str  # the GATEWAY_STORE_URL it was opened from, with any password masked

    def get(self, key: str) -> dict | None: ...

    def put(self, key: str, value: dict, ttl: float, *, unless: str | None = None) -> bool:
        """Overwrite the value and reset its TTL; with `unless`, only while no live value is
        at that other key, atomically (a call's record is saved unless its end is marked).
        True if it wrote."""

    def put_if_absent(self, key: str, value: dict, ttl: float, *,
                      unless: str | None = None) -> bool:
        """Write only when no live value exists (and, with `unless`, none at that other key
        either), atomically; True if it wrote."""

    def update(self, key: str, fn: Updater, ttl: float) -> dict | None:
        """Atomic read-modify-write: `fn` gets the current value (None if absent or expired)
        and returns the new one (None deletes). `fn` may run more than once, so it must be
        pure. Returns what was written. Concurrent updates never lose a write."""

    def update_many(self, ttls: Mapping[str, float], fn: ManyUpdater) -> dict[str, dict | None]:
        """`update` over several keys at once: `fn` gets {key: current value or None} for every
        key of `ttls` and returns {key: new value} for the keys it changes (None deletes); keys
        it leaves out are neither written nor have their TTL reset, so a key may be read only.
        All or nothing, with the same retry rule as `update`. Returns every key's value after
        the change. One transaction instead of several: a change that spans records (a member,
        its room, its outbox and its flush) costs one round trip to the store, not one each."""

    def incr(self, key: str, ttl: float) -> int:
        """Atomic counter, separate from values: the first call returns 1; TTL refreshed."""

    def delete(self, key: str) -> None:
        """Remove the key's value and its counter, if any."""

    def scan(self, prefix: str) -> Iterator[tuple[str, dict]]:
        """Live values whose key starts with `prefix`, in key order (counters excluded)."""

    def ping(self) -> bool:
        """True when healthy; never raises."""

    def close(self) -> None: ...


# -- rules shared by the backends ------------------------------------------------------------


def check_key(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"store keys are text, not {type(key).__name__}")
    if not key:
        raise ValueError("store keys cannot be empty")
    return key


def check_changes(ttls: Mapping[str, float], changes: object) -> Mapping[str, dict | None]:
    """What an update_many function returned: a mapping over some of the keys it was given."""
    if not isinstance(changes, Mapping):
        raise TypeError(f"update_many's function returns a mapping, not {type(changes).__name__}")
    stray = [key for key in changes if key not in ttls]
    if stray:
        raise KeyError(f"update_many's function changed keys it was not given: {stray}")
    return changes


def check_ttl(ttl: float) -> float:
    # Every key must expire: that is what keeps the store from growing without bound.
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise TypeError(f"ttl is a number of seconds, not {type(ttl).__name__}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return float(ttl)


# One encoder for every write: json.dumps builds a new one per call when given any option.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_value(value: dict) -> str:
    """Serialise before anything is written, so a bad value never half-writes."""
    if not isinstance(value, dict):
        raise TypeError(f"store values are dicts, not {type(value).__name__}")
    try:
        return _ENCODER.encode(value)
    except ValueError as exc:  # NaN or infinity, which JSON cannot carry
        raise ValueError(f"store value is not valid JSON: {exc}") from exc


def decode_value(text: str | bytes) -> dict:
    return json.loads(text)


def without_defaults(record) -> dict:
    """A dataclass record as a store value: its fields, less those still at their declared
    default, which the record's constructor gives back when the value is read (`cls(**value)`).
    A shallow copy, serialised at once. Size is what a write costs: SQLite writes a call's
    2 kB record in twice the time of a 0.6 kB one (more pages split, more WAL written)."""
    defaults = _declared_defaults(type(record))
    return {name: value for name, value in record.__dict__.items()
            if name not in defaults or value != defaults[name]}


@functools.cache
def _declared_defaults(cls: type) -> dict[str, object]:
    defaults: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory in (dict, list):  # not time.time and the like: never "default"
            defaults[f.name] = f.default_factory()
    return defaults


def mask_url(url: str) -> str:
    """The URL with any password replaced by '***', safe for logs and error messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unparseable (e.g. a bad port): show nothing after the scheme
        scheme = url.split(":", 1)[0] if ":" in url else ""
        return f"{scheme}://***" if scheme else "***"
    if password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))
