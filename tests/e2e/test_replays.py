"""Replayed Twilio requests: Twilio's signature has no timestamp, so a captured, validly signed
request can be sent again. The gateway refuses work for a call it knows has ended, and every
Plivo request for a call happens at most once per Twilio event."""

from __future__ import annotations

import threading
import time

import requests
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


def test_a_voice_webhook_served_after_its_calls_end_never_starts_the_app(gateway,
                                                                          customer_app):
    """The final status was handled first (the worker holding the voice webhook stalled, or
    the voice webhook was lost with a killed worker and replayed later): Twilio has said the
    call is over, so the app is not started; it would never get a hangup request."""
    customer_app.route("/answer", "<Response><Speak>Hello</Speak></Response>")
    params = twilio_call_params()
    before = customer_app.count("/answer")
    assert gateway.signed_post("/twilio/status", final_status(params)).status_code == 204
    assert verbs(gateway.signed_post("/twilio/voice", params)) == ["Hangup"]
    assert customer_app.count("/answer") == before
    assert f"call {params['CallSid']}: status callback for an unknown call" in gateway.logs()


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


def test_a_final_status_during_a_slow_first_answer_sends_one_hangup_request(gateway,
                                                                            customer_app):
    """The caller hangs up while the app is still answering the first voice webhook: the
    gateway saves the call after translating that answer, after the end was processed. The
    save must not undo the end, or Twilio's repeated final status sends a second hangup."""
    answer_may_go = threading.Event()

    def slow_answer(_request) -> str:
        answer_may_go.wait(10)
        return "<Response><Speak>Hello</Speak></Response>"

    customer_app.route("/answer", handler=slow_answer)
    params = twilio_call_params()
    voice_url = gateway.url + "/twilio/voice"
    signature = gateway.validator.compute_signature(voice_url, params)
    answered: list[requests.Response] = []
    webhook = threading.Thread(target=lambda: answered.append(requests.post(
        voice_url, data=params, headers={"X-Twilio-Signature": signature}, timeout=20)))
    webhook.start()
    try:
        call_uuid = customer_app.wait_for_request("/answer").params["CallUUID"]
        assert gateway.signed_post("/twilio/status", final_status(params)).status_code == 204
        customer_app.wait_for_request("/hangup")
    finally:
        answer_may_go.set()
        webhook.join(20)
    assert verbs(answered[0]) == ["Say"]  # Twilio has no call left to play it to

    assert gateway.signed_post("/twilio/status", final_status(params)).status_code == 204
    time.sleep(1.0)  # a second hangup request would be delivered by now
    assert len([r for r in customer_app.requests_to("/hangup")
                if r.params["CallUUID"] == call_uuid]) == 1
