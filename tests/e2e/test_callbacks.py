"""Plivo callbacks from Twilio's conference events, delivered durably, in order, at least once.

Events are posted as Twilio posts them (signed, form-encoded) to a real gateway (gunicorn + the
job worker); the customer app on loopback receives the callbacks and checks their signatures.
"""

from __future__ import annotations

import json
import subprocess
import sys
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

CONFERENCE = "CF" + "b" * 32


class Call:
    """One Twilio call through the gateway, and the conference events Twilio would send."""

    sequence = 0

    def __init__(self, gateway: GatewayServer):
        self.gateway = gateway
        self.params = twilio_call_params()
        self.sid = self.params["CallSid"]

    def answer(self):
        return self.gateway.signed_post("/twilio/voice", self.params)

    def event(self, name: str, **extra) -> None:
        Call.sequence += 1
        params = {"ConferenceSid": CONFERENCE, "FriendlyName": "plivo-x", "AccountSid":
                  self.params["AccountSid"], "StatusCallbackEvent": name,
                  "SequenceNumber": str(extra.pop("sequence", Call.sequence)),
                  "Timestamp": "Mon, 23 Nov 2026 20:00:00 +0000", "CallSid": self.sid,
                  "ParticipantLabel": member_label(self.sid, 1), "Muted": "false", "Hold": "false",
                  "Coaching": "false", "EndConferenceOnExit": "false",
                  "StartConferenceOnEnter": "true", **extra}
        assert self.gateway.signed_post("/twilio/conference/events", params).status_code == 204


@pytest.fixture
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        yield app


def start_gateway(tmp_path, app, **kwargs) -> GatewayServer:
    return GatewayServer(tmp_path, apps=[app_config(app.url("/answer"),
                                                    hangup_url=app.url("/hangup"))],
                         **kwargs).start()


def conference_answer(app, callback_path: str = "/cb", **attributes) -> None:
    attrs = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    app.route("/answer", f'<Response><Conference callbackUrl="{app.url(callback_path)}" '
                         f"{attrs}>Sales</Conference></Response>")


def actions(app, path: str = "/cb") -> list[str]:
    return [r.params["ConferenceAction"] for r in app.requests_to(path)]


def test_enter_and_exit_reach_the_member_callback_signed(tmp_path, app):
    conference_answer(app)
    app.route("/cb", body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-join")
        call.event("participant-leave", ReasonParticipantLeft="participant_hung_up",
                   ParticipantCallStatus="completed")
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2, timeout=15)
        enter, exit_ = app.requests_to("/cb")
        assert (enter.params["ConferenceAction"], exit_.params["ConferenceAction"]) == (
            "enter", "exit")
        for r in (enter, exit_):
            assert r.signatures_valid
            assert r.params["ConferenceName"] == "Sales"
            assert r.params["ConferenceMemberID"] == "1"
            assert len(r.params["ConferenceUUID"]) == 36
            assert r.params["CallUUID"] == app.requests_to("/answer")[0].params["CallUUID"]
        assert exit_.params["CallStatus"] == "completed"


def test_duplicate_and_reordered_events_give_one_enter_then_one_exit(tmp_path, app):
    conference_answer(app)
    app.route("/cb", body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-leave", sequence=11)   # arrives first
        call.event("participant-join", sequence=10)    # late
        call.event("participant-join", sequence=10)    # and again
        call.event("participant-leave", sequence=11)   # duplicate
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2, timeout=15)
        time.sleep(1.0)
        assert actions(app) == ["enter", "exit"]


def test_events_for_unknown_calls_are_logged_and_nothing_is_sent(tmp_path, app):
    conference_answer(app)
    with start_gateway(tmp_path, app) as gw:
        stranger = Call(gw)  # never went through /twilio/voice
        stranger.event("participant-join")
        time.sleep(1.0)
        assert app.count("/cb") == 0
        assert f"unknown call {stranger.sid}" in gw.logs()


def test_failing_callback_is_retried_then_kept_and_replayed(tmp_path, app):
    conference_answer(app, callback_path="/cb#rc=2&amp;rp=5xx&amp;ct=500&amp;rt=500")
    app.route("/cb", status=500, body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-join")
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 3, timeout=20)
        listing = wait_for_failed(gw)
        assert len(listing) == 1 and listing[0]["request"]["kind"] == "enter"
        assert "500" in listing[0]["reason"]
        app.route("/cb", body="")  # the app is fixed
        replayed = run_cli(gw, "deliveries", "--replay", listing[0]["id"])
        assert replayed.returncode == 0, replayed.stderr
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 4, timeout=20)
        assert app.requests_to("/cb")[-1].params["ConferenceAction"] == "enter"
        assert wait_for_failed(gw, expect_empty=True) == []


def test_refusing_and_hanging_callbacks_are_kept_as_failed(tmp_path, app):
    refused = CustomerApp.refused_url("/cb")
    app.route("/answer", f'<Response><Conference callbackUrl="{refused}#rc=1&amp;ct=300">'
                         "Sales</Conference></Response>")
    app.route("/answer-hang", f'<Response><Conference callbackUrl="{app.url("/stuck")}'
                              '#rc=1&amp;rt=300">Sales</Conference></Response>')
    app.hang("/stuck")
    apps = [app_config(app.url("/answer")),
            app_config(app.url("/answer-hang"), name="hangs", numbers=("+14155550199",))]
    with GatewayServer(tmp_path, apps=apps) as gw:
        call, stuck = Call(gw), Call(gw)
        stuck.params["To"] = stuck.params["Called"] = "+14155550199"
        call.answer()
        stuck.answer()
        call.event("participant-join")
        stuck.event("participant-join")
        listing = wait_for_failed(gw)
        end = time.monotonic() + 30
        while len(listing) < 2 and time.monotonic() < end:
            listing = wait_for_failed(gw)
        reasons = sorted(r["reason"] for r in listing)
        assert len(reasons) == 2, reasons
        assert any("refused" in r or "connect" in r for r in reasons)
        assert any("no response within 0.3 s" in r for r in reasons)
        assert app.count("/stuck") == 2  # first try + rc=1


def test_member_callbacks_stay_in_order_when_the_app_is_slow(tmp_path, app):
    conference_answer(app)
    app.route("/cb", body="", delay=1.0)  # every callback takes a second
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-join")
        call.event("participant-speech-start")
        call.event("participant-leave")
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2, timeout=20)
        assert actions(app) == ["enter", "exit"]  # no floorEvent: no floor callback


def settled_store(gw: GatewayServer) -> dict:
    """Everything in the gateway's store once its job worker has nothing left to do."""
    store = open_store(gw.store_url)
    deadline = time.monotonic() + 15
    while any(key.startswith("job:") for key, _ in store.scan("")):
        assert time.monotonic() < deadline, "the job worker never finished its jobs"
        time.sleep(0.05)
    return dict(store.scan(""))


def test_speaker_events_write_nothing_when_nobody_wants_floor_events(tmp_path, app):
    """Twilio reports every talk spurt of every participant; in a room where no member asked
    for floor events they change nothing in the store and send nothing."""
    conference_answer(app)
    app.route("/cb", body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-join")
        app.wait_for(lambda reqs: any(r.path == "/cb" for r in reqs), timeout=15)
        before = settled_store(gw)
        for _ in range(10):
            call.event("participant-speech-start")
            call.event("participant-speech-stop")
        assert settled_store(gw) == before
        call.event("participant-leave")
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2, timeout=15)
        assert actions(app) == ["enter", "exit"]


def test_floor_callbacks_only_with_floor_event(tmp_path, app):
    conference_answer(app, floorEvent="true")
    app.route("/cb", body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-join")
        call.event("participant-speech-start")
        call.event("participant-speech-stop")
        call.event("participant-speech-start")  # still the floor holder: no new callback
        call.event("participant-leave")
        app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 3, timeout=15)
        time.sleep(0.5)
        assert actions(app) == ["enter", "floor", "exit"]


def test_sigkill_mid_delivery_loses_nothing(tmp_path, app):
    conference_answer(app)
    app.hang("/cb")  # the app is stuck: callbacks stay undelivered
    gw = start_gateway(tmp_path, app)
    try:
        calls = [Call(gw) for _ in range(3)]
        for call in calls:
            call.answer()
            call.event("participant-join")
        app.wait_for(lambda reqs: any(r.path == "/cb" for r in reqs), timeout=15)
        gw.kill()  # SIGKILL: gunicorn, its workers and the job worker
        app.route("/cb", body="")  # the app recovers
        app.release()
        gw.start()
        app.wait_for(lambda reqs: {r.params.get("CallUUID") for r in reqs if r.path == "/cb"
                                   and r.params.get("ConferenceAction") == "enter"} >= {
            a.params["CallUUID"] for a in reqs if a.path == "/answer"}, timeout=120)
    finally:
        gw.stop()


def test_hangup_url_gets_plivo_hangup_params(tmp_path, app):
    app.route("/answer", "<Response><Speak>Hi</Speak></Response>")
    app.route("/hangup", body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        final = dict(call.params, CallStatus="completed", CallDuration="42",
                     Timestamp="Mon, 23 Nov 2026 20:00:42 +0000")
        gw.signed_post("/twilio/status", final)
        gw.signed_post("/twilio/status", final)  # Twilio's duplicate
        hangup = app.wait_for_request("/hangup", timeout=15)
        time.sleep(0.5)
        assert app.count("/hangup") == 1
        p = hangup.params
        assert hangup.signatures_valid
        assert p["CallUUID"] == app.requests_to("/answer")[0].params["CallUUID"]
        assert p["HangupCause"] == "NORMAL_CLEARING" and p["CallStatus"] == "completed"
        assert p["Duration"] == "42" and p["From"] == "14155550111"
        for key in ("BillDuration", "StartTime", "AnswerTime", "EndTime", "Direction", "To"):
            assert key in p


# -- helpers ------------------------------------------------------------------------------------
def run_cli(gw: GatewayServer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], env=gw.env,
                          cwd=gw.workdir, capture_output=True, text=True, timeout=60)


def wait_for_failed(gw: GatewayServer, *, expect_empty: bool = False,
                    timeout: float = 30.0) -> list[dict]:
    end = time.monotonic() + timeout
    while True:
        result = run_cli(gw, "deliveries", "--failed")
        assert result.returncode == 0, result.stderr
        listing = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        if bool(listing) != expect_empty or time.monotonic() > end:
            return listing
        time.sleep(0.3)
