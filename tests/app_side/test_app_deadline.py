"""One deadline over the whole exchange with the app: an answer that trickles in a byte at a time
(status line, headers or body), or never ends, is cut off when the caller's time is up, though
no single read ever waits long enough for a per-read timeout to trip; so is a name server that
does not answer (the look-up, under gevent as with threads)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.app_side import AppClient, AppRequestError
from tests.support.trickle_app import TrickleApp

DEADLINE = 1.0  # seconds the caller gives the request
SLACK = 0.5  # the project's promise: answered within the budget + 0.5 s
PARAMS = {"CallUUID": "c0ffee", "Event": "StartApp"}


def ask_until_deadline(client: AppClient, url: str) -> tuple[AppRequestError, float]:
    started = time.monotonic()
    with pytest.raises(AppRequestError) as caught:
        client.request(url, "POST", PARAMS, auth_token="token", allowed_hosts=["127.0.0.1"],
                       deadline=started + DEADLINE)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("behaviour", ["slow-status", "slow-headers", "slow-body", "no-end",
                                       "silent"])
def test_a_trickling_answer_is_cut_off_at_the_deadline(client, behaviour):
    with TrickleApp(behaviour, interval=0.2) as app:
        error, elapsed = ask_until_deadline(client, app.url("/answer"))

    assert elapsed < DEADLINE + SLACK, f"{behaviour}: held {elapsed:.2f} s"
    assert error.kind in ("tt", "rt"), (error.kind, error.reason)
    assert app.requests == 1  # no retry: there was no time left for one


def test_a_tls_handshake_that_never_completes_is_cut_off_at_the_deadline(client):
    """An `https` app that accepts the connection and never answers the ClientHello."""
    with TrickleApp("silent", interval=0.2) as app:
        error, elapsed = ask_until_deadline(client, app.url("/answer").replace("http:", "https:"))

    assert elapsed < DEADLINE + SLACK, f"held {elapsed:.2f} s"
    assert error.kind in ("tt", "rt"), (error.kind, error.reason)


def test_the_deadline_covers_a_retry_too(client):
    """`rc=3` asks for up to four attempts; all of them fit in the caller's one deadline."""
    with TrickleApp("slow-headers", interval=0.2) as app:
        error, elapsed = ask_until_deadline(client, app.url("/answer#rt=500&rc=3"))

    assert elapsed < DEADLINE + SLACK
    assert error.kind == "tt", error.reason


def test_a_kept_alive_connection_from_the_pool_is_cut_off_too(client):
    """The deadline follows a connection reused from the pool, not only new ones."""
    with TrickleApp("slow-headers", interval=0.2, first_fine=True) as app:
        first = client.request(app.url("/answer"), "POST", PARAMS, auth_token="t",
                               allowed_hosts=["127.0.0.1"])
        error, elapsed = ask_until_deadline(client, app.url("/answer"))

    assert "trickle app" in first.text
    assert elapsed < DEADLINE + SLACK
    assert error.kind == "tt", error.reason


def test_an_answer_in_time_is_untouched_by_its_deadline(client, customer_app):
    customer_app.route("/fine", "<Response><Speak>ok</Speak></Response>")
    response = client.request(customer_app.url("/fine"), "POST", PARAMS, auth_token="t",
                              allowed_hosts=["127.0.0.1"], deadline=time.monotonic() + 0.5)
    time.sleep(0.7)  # past the deadline: the watchdog must not touch the pooled connection
    again = client.request(customer_app.url("/fine"), "POST", PARAMS, auth_token="t",
                           allowed_hosts=["127.0.0.1"], deadline=time.monotonic() + 2)
    assert response.text == again.text == "<Response><Speak>ok</Speak></Response>"


GEVENT_LOOK_UP = """
from gevent import monkey
monkey.patch_all()
import json, time
import gevent
from gateway.app_side.client import look_up_within
from gateway.app_side.hosts import HostUnresolvable

ticks = []
def tick():
    while True:
        ticks.append(time.monotonic())
        gevent.sleep(0.01)
ticker = gevent.spawn(tick)
def silent_name_server(host, port):
    time.sleep(30)  # patched: a greenlet waiting on a name server that does not answer
    return ["127.0.0.1"]
began = time.monotonic()
try:
    look_up_within(silent_name_server, "app.invalid", 80, 0.5)
    outcome = "answered"
except HostUnresolvable as exc:
    outcome = exc.reason
waited = time.monotonic() - began
print(json.dumps({"outcome": outcome, "waited": waited,
                  "ticks": len([t for t in ticks if began <= t <= began + waited])}))
"""


def test_under_gevent_a_silent_name_server_is_given_up_at_the_deadline():
    done = subprocess.run([sys.executable, "-c", GEVENT_LOOK_UP], capture_output=True,
                          text=True, timeout=60, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    result = json.loads(done.stdout)
    assert result["outcome"] == "no answer from the name servers within 0.5 s"
    assert result["waited"] < 0.5 + SLACK
    assert result["ticks"] >= 10  # the other greenlets ran meanwhile
