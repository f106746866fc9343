"""`<MultiPartyCall>` end to end: an agent and a customer meet in the MPC (a conference of its
own namespace), a supervisor listens muted, and the exit action comes back signed as Plivo signs
it; an MPC that asks for its own status events cannot run and says why."""

from __future__ import annotations

import pytest

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.plivo_signed import every_request_is_signed_as_plivo_signs  # noqa: F401
from tests.support.stack import Stack

NUMBERS = {"agent": "+14155550701", "customer": "+14155550702", "supervisor": "+14155550703"}


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        after = customer_app.url("/after")
        for role in NUMBERS:
            ends = ' endMpcOnExit="true"' if role == "customer" else ""
            customer_app.route(f"/answer/{role}", f'<Response><MultiPartyCall role="{role}"'
                               f'{ends} onExitActionUrl="{after}">sales</MultiPartyCall>'
                               "</Response>")
        customer_app.route("/after", "<Response><Speak>Thanks for calling</Speak></Response>")
        customer_app.route("/hangup", body="")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    apps = [app_config(app.url(f"/answer/{role}"), name=role, numbers=(number,),
                       hangup_url=app.url("/hangup")) for role, number in NUMBERS.items()]
    with Stack(tmp_path_factory.mktemp("mpc"), apps=apps) as running:
        yield running


def caller(name: str, role: str, at: float, hangup_at: float) -> dict:
    return {"name": name, "from": f"+1202555{abs(hash(name)) % 10000:04d}",
            "to": NUMBERS[role], "at": at, "hangup_at": hangup_at}


def test_agent_customer_and_a_muted_supervisor_share_one_room_then_the_exit_action_runs(
        stack, app):
    t = stack.run({"duration": 10.0, "call": [caller("ann", "agent", 0.0, 8.0),
                                               caller("cal", "customer", 0.3, 3.0),
                                               caller("sue", "supervisor", 0.6, 8.0)]})
    assert t.ok, t.errors
    joins = t.events(type="conference", event="participant-join")
    assert {e["call"] for e in joins} == {"ann", "cal", "sue"}
    assert len({e["conference_sid"] for e in joins}) == 1
    # Twilio's participant-join event says who joined muted (the supervisor only).
    names = {e["call_sid"]: e["call"] for e in t.events(type="call-end")}
    muted = {names[p["CallSid"]]: p["Muted"] for p in (
        e["params"] for e in t.events(type="sent", kind="conference-event"))
        if p["StatusCallbackEvent"] == "participant-join"}
    assert muted == {"ann": "false", "cal": "false", "sue": "true"}
    # The customer hangs up at 3 s and ends the MPC (endMpcOnExit): the agent and the supervisor
    # leave the room and hear what the exit action returns.
    assert ("say", "Thanks for calling") in t.heard("ann")
    assert ("say", "Thanks for calling") in t.heard("sue")
    after = app.requests_to("/after")
    assert len(after) >= 2 and all(r.signatures_valid for r in after)


def test_an_mpc_that_asks_for_its_own_events_cannot_run_and_says_why(stack, app):
    app.route("/answer/agent", '<Response><Speak>Joining</Speak><MultiPartyCall role="agent" '
                               'statusCallbackUrl="https://app.example/mpc">sales'
                               "</MultiPartyCall></Response>")
    t = stack.run({"duration": 4.0, "call": [caller("ann", "agent", 0.0, 3.0)]})
    (failed,) = t.failed_calls
    assert failed["reason"] == "cannot-run; element=MultiPartyCall; line=1"
    assert "Joining" not in [d for _, d in t.heard("ann")]
    assert "statusCallbackUrl: the MPC's own events are not emulated" in stack.gateway.logs()
