"""Fixtures for the simulator's tests: a fake gateway and a WebSocket server, both on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
