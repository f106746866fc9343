"""`gateway simulate` against a real gateway: a call that reaches an element the gateway cannot
run is heard as the apology, marked failed in the transcript, and the run exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.sim.cli import simulate_main
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import (
    ACCOUNT_SID,
    APP_AUTH_TOKEN,
    AUTH_TOKEN,
    GatewayServer,
    app_config,
    free_port,
)

SCENARIO = """
duration = 6.0
[[call]]
name = "alice"
from = "+14155550111"
to = "+14155550100"
"""


@pytest.fixture
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        customer_app.route("/hangup", body="")
        yield customer_app


def simulate(app: CustomerApp, tmp_path: Path, monkeypatch, capsys) -> tuple[int, list[dict]]:
    api_port = free_port()
    scenario = tmp_path / "alice.toml"
    scenario.write_text(SCENARIO)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    apps = [app_config(app.url("/answer"), hangup_url=app.url("/hangup"))]
    with GatewayServer(tmp_path / "gw", apps=apps, budget=3.0,
                       api_base_url=f"http://127.0.0.1:{api_port}") as gateway:
        status = simulate_main([str(scenario), "--gateway", gateway.url,
                                "--api-port", str(api_port)])
        app.wait_for_request("/hangup", timeout=15)
    return status, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_a_call_the_gateway_cannot_run_fails_the_run(app, tmp_path, monkeypatch, capsys):
    app.route("/answer", "<Response><Speak>Welcome</Speak>\n"
                         "<MultiPartyCall role=\"ai-agent\">m</MultiPartyCall></Response>")
    status, events = simulate(app, tmp_path, monkeypatch, capsys)
    assert status == 1
    (failed,) = [e for e in events if e["type"] == "call-failed"]
    assert failed["call"] == "alice"
    assert failed["reason"] == "cannot-run; element=MultiPartyCall; line=2"
    heard = [e["detail"] for e in events if e["type"] == "heard"]
    assert len(heard) == 1 and heard[0].startswith("We are sorry")  # not "Welcome", not silence
    assert events[-1]["type"] == "run-end" and events[-1]["ok"] is False
    assert events[-1]["failed_calls"] == 1
    assert app.requests_to("/hangup")[0].params["CallStatus"] == "completed"


def test_a_call_the_gateway_runs_passes(app, tmp_path, monkeypatch, capsys):
    app.route("/answer", "<Response><Speak>Welcome</Speak></Response>")
    status, events = simulate(app, tmp_path, monkeypatch, capsys)
    assert status == 0
    assert not [e for e in events if e["type"] == "call-failed"]
    assert [e["detail"] for e in events if e["type"] == "heard"] == ["Welcome"]


@pytest.mark.parametrize(("reason", "twilio_status", "plivo_cause"), [
    ("rejected", "no-answer", "CALL_REJECTED"), ("busy", "busy", "USER_BUSY")])
def test_a_rejected_call_reaches_the_app_with_plivos_cause(app, tmp_path, monkeypatch, capsys,
                                                           reason, twilio_status, plivo_cause):
    app.route("/answer", f'<Response><Hangup reason="{reason}"/></Response>')
    status, events = simulate(app, tmp_path, monkeypatch, capsys)
    assert status == 0
    (end,) = [e for e in events if e["type"] == "call-end"]
    assert end["status"] == twilio_status  # what Twilio reports for <Reject reason=...>
    hangup = app.requests_to("/hangup")[0].params
    assert (hangup["HangupCause"], hangup["Duration"], hangup["AnswerTime"]) == (
        plivo_cause, "0", "")
