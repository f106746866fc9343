"""Calls that cannot go on: nothing is skipped in silence, and the app still hears how they ended.

A document that reaches an element the gateway cannot run gets the apology (marked for Twilio's
request inspector and the simulator by the Gateway-Call-Failed header) and one log line naming
the element, its line and the URL. A call whose answer failed, or that the app rejected, still
reaches the app's hangup URL, with Plivo's HangupCause.
"""

from __future__ import annotations

from lxml import etree

from tests.e2e.test_observability import samples, value
from tests.e2e.test_voice_webhook import assert_apology, verbs, wait_for_log
from tests.support.gateway_server import twilio_call_params

FAILURE_HEADER = "Gateway-Call-Failed"


def test_an_element_the_gateway_cannot_run_is_an_apology_not_silence(gateway, customer_app):
    customer_app.route("/answer", "<Response><Speak>Welcome to sales</Speak>\n"
                                  "<MultiPartyCall role=\"ai-agent\">m</MultiPartyCall></Response>")
    params = twilio_call_params()
    response = gateway.signed_post("/twilio/voice", params)
    assert_apology(response)  # the Welcome before it is not half-played
    assert response.headers[FAILURE_HEADER] == "cannot-run; element=MultiPartyCall; line=2"
    line = wait_for_log(gateway, params["CallSid"], customer_app.url("/answer"),
                        "<MultiPartyCall>")
    assert "ERROR" in line and "line 2" in line and "cannot run on the gateway" in line


def test_a_document_made_only_of_such_elements_is_not_an_empty_response(gateway, customer_app):
    customer_app.route("/answer", '<Response><MultiPartyCall role="ai-agent">m</MultiPartyCall>'
                                  "</Response>")
    response = gateway.signed_post("/twilio/voice", twilio_call_params())
    assert_apology(response)
    assert response.headers[FAILURE_HEADER].startswith("cannot-run; element=MultiPartyCall")


def test_the_stretch_after_a_conference_fails_when_the_member_leaves(gateway, customer_app):
    customer_app.route("/answer", "<Response><Conference>Room</Conference>"
                                  "<MultiPartyCall role=\"ai-agent\">m</MultiPartyCall></Response>")
    params = twilio_call_params()
    first = etree.fromstring(gateway.signed_post("/twilio/voice", params).content)
    assert [v.tag for v in first] == ["Dial"]
    left = gateway.signed_post("/twilio/conference/left?step=1",
                               dict(params, CallStatus="in-progress", DialCallStatus="completed"))
    assert_apology(left)
    assert left.headers[FAILURE_HEADER] == "cannot-run; element=MultiPartyCall; line=1"


def test_other_failures_are_marked_too_and_successes_are_not(gateway, customer_app):
    customer_app.route("/answer", status=500, body="")
    failed = gateway.signed_post("/twilio/voice", twilio_call_params())
    assert failed.headers[FAILURE_HEADER] == "app-failed"
    unmapped = gateway.signed_post("/twilio/voice", twilio_call_params(to="+19995550000"))
    assert unmapped.headers[FAILURE_HEADER] == "not-in-service"
    customer_app.route("/answer", "<Response><Speak>Hi</Speak></Response>")
    fine = gateway.signed_post("/twilio/voice", twilio_call_params())
    assert verbs(fine) == [("Say", "Hi")] and FAILURE_HEADER not in fine.headers


def end_call(gateway, params: dict[str, str], status: str, duration: str = "0") -> None:
    final = dict(params, CallStatus=status, CallDuration=duration,
                 Timestamp="Mon, 30 Nov 2026 20:00:42 +0000")
    assert gateway.signed_post("/twilio/status", final).status_code == 204


def test_a_call_whose_answer_failed_still_gets_its_hangup_request(gateway, customer_app):
    customer_app.route("/answer", status=503, body="")
    customer_app.route("/hangup", body="")
    params = twilio_call_params()
    assert_apology(gateway.signed_post("/twilio/voice", params))
    end_call(gateway, params, "completed", duration="4")
    hangup = customer_app.wait_for_request("/hangup", timeout=15)
    assert hangup.signatures_valid
    p = hangup.params
    assert p["CallUUID"] == customer_app.requests_to("/answer")[0].params["CallUUID"]
    assert p["Event"] == "Hangup" and p["HangupCause"] == "NORMAL_CLEARING"
    assert p["Duration"] == "4" and p["AnswerTime"]  # answered to hear the apology


def test_a_call_that_reached_an_element_it_cannot_run_gets_its_hangup_request(
        gateway, customer_app):
    customer_app.route("/answer", '<Response><MultiPartyCall role="ai-agent">m</MultiPartyCall>'
                                  "</Response>")
    customer_app.route("/hangup", body="")
    params = twilio_call_params()
    assert_apology(gateway.signed_post("/twilio/voice", params))
    end_call(gateway, params, "completed", duration="3")
    assert customer_app.wait_for_request("/hangup", timeout=15).params["CallStatus"] == "completed"


def test_rejected_reports_call_rejected_and_busy_reports_user_busy(gateway, customer_app):
    customer_app.route("/hangup", body="")
    # Twilio ends a call rejected as its first verb with no-answer (reason=rejected) or busy
    # (twilio.com/docs/voice/twiml/reject); Plivo reports CALL_REJECTED and USER_BUSY.
    # Twilio's page does not pair reasons and statuses: the cause must not depend on the pairing.
    for reason, twilio_status, plivo_cause in (("rejected", "no-answer", "CALL_REJECTED"),
                                               ("busy", "busy", "USER_BUSY"),
                                               ("rejected", "busy", "CALL_REJECTED"),
                                               ("busy", "no-answer", "USER_BUSY")):
        customer_app.clear()
        customer_app.route("/hangup", body="")
        customer_app.route("/answer", f'<Response><Hangup reason="{reason}"/></Response>')
        params = twilio_call_params()
        tree = etree.fromstring(gateway.signed_post("/twilio/voice", params).content)
        assert [(v.tag, v.get("reason")) for v in tree] == [("Reject", reason)]
        end_call(gateway, params, twilio_status)
        p = customer_app.wait_for_request("/hangup", timeout=15).params
        assert (p["HangupCause"], p["Duration"], p["AnswerTime"]) == (plivo_cause, "0", "")


def test_a_caller_who_gives_up_is_not_reported_as_rejected(gateway, customer_app):
    customer_app.route("/answer", "<Response><Speak>Hi</Speak></Response>")
    customer_app.route("/hangup", body="")
    params = twilio_call_params()
    gateway.signed_post("/twilio/voice", params)
    end_call(gateway, params, "no-answer")
    assert customer_app.wait_for_request("/hangup", timeout=15).params["HangupCause"] == \
        "NO_ANSWER"


def test_operators_count_calls_refused_by_the_element_at_fault(gateway, customer_app):
    customer_app.route("/answer", '<Response><MultiPartyCall role="ai-agent">m</MultiPartyCall>'
                                  "</Response>")
    before = samples(gateway)
    assert_apology(gateway.signed_post("/twilio/voice", twilio_call_params()))
    after = samples(gateway)
    for name, labels in (("gateway_webhooks_total", {"route": "twilio.voice",
                                                      "outcome": "cannot-run"}),
                         ("gateway_translation_errors_total", {"element": "MultiPartyCall"})):
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name
