"""A full disk under the embedded SQLite store: the store, its job queue and the event spool on a
small tmpfs that fills up, then is freed. Twilio keeps getting valid answers (the apology for a
call that cannot be recorded, 204 for events), events arriving meanwhile are kept (in memory
when the spool's file cannot take them either) and processed once space is back, without a
restart. Before, such an event escaped as a 500: the spool's own insert failed with
"database or disk is full"."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import pytest

from gateway.state import open_store
from gateway.translate.context import member_label
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import (
    APP_AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)

CONFERENCE = "CF" + "d" * 32


@pytest.fixture
def small_disk(tmp_path):
    """tmp_path/state on a 16 MB tmpfs (room for SQLite's WAL beside a filler)."""
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(state)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True)


def fill(path) -> None:
    with open(path, "wb", buffering=0) as out:
        for block in (b"\0" * 65536, b"\0" * 512, b"\0"):
            with contextlib.suppress(OSError):
                while True:
                    out.write(block)


def event(gw: GatewayServer, call_sid: str, name: str, sequence: int) -> int:
    params = {"ConferenceSid": CONFERENCE, "FriendlyName": "plivo-x",
              "AccountSid": twilio_call_params()["AccountSid"], "StatusCallbackEvent": name,
              "SequenceNumber": str(sequence), "Timestamp": "Mon, 30 Nov 2026 23:50:00 +0000",
              "CallSid": call_sid, "ParticipantLabel": member_label(call_sid, 1),
              "Muted": "false", "Hold": "false", "Coaching": "false",
              "EndConferenceOnExit": "false", "StartConferenceOnEnter": "true"}
    return gw.signed_post("/twilio/conference/events", params).status_code


def wait_until_no_job_is_booked(gw: GatewayServer, timeout: float = 15.0) -> None:
    store = open_store(gw.store_url)
    end = time.monotonic() + timeout
    while list(store.scan("job:")):
        assert time.monotonic() < end, "the gateway's jobs did not finish"
        time.sleep(0.05)
    store.close()


def actions(app: CustomerApp) -> list[str]:
    return [r.params.get("ConferenceAction", "") for r in app.requests_to("/cb")]


def test_a_full_disk_costs_no_event_and_heals_without_a_restart(tmp_path, small_disk):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        app.route("/answer", f'<Response><Conference callbackUrl="{app.url("/cb")}">Disk'
                  "</Conference></Response>")
        app.route("/cb", body="")
        with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))]) as gw:
            assert gw.store_url.startswith(f"sqlite:///{small_disk}/")
            caller = twilio_call_params()
            assert b"<Conference" in gw.signed_post("/twilio/voice", caller).content
            assert event(gw, caller["CallSid"], "participant-join", 1) == 204
            app.wait_for(lambda reqs: actions(app) == ["enter"], timeout=15)
            # The enter's delivery job strikes itself off just after the app has the callback;
            # a disk that fills in between fails that step, and the retry (at least once) sends
            # the enter again. The disk fills once nothing is left in flight.
            wait_until_no_job_is_booked(gw)

            fill(small_disk / "filler")
            # Twilio's leave event while nothing can be written: answered, and kept.
            assert event(gw, caller["CallSid"], "participant-leave", 2) == 204
            late = gw.signed_post("/twilio/voice", twilio_call_params())
            assert late.status_code == 200
            assert late.headers["Gateway-Call-Failed"] == "store-unavailable"
            assert b"<Say" in late.content

            os.unlink(small_disk / "filler")
            app.wait_for(lambda reqs: actions(app) == ["enter", "exit"], timeout=30)
            again = gw.signed_post("/twilio/voice", twilio_call_params())
            assert b"<Conference" in again.content and "Gateway-Call-Failed" not in again.headers
            assert gw.process.poll() is None
            logs = gw.logs()
            assert "database or disk is full" in logs
            assert "keeping them in memory until the store is back" in logs
