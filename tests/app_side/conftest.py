"""Fixtures for the app side: a real customer app on loopback and a real AppClient."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# `tests.support` is imported by package name; put the repository root on sys.path.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from gateway.app_side import AppClient  # noqa: E402
from tests.support.customer_app import CustomerApp  # noqa: E402


@pytest.fixture
def customer_app() -> Iterator[CustomerApp]:
    with CustomerApp(auth_token="app-side-test-token") as app:
        yield app


@pytest.fixture
def client() -> Iterator[AppClient]:
    with AppClient() as app_client:
        yield app_client
