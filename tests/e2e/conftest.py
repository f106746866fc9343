"""End-to-end fixtures: a customer app on loopback and the gateway under `gateway serve`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, GatewayServer, app_config


@pytest.fixture(scope="module")
def customer_app() -> Iterator[CustomerApp]:
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        yield app


@pytest.fixture(scope="module")
def gateway(customer_app, tmp_path_factory) -> Iterator[GatewayServer]:
    """One gateway per test module, routing +14155550100 to the customer app's /answer."""
    apps = [
        app_config(customer_app.url("/answer"), hangup_url=customer_app.url("/hangup")),
        app_config(customer_app.url("/answer-fb"), name="with-fallback",
                   numbers=("+14155550200",), fallback_url=customer_app.url("/fallback")),
        app_config(customer_app.url("/answer").replace("127.0.0.1", "localhost"),
                   name="by-hostname", numbers=("+14155550300",), allowed_hosts=["localhost"]),
    ]
    with GatewayServer(tmp_path_factory.mktemp("gateway"), apps=apps, budget=3.0) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_app(customer_app) -> None:
    customer_app.clear()
    customer_app.release()
