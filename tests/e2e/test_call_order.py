"""One order per call, whatever the timing: answer, enter, exit, hangup (Plivo's order), on both
stores, even when Twilio reports the call's end before the member's leave event, or the exit
callback is slow to deliver."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_callbacks import Call, conference_answer, start_gateway
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request):
    if request.param == "sqlite":
        return None  # the gateway's embedded default
    return request.getfixturevalue("redis_url")


def the_order(app) -> list[str]:
    order = []
    for r in app.requests:
        if r.path == "/cb":
            order.append(r.params["ConferenceAction"])
        elif r.path in ("/answer", "/hangup"):
            order.append(r.path.strip("/"))
    return order


@pytest.mark.parametrize("exit_delay", [0.0, 1.0])
def test_hangup_request_comes_after_the_exit_even_when_twilio_reports_the_end_first(
        tmp_path, store_url, exit_delay):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/cb", body="", delay=exit_delay)  # a slow app: each callback takes a while
        app.route("/hangup", body="")
        with start_gateway(tmp_path, app, store_url=store_url) as gw:
            call = Call(gw)
            call.answer()
            call.event("participant-join")
            # The caller hangs up: Twilio's status callback overtakes the leave event.
            final = dict(call.params, CallStatus="completed", CallDuration="9")
            assert gw.signed_post("/twilio/status", final).status_code == 204
            time.sleep(0.5)
            call.event("participant-leave", ReasonParticipantLeft="participant_hung_up")
            app.wait_for(lambda reqs: any(r.path == "/hangup" for r in reqs), timeout=30)
            assert the_order(app) == ["answer", "enter", "exit", "hangup"]


def test_a_member_that_never_joined_delays_the_hangup_only_briefly(tmp_path):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/hangup", body="")
        with start_gateway(tmp_path, app) as gw:
            call = Call(gw)
            call.answer()  # handed a Conference, then the caller hangs up before joining
            final = dict(call.params, CallStatus="completed", CallDuration="1")
            gw.signed_post("/twilio/status", final)
            app.wait_for(lambda reqs: any(r.path == "/hangup" for r in reqs), timeout=15)
            assert the_order(app) == ["answer", "hangup"]
