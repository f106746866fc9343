"""Replayed Twilio requests: Twilio's signature has no timestamp, so a captured, validly signed
request can be sent again. The gateway refuses work for a call it knows has ended, and every
Plivo request for a call happens at most once per Twilio event."""

from __future__ import annotations

import time

from lxml import etree

from tests.support.gateway_server import twilio_call_params


def verbs(response) -> list[str]:
    return [v.tag for v in etree.fromstring(response.content)]


def final_status(params: dict[str, str]) -> dict[str, str]:
    return {**params, "CallStatus": "completed", "CallDuration": "3"}


def test_a_replayed_voice_webhook_never_starts_the_app_again(gateway, customer_app):
    customer_app.route("/answer", "<Response><Speak>Hello</Speak></Response>")
    params = twilio_call_params()
    before = customer_app.count("/answer")
    assert verbs(gateway.signed_post("/twilio/voice", params)) == ["Say"]
    # The same request again while the call is live (a replay, or a duplicate).
    assert verbs(gateway.signed_post("/twilio/voice", params)) == ["Hangup"]
    assert customer_app.count("/answer") == before + 1


def test_a_call_that_has_ended_is_not_brought_back_by_replays(gateway, customer_app):
    customer_app.route("/answer", "<Response><Speak>Hello</Speak></Response>")
    params = twilio_call_params()
    gateway.signed_post("/twilio/voice", params)
    assert gateway.signed_post("/twilio/status", final_status(params)).status_code == 204
    customer_app.wait_for_request("/hangup")
    answers = customer_app.count("/answer")

    # The captured voice webhook and status callback, replayed after the call ended.
    assert verbs(gateway.signed_post("/twilio/voice", params)) == ["Hangup"]
    assert gateway.signed_post("/twilio/status", final_status(params)).status_code == 204
    assert verbs(gateway.signed_post("/twilio/continue?step=1", params)) == ["Hangup"]
    time.sleep(1.0)  # a second hangup request would be delivered by now
    assert customer_app.count("/answer") == answers
    assert len([r for r in customer_app.requests_to("/hangup")
                if r.params["CallUUID"] == customer_app.requests_to("/answer")[-1]
                .params["CallUUID"]]) == 1
    assert "refused" in gateway.logs()


def test_a_replayed_redirect_continuation_fetches_nothing_twice(gateway, customer_app):
    customer_app.route("/answer", "<Response><Redirect>" + customer_app.url("/next")
                       + "</Redirect></Response>")
    customer_app.route("/next", "<Response><Speak>Next</Speak></Response>")
    params = twilio_call_params()
    before = customer_app.count("/next")
    assert verbs(gateway.signed_post("/twilio/voice", params)) == ["Redirect"]
    assert verbs(gateway.signed_post("/twilio/continue?step=1", params)) == ["Say"]
    assert verbs(gateway.signed_post("/twilio/continue?step=1", params)) == ["Hangup"]
    assert customer_app.count("/next") == before + 1
