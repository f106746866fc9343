"""Fixtures for the state store's contract tests: every test taking `store` runs on both backends.

`store_url` names a fresh, empty store (a new SQLite file, or the session's Redis flushed); `store`
is that store opened in this process. Tests that need several processes pass `store_url` on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `tests.support` is imported by package name; until pytest's `pythonpath` setting puts the
# repository root on sys.path, do it here.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from gateway.state import Store, open_store  # noqa: E402
from tests.support.redis_server import (  # noqa: E402, F401  (fixtures, used by name)
    redis_server,
    redis_server_factory,
    redis_url,
)

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("redis_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()
