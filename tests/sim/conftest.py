"""Fixtures for the simulator's tests: a fake gateway and a WebSocket server, both on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sim import runs
from tests.sim.support import FakeGateway, StreamServer


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    server = FakeGateway()
    yield server
    server.close()


@pytest.fixture
def stream_server() -> Iterator[StreamServer]:
    server = StreamServer()
    yield server
    server.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tell the concurrent runner which tests were selected (-k, node ids), so that a module's
    batch runs only those."""
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None:
            runs.SELECTED.add(f"{module.__name__}::{item.name}")
