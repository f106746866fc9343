"""`POST /twilio/voice` against a real customer app: Plivo's request, and every bad input.

In every bad case Twilio gets valid TwiML (never a 500), the caller hears a short apology, and
one log line names the call, the URL and the reason.
"""

from __future__ import annotations

import time

import pytest
from lxml import etree

from gateway.app_side.params import call_uuid
from tests.support.customer_app import CustomerApp, Reply
from tests.support.gateway_server import twilio_call_params

APOLOGY = "We are sorry"


def verbs(response) -> list[tuple[str, str | None]]:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    tree = etree.fromstring(response.content)
    assert tree.tag == "Response"
    return [(v.tag, (v.text or "").strip() or None) for v in tree]


def assert_apology(response) -> None:
    said = verbs(response)
    assert said[0][0] == "Say" and APOLOGY in said[0][1]
    assert said[-1] == ("Hangup", None)


def wait_for_log(gateway, *needles: str, timeout: float = 5.0) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in gateway.logs().splitlines():
            if all(n in line for n in needles):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line with {needles}:\n{gateway.logs()[-2000:]}")


def test_plivo_request_has_plivo_params_and_signatures(gateway, customer_app):
    customer_app.route("/answer", "<Response><Speak>Hello</Speak></Response>")
    params = twilio_call_params(from_="+14155550111")
    response = gateway.signed_post("/twilio/voice", params)
    assert verbs(response) == [("Say", "Hello")]
    request = customer_app.wait_for_request("/answer")
    assert request.method == "POST"
    assert request.signature_v2_valid and request.signature_v3_valid  # plivo SDK validators
    p = request.params
    assert p["From"] == "14155550111" and p["To"] == "14155550100"
    assert p["CallStatus"] == "ringing" and p["Direction"] == "inbound"
    assert len(p["CallUUID"]) == 36 and "CallerName" in p
    assert p["CallUUID"] == call_uuid(params["CallSid"])  # stable: one CallUUID per CallSid


def test_conference_document_becomes_dial_conference(gateway, customer_app):
    customer_app.route("/answer", '<Response><Conference muted="true">Room 1</Conference>'
                                  "</Response>")
    tree = etree.fromstring(gateway.signed_post("/twilio/voice", twilio_call_params()).content)
    conference = tree.find("Dial/Conference")
    assert conference.get("muted") == "true" and conference.get("beep") == "false"
    assert tree.find("Dial").get("action").startswith(gateway.url + "/twilio/conference/left")
    assert conference.get("statusCallback") == gateway.url + "/twilio/conference/events"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_unsigned_or_wrongly_signed_request_is_refused_and_nothing_forwarded(
        gateway, customer_app, signature):
    response = gateway.signed_post("/twilio/voice", twilio_call_params(), signature=signature)
    assert response.status_code == 403
    time.sleep(0.3)
    assert customer_app.count() == 0
    wait_for_log(gateway, "refused POST /twilio/voice", "X-Twilio-Signature")


def test_signature_over_another_url_is_refused(gateway, customer_app):
    params = twilio_call_params()
    signature = gateway.validator.compute_signature(gateway.url + "/twilio/status", params)
    assert gateway.signed_post("/twilio/voice", params, signature=signature).status_code == 403


@pytest.mark.parametrize("path", ["/twilio/status", "/twilio/conference/events",
                                  "/twilio/conference/left?step=1", "/twilio/continue?step=1"])
def test_every_twilio_endpoint_checks_the_signature(gateway, path):
    assert gateway.signed_post(path, twilio_call_params(), signature="").status_code == 403


def test_unmapped_number_hears_not_in_service(gateway, customer_app):
    params = twilio_call_params(to="+19995550000")
    said = verbs(gateway.signed_post("/twilio/voice", params))
    assert said[0][0] == "Say" and "not in service" in said[0][1]
    assert customer_app.count() == 0
    wait_for_log(gateway, params["CallSid"], "+19995550000", "not mapped")


BAD_ANSWERS = {
    "500": Reply("oops", status=500, content_type="text/plain"),
    "404": Reply("no", status=404, content_type="text/plain"),
    "html": Reply("<html><body>Welcome</body></html>", content_type="text/html"),
    "empty body": Reply(""),
    "non-Response root": Reply("<Document><Speak>x</Speak></Document>"),
    "unknown element": Reply("<Response><Say>TwiML, not Plivo</Say></Response>"),
    "bad attribute value": Reply('<Response><Conference maxMembers="many">r</Conference>'
                                 "</Response>"),
    "external entity": Reply('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM '
                             '"file:///etc/passwd">]><Response><Speak>&x;</Speak></Response>'),
    "billion laughs": Reply('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
                            + "".join(f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10
                                      + '">' for i in range(8))
                            + "]><Response><Speak>&i;</Speak></Response>"),
}
REASONS = {
    "500": "HTTP 500", "404": "HTTP 404", "html": "root element must be <Response>",
    "empty body": "empty document", "non-Response root": "root element must be <Response>",
    "unknown element": "line 1, <Say>: unknown element", "bad attribute value":
    "<Conference maxMembers>", "external entity": "DOCTYPE", "billion laughs": "DOCTYPE",
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_bad_answer_gets_apology_and_one_log_line(gateway, customer_app, case):
    reply = BAD_ANSWERS[case]
    customer_app.route("/answer", reply.body, status=reply.status,
                       content_type=reply.content_type)
    params = twilio_call_params()
    assert_apology(gateway.signed_post("/twilio/voice", params))
    line = wait_for_log(gateway, params["CallSid"], customer_app.url("/answer"), REASONS[case])
    assert "ERROR" in line


def test_five_megabyte_answer_is_refused_without_reading_it(gateway, customer_app):
    customer_app.huge("/answer", size=5 * 2**20)
    params = twilio_call_params()
    assert_apology(gateway.signed_post("/twilio/voice", params))
    wait_for_log(gateway, params["CallSid"], "/answer", "larger than")


def test_refused_connection(gateway, customer_app, tmp_path):
    # Port of the customer app shut: use a route that redirects to a closed port instead.
    refused = CustomerApp.refused_url("/next")
    customer_app.route("/answer", f"<Response><Redirect>{refused}</Redirect></Response>")
    params = twilio_call_params()
    first = verbs(gateway.signed_post("/twilio/voice", params))
    assert first[0][0] == "Redirect"
    response = gateway.signed_post("/twilio/continue?step=1",
                                   dict(params, CallStatus="in-progress"))
    assert_apology(response)
    wait_for_log(gateway, params["CallSid"], refused, "refused")


def test_hanging_answer_url_is_cut_at_the_budget(gateway, customer_app):
    customer_app.hang("/answer")
    params = twilio_call_params()
    began = time.monotonic()
    assert_apology(gateway.signed_post("/twilio/voice", params))
    assert time.monotonic() - began < 10  # budget is 3 s here; Twilio's window is 15 s
    wait_for_log(gateway, params["CallSid"], "/answer")


def test_host_not_allowed_is_never_fetched(gateway, customer_app):
    customer_app.route("/answer", "<Response><Redirect>http://10.20.30.40/next</Redirect>"
                                  "</Response>")
    params = twilio_call_params()
    gateway.signed_post("/twilio/voice", params)
    assert_apology(gateway.signed_post("/twilio/continue?step=1", params))
    wait_for_log(gateway, params["CallSid"], "http://10.20.30.40/next", "not")


def test_hostname_resolving_to_loopback_is_refused(gateway, customer_app):
    params = twilio_call_params(to="+14155550300")
    assert_apology(gateway.signed_post("/twilio/voice", params))
    assert customer_app.count() == 0
    wait_for_log(gateway, params["CallSid"], "localhost")


def test_fallback_url_answers_when_the_answer_url_fails(gateway, customer_app):
    customer_app.route("/answer-fb", status=500, body="")
    customer_app.route("/fallback", "<Response><Speak>Fallback speaking</Speak></Response>")
    params = twilio_call_params(to="+14155550200")
    assert verbs(gateway.signed_post("/twilio/voice", params)) == [("Say", "Fallback speaking")]
    assert customer_app.wait_for_request("/fallback").signatures_valid
    wait_for_log(gateway, params["CallSid"], "/answer-fb", "fallback")


def test_fallback_failing_too_gets_the_apology(gateway, customer_app):
    customer_app.route("/answer-fb", status=500, body="")
    customer_app.route("/fallback", "<Response><Bogus/></Response>")
    params = twilio_call_params(to="+14155550200")
    assert_apology(gateway.signed_post("/twilio/voice", params))
    wait_for_log(gateway, params["CallSid"], "/fallback", "unknown element")


def test_redirect_fetches_the_next_document_with_its_method(gateway, customer_app):
    customer_app.route("/answer", '<Response><Speak>One</Speak><Redirect method="GET">'
                       + customer_app.url("/two?x=1") + "</Redirect></Response>")
    customer_app.route("/two", "<Response><Speak>Two</Speak></Response>")
    params = twilio_call_params()
    first = verbs(gateway.signed_post("/twilio/voice", params))
    assert first == [("Say", "One"), ("Redirect", gateway.url + "/twilio/continue?step=1")]
    second = gateway.signed_post("/twilio/continue?step=1", dict(params, CallStatus="in-progress"))
    assert verbs(second) == [("Say", "Two")]
    request = customer_app.wait_for_request("/two")
    assert request.method == "GET" and request.params["x"] == "1"
    assert request.params["CallStatus"] == "in-progress" and request.signatures_valid


def test_retry_fragment_is_honoured_and_never_sent(gateway, customer_app):
    customer_app.route("/answer", '<Response><Redirect>' + customer_app.url("/flaky")
                       + "#rc=2&amp;rp=5xx</Redirect></Response>")
    customer_app.route("/flaky", status=503, body="")
    params = twilio_call_params()
    gateway.signed_post("/twilio/voice", params)
    assert_apology(gateway.signed_post("/twilio/continue?step=1", params))
    assert customer_app.count("/flaky") == 3  # first try + rc=2 retries
    assert all("#" not in r.url for r in customer_app.requests_to("/flaky"))


def test_continue_for_an_unknown_call_gets_the_apology(gateway):
    params = twilio_call_params()
    assert_apology(gateway.signed_post("/twilio/continue?step=1", params))
    wait_for_log(gateway, params["CallSid"], "no record of this call")


def test_healthz_reports_the_store(gateway):
    import requests

    body = requests.get(gateway.url + "/healthz", timeout=5).json()
    assert body["status"] == "ok" and body["store"].startswith("sqlite:///")


def test_twiml_over_twilios_64_kb_gets_the_apology_and_a_clear_log_line(gateway, customer_app):
    customer_app.route("/answer", "<Response>" + "<Wait/>" * 4000 + "</Response>")
    params = twilio_call_params()
    assert_apology(gateway.signed_post("/twilio/voice", params))
    wait_for_log(gateway, params["CallSid"], "over Twilio's limit", "11750")


@pytest.mark.parametrize("reply", ["menu", "500"])
def test_webhook_answered_before_flask_gets_the_flask_routes_answer(gateway, customer_app, reply):
    # Without a query, the first voice webhook is answered before Flask (VoiceWebhook); with
    # one, the Flask route answers it. Same TwiML, same headers, same failure marking.
    if reply == "menu":
        customer_app.route("/answer", f'<Response><GetDigits action="{customer_app.url("/menu")}"'
                           ' numDigits="1"><Speak>Press 1</Speak></GetDigits></Response>')
    else:
        customer_app.route("/answer", Reply("oops", status=500, content_type="text/plain"))
    before_flask = gateway.signed_post("/twilio/voice", twilio_call_params())
    through_flask = gateway.signed_post("/twilio/voice?via=flask", twilio_call_params())
    assert before_flask.status_code == through_flask.status_code == 200
    assert before_flask.content == through_flask.content
    for header in ("Content-Type", "Content-Length", "Gateway-Call-Failed"):
        assert before_flask.headers.get(header) == through_flask.headers.get(header)
    if reply == "500":
        assert before_flask.headers["Gateway-Call-Failed"] == "app-failed"
    else:
        assert verbs(before_flask)[0][0] == "Gather"
    assert customer_app.count() == 2  # both reached the app, once each
