"""Shared state: the `Store` interface and `open_store`, which picks a backend from its URL.

`GATEWAY_STORE_URL` forms:
  sqlite:///relative/path.db   sqlite:////absolute/path.db    (one machine, any number of workers)
  redis://[:password@]host:port/db   rediss://...             (several gateway machines)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import Store, StoreUnavailable, Updater, mask_url, without_defaults

__all__ = ["ACCEPTED_FORMS", "Store", "StoreUnavailable", "Updater", "open_store",
           "without_defaults"]

ACCEPTED_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://[:password@]host:port/db, rediss://[:password@]host:port/db"
)


def open_store(url: str) -> Store:
    """Open the store `url` names. Raises ValueError for a URL no backend accepts.

    Nothing is contacted yet for Redis (a Redis that is down at start makes the store report
    unhealthy, not the gateway fail); the SQLite file and its directory are created here.
    """
    shown = mask_url(url) if isinstance(url, str) else repr(url)
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"store URL {shown!r} has no scheme; accepted forms: {ACCEPTED_FORMS}")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()  # schemes are case-insensitive; redis-py only takes lower case
    url, shown = f"{scheme}://{rest}", mask_url(f"{scheme}://{rest}")
    if scheme == "sqlite":
        return _open_sqlite(url, shown)
    if scheme in ("redis", "rediss"):
        return _open_redis(url, shown)
    raise ValueError(
        f"store URL scheme {scheme!r} (in {shown!r}) is not supported; "
        f"accepted forms: {ACCEPTED_FORMS}"
    )


def _open_sqlite(url: str, shown: str) -> Store:
    from .sqlite import SqliteStore

    rest = url.split("://", 1)[1]
    # SQLAlchemy's convention: three slashes then a relative path, four for an absolute one.
    if not rest.startswith("/") or "?" in rest or "#" in rest:
        raise ValueError(f"bad SQLite store URL {shown!r}; accepted forms: {ACCEPTED_FORMS}")
    path = rest[1:]
    if not path or path.endswith("/") or path == ":memory:":
        # An in-memory database would be private to each connection, so not shared state.
        raise ValueError(
            f"SQLite store URL {shown!r} must name a database file; "
            f"accepted forms: {ACCEPTED_FORMS}"
        )
    return SqliteStore(path, url=shown)


def _open_redis(url: str, shown: str) -> Store:
    from .redis import RedisStore

    try:
        parts = urlsplit(url)
        if parts.port == 0:  # reading .port also rejects ports that are not numbers in range
            raise ValueError("port 0")
    except ValueError as exc:
        raise ValueError(f"bad Redis store URL {shown!r}: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"Redis store URL {shown!r} has no host; accepted forms: {ACCEPTED_FORMS}")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError(
            f"Redis store URL {shown!r}: the database must be a number, got {db!r}; "
            f"accepted forms: {ACCEPTED_FORMS}"
        )
    try:
        return RedisStore(url)
    except ValueError as exc:  # redis-py's own URL checks (query options...)
        raise ValueError(f"bad Redis store URL {shown!r}: {exc}") from None
