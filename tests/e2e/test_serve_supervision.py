"""`gateway serve` supervises its helpers: a job worker killed with SIGKILL is started again,
the web side goes on answering, and the callbacks booked meanwhile are delivered by the new
worker. (Before, the death of the worker stopped the whole gateway: every call got a refused
connection until something restarted `gateway serve`.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from gateway.translate.context import member_label
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import (
    APP_AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)

WORKER = "gateway.cli worker"


@pytest.fixture
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        app.route("/answer", f'<Response><Conference callbackUrl="{app.url("/cb")}">'
                  "Supervised</Conference></Response>")
        app.route("/cb", body="")
        yield app


def wait_until(predicate, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"not within {timeout} s")


def join(gw: GatewayServer, call_sid: str, sequence: int) -> int:
    params = {"ConferenceSid": "CF" + "c" * 32, "FriendlyName": "plivo-x",
              "AccountSid": twilio_call_params()["AccountSid"],
              "StatusCallbackEvent": "participant-join", "SequenceNumber": str(sequence),
              "Timestamp": "Mon, 30 Nov 2026 23:00:00 +0000", "CallSid": call_sid,
              "ParticipantLabel": member_label(call_sid, 1), "Muted": "false", "Hold": "false",
              "Coaching": "false", "EndConferenceOnExit": "false",
              "StartConferenceOnEnter": "true"}
    return gw.signed_post("/twilio/conference/events", params).status_code


def test_a_killed_job_worker_is_started_again_and_delivers(tmp_path, app):
    with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))]) as gw:
        for round_ in range(1, 4):  # several kills in a row: never taken for a crash loop
            (old,) = wait_until(lambda: gw.pids_running(WORKER), timeout=15)
            os.kill(old, signal.SIGKILL)
            wait_until(lambda old=old: old not in gw.pids_running(WORKER), timeout=5)
            # The web side answers at once, while no worker runs: the callback waits in the
            # outbox for the new worker.
            params = twilio_call_params()
            assert gw.signed_post("/twilio/voice", params).status_code == 200
            assert join(gw, params["CallSid"], round_) == 204
            (new,) = wait_until(lambda: gw.pids_running(WORKER), timeout=15)
            assert new != old
            uuid = app.requests_to("/answer")[-1].params["CallUUID"]
            enter = app.wait_for(lambda reqs, uuid=uuid: [
                r for r in reqs if r.path == "/cb" and r.params.get("CallUUID") == uuid
                and r.params.get("ConferenceAction") == "enter"], timeout=30)
            assert len(enter) == 1
        assert gw.process.poll() is None  # `gateway serve` itself never stopped
        assert "the job worker exited with code -9; starting it again" in gw.logs()


def test_a_web_worker_restarting_while_the_queue_is_locked_boots(tmp_path, app):
    """A web worker that starts while the job worker holds the embedded queue's write lock
    waits for it. (It used to fail at once with "database is locked"; gunicorn, seeing a worker
    that cannot boot, then shut the whole server down.)"""
    with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))]) as gw:
        queue = sqlite3.connect(gw.workdir / "state" / "gateway-queue.db", timeout=10,
                                isolation_level=None)
        web = [pid for pid, cmdline in gw.group_processes().items() if "gunicorn" in cmdline
               and pid not in gw.pids_running("gunicorn")[:1]]
        queue.execute("BEGIN IMMEDIATE")  # as the job worker does while it takes a job
        try:
            os.kill(max(web), signal.SIGKILL)  # a web worker (the master started first)
            time.sleep(1.5)  # gunicorn starts another, which opens the queue meanwhile
        finally:
            queue.execute("ROLLBACK")
            queue.close()
        wait_until(lambda: len(gw.pids_running("gunicorn")) == 3, timeout=15)
        time.sleep(1)
        assert gw.process.poll() is None, gw.logs()[-2000:]
        assert "Worker failed to boot" not in gw.logs()
        assert gw.signed_post("/twilio/voice", twilio_call_params()).status_code == 200
