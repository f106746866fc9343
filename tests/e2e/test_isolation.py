"""One bad tenant must not hurt the others, against `gateway serve` on loopback.

- Slow unauthenticated clients (headers of `POST /twilio/voice`, then a body byte now and then)
  are refused when their body's time is up, and meanwhile signed calls are answered.
- A customer app that hangs holds only its own calls: another app's calls are answered, and each
  call to the hanging app hears the apology within the budget + 0.5 s.
- An app that trickles its answer a byte at a time (status line, headers, body) or never ends it
  is cut off at the budget: the caller hears the apology, or the fallback URL's document.
- Beyond the per-app limit of fetches in flight, a call gets the apology (or the fallback) at
  once; after five failures in a row the circuit opens and calls are answered at once.

The budget is small (2 s) to keep the tests short; the figures under load are in
benchmarks/bench_isolation.py.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.test_voice_webhook import assert_apology, verbs, wait_for_log
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import (
    APP_AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)
from tests.support.trickle_app import BEHAVIOURS, TrickleApp

pytestmark = pytest.mark.slow

BUDGET = 2.0
SLACK = 0.5  # every webhook Twilio waits on is answered within the budget + 0.5 s
HEALTHY, HANGING, TRICKLING, TRICKLING_FB = ("+14155550100", "+14155550400", "+14155550500",
                                             "+14155550600")
HELLO = "<Response><Speak>Hello from the healthy app</Speak></Response>"
FALLBACK = "<Response><Speak>Fallback speaking</Speak></Response>"


@pytest.fixture(scope="module")
def customer_app() -> Iterator[CustomerApp]:
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        app.route("/answer", HELLO)
        app.route("/fallback", FALLBACK)
        app.hang("/hang")
        yield app
        app.release()


@pytest.fixture(scope="module")
def trickle_app() -> Iterator[TrickleApp]:
    # One app per test would do; the behaviour is switched per test (see `trickling`).
    with TrickleApp("slow-headers", interval=0.2) as app:
        yield app


def gateway_for(workdir, customer_app, trickle_app, **env) -> GatewayServer:
    apps = [
        app_config(customer_app.url("/answer"), name="healthy", numbers=(HEALTHY,)),
        app_config(customer_app.url("/hang"), name="hanging", numbers=(HANGING,),
                   account="MA0000000000000002"),
        app_config(trickle_app.url("/answer"), name="trickling", numbers=(TRICKLING,),
                   account="MA0000000000000003"),
        app_config(trickle_app.url("/answer"), name="trickling-with-fallback",
                   numbers=(TRICKLING_FB,), account="MA0000000000000004",
                   fallback_url=customer_app.url("/fallback")),
    ]
    return GatewayServer(workdir, apps=apps, budget=BUDGET,
                         env={k: str(v) for k, v in env.items()}, web_only=True)


@pytest.fixture(scope="module")
def gateway(customer_app, trickle_app, tmp_path_factory) -> Iterator[GatewayServer]:
    with gateway_for(tmp_path_factory.mktemp("isolation"), customer_app, trickle_app) as server:
        yield server


def call(gateway: GatewayServer, to: str) -> tuple[requests.Response, float]:
    """A first voice webhook as Twilio sends it, on a connection of its own; and how long its
    answer took."""
    params = twilio_call_params(to=to)
    url = gateway.url + "/twilio/voice"
    signature = gateway.validator.compute_signature(url, params)
    began = time.monotonic()
    response = requests.post(url, data=params, headers={"X-Twilio-Signature": signature},
                             timeout=20)
    return response, time.monotonic() - began


# --- slow clients ---------------------------------------------------------------------------------

def slow_client(gateway: GatewayServer, length: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    sock.sendall(b"POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: %d\r\n\r\nCallSid=" % length)
    return sock


def test_slow_clients_are_refused_when_their_time_is_up_and_calls_are_answered_meanwhile(
        gateway):
    stop = threading.Event()
    clients = [slow_client(gateway, 60_000) for _ in range(30)]

    def dribble():
        while not stop.wait(0.5):
            for sock in clients:
                with contextlib.suppress(OSError):
                    sock.send(b"x")

    dribbler = threading.Thread(target=dribble, daemon=True)
    dribbler.start()
    try:
        for _ in range(5):
            response, elapsed = call(gateway, HEALTHY)
            assert verbs(response) == [("Say", "Hello from the healthy app")]
            assert elapsed < 1.0
        answers = []
        for sock in clients:
            sock.settimeout(5)
            answers.append(sock.recv(200))
    finally:
        stop.set()
        for sock in clients:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
    wait_for_log(gateway, "refused POST /twilio/voice", "not complete within 2 s")


def test_a_body_over_the_limit_is_refused_before_it_is_read(gateway):
    sock = slow_client(gateway, 100_000)
    sock.settimeout(1.0)
    try:
        assert sock.recv(200).startswith(b"HTTP/1.1 413")
    finally:
        sock.close()


def test_a_body_that_stops_short_is_refused_and_nothing_reaches_the_app(gateway, customer_app):
    before = customer_app.count()
    sock = slow_client(gateway, 5_000)
    sock.shutdown(socket.SHUT_WR)  # 8 bytes of 5000 sent, and no more will come
    sock.settimeout(3.0)
    try:
        assert sock.recv(200).startswith(b"HTTP/1.1 400")
    finally:
        sock.close()
    assert customer_app.count() == before
    wait_for_log(gateway, "the body stopped after 8 of 5000 bytes")


# --- a hanging app --------------------------------------------------------------------------------

def test_a_hanging_app_holds_only_its_own_calls(gateway):
    with ThreadPoolExecutor(max_workers=24) as pool:
        hanging = [pool.submit(call, gateway, HANGING) for _ in range(16)]
        time.sleep(0.3)  # the hanging calls are in flight
        healthy = [pool.submit(call, gateway, HEALTHY) for _ in range(8)]
        for future in healthy:
            response, elapsed = future.result()
            assert verbs(response) == [("Say", "Hello from the healthy app")]
            assert elapsed < 1.0, f"a healthy app's call took {elapsed:.2f} s"
        for future in hanging:
            response, elapsed = future.result()
            assert_apology(response)
            assert elapsed < BUDGET + SLACK, f"a hanging app's call took {elapsed:.2f} s"


# --- an app that trickles -------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_an_answer_trickled_a_byte_at_a_time_is_cut_off_at_the_budget(gateway, trickle_app,
                                                                      behaviour):
    trickle_app.behaviour = behaviour
    response, elapsed = call(gateway, TRICKLING)
    assert_apology(response)
    assert elapsed < BUDGET + SLACK, f"{behaviour}: answered after {elapsed:.2f} s"


@pytest.mark.parametrize("behaviour", ["slow-headers", "slow-body"])
def test_a_trickling_answer_url_leaves_time_for_the_fallback(gateway, trickle_app, behaviour):
    trickle_app.behaviour = behaviour
    response, elapsed = call(gateway, TRICKLING_FB)
    assert verbs(response) == [("Say", "Fallback speaking")]
    assert elapsed < BUDGET + SLACK


# --- the per-app limit and the circuit breaker ----------------------------------------------------

def test_calls_beyond_the_apps_limit_get_the_apology_at_once(customer_app, trickle_app,
                                                             tmp_path):
    with gateway_for(tmp_path, customer_app, trickle_app, WEB_CONCURRENCY=1,
                     GATEWAY_APP_MAX_FETCHES=3) as gw, ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(call, gw, HANGING) for _ in range(7)]
        answered = [future.result() for future in calls]
        wait_for_log(gw, "3 requests to this app are already waiting (limit 3 per process)")
    for response, _ in answered:
        assert_apology(response)
    quick = [elapsed for _, elapsed in answered if elapsed < 1.0]
    assert len(quick) >= 3  # 7 calls, 3 admitted: the others did not wait for the budget


def test_after_five_failures_in_a_row_the_circuit_opens_and_calls_are_answered_at_once(
        customer_app, trickle_app, tmp_path):
    with gateway_for(tmp_path, customer_app, trickle_app, WEB_CONCURRENCY=1) as gw:
        with ThreadPoolExecutor(5) as pool:
            for response, _ in pool.map(lambda _: call(gw, HANGING), range(5)):
                assert_apology(response)
        requests_before = customer_app.count("/hang")
        response, elapsed = call(gw, HANGING)
        assert_apology(response)
        assert elapsed < 0.5
        assert customer_app.count("/hang") == requests_before  # the app was not asked
        wait_for_log(gw, "failed 5 times in a row (circuit open")
        healthy, _ = call(gw, HEALTHY)
        assert verbs(healthy) == [("Say", "Hello from the healthy app")]
