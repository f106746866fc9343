"""`POST /twilio/gather` with bad menu answers, against the real gateway and a real customer app.

A call is answered with a menu (through `/twilio/voice`), then Twilio's Gather answer is posted,
signed, with what a broken or hostile request could carry: keys that are not keys, 500 of them,
speech full of markup, 10,000 characters of speech. The caller always hears something sensible
(the menu again, or the next element), and the app only ever gets Plivo's parameters, signed.
"""

from __future__ import annotations

import pytest
from lxml import etree

from tests.support.gateway_server import twilio_call_params

MENU = ('<Response><GetDigits action="{app}/picked" numDigits="4" retries="2" '
        'validDigits="123"><Speak>Choose.</Speak></GetDigits>'
        "<Speak>Goodbye.</Speak></Response>")
SPEECH = ('<Response><GetInput action="{app}/said" inputType="speech">'
          "<Speak>Say it.</Speak></GetInput><Speak>Goodbye.</Speak></Response>")


def tree(response):
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content)


def start(gateway, customer_app, document: str) -> tuple[dict, str]:
    """Answer a call with `document`; returns its Twilio params and the Gather's action path."""
    customer_app.route("/answer", document.replace("{app}", customer_app.base_url))
    customer_app.route("/picked", "<Response><Speak>Picked.</Speak></Response>")
    customer_app.route("/said", "<Response><Speak>Heard.</Speak></Response>")
    params = twilio_call_params()
    gather = tree(gateway.signed_post("/twilio/voice", params)).find("Gather")
    assert gather is not None
    action = gather.get("action")
    assert action.startswith(gateway.url)
    return {**params, "CallStatus": "in-progress"}, action[len(gateway.url):]


@pytest.mark.parametrize("digits", ["abc", "9" * 500, "<Response/>", "12\n3"])
def test_keys_that_are_not_valid_are_an_invalid_attempt_never_sent(gateway, customer_app,
                                                                   digits):
    params, path = start(gateway, customer_app, MENU)
    again = tree(gateway.signed_post(path, {**params, "Digits": digits}))
    assert [v.tag for v in again] == ["Gather"]  # heard the menu again (retries=2)
    assert again.find("Gather/Say").text == "Choose."
    path = again.find("Gather").get("action")[len(gateway.url):]
    last = tree(gateway.signed_post(path, {**params, "Digits": digits}))
    assert [(v.tag, v.text) for v in last] == [("Say", "Goodbye.")]  # then the next element
    assert customer_app.requests_to("/picked") == []


def test_more_keys_than_num_digits_are_cut_as_plivo_does(gateway, customer_app):
    params, path = start(gateway, customer_app, MENU)
    answer = tree(gateway.signed_post(path, {**params, "Digits": "1231231"}))
    assert [(v.tag, v.text) for v in answer] == [("Say", "Picked.")]
    request = customer_app.wait_for_request("/picked")
    assert request.params["Digits"] == "1231"
    assert request.signatures_valid


@pytest.mark.parametrize("speech", [
    '<Response><Hangup/></Response> & "quotes" \x00\x07',
    "word " * 2000,
])
def test_speech_with_markup_or_10000_characters_reaches_the_app_cleanly(gateway, customer_app,
                                                                        speech):
    params, path = start(gateway, customer_app, SPEECH)
    answer = tree(gateway.signed_post(path, {**params, "SpeechResult": speech,
                                             "Confidence": "0.5"}))
    assert [(v.tag, v.text) for v in answer] == [("Say", "Heard.")]
    request = customer_app.wait_for_request("/said")
    assert request.signatures_valid, request.signature_error
    got = request.params
    assert got["InputType"] == "speech" and got["SpeechConfidenceScore"] == "0.5"
    assert got["Speech"] == " ".join(speech.replace("\x00", " ").replace("\x07", " ").split(
        ))[:2000]
    assert len(got["Speech"]) <= 2000 and "\x00" not in got["Speech"]


def test_a_confidence_that_is_not_a_score_is_sent_empty(gateway, customer_app):
    params, path = start(gateway, customer_app, SPEECH)
    gateway.signed_post(path, {**params, "SpeechResult": "sales", "Confidence": "NaN"})
    assert customer_app.wait_for_request("/said").params["SpeechConfidenceScore"] == ""


def test_an_answer_for_an_old_step_is_refused_as_a_replay(gateway, customer_app):
    params, path = start(gateway, customer_app, MENU)
    stale = path.replace("step=1", "step=0")
    answer = tree(gateway.signed_post(stale, {**params, "Digits": "1"}))
    assert [v.tag for v in answer] == ["Hangup"]  # the gateway's rule for replayed requests
    assert customer_app.requests_to("/picked") == []


def test_an_unsigned_answer_is_refused(gateway, customer_app):
    params, path = start(gateway, customer_app, MENU)
    response = gateway.signed_post(path, {**params, "Digits": "1"}, signature="bogus")
    assert response.status_code == 403
    assert customer_app.requests_to("/picked") == []


def test_the_last_invalid_attempt_plays_the_sound_before_the_next_element(gateway,
                                                                          customer_app):
    menu = ('<Response><GetDigits action="{app}/picked" numDigits="1" validDigits="1" '
            'invalidDigitsSound="{app}/invalid.wav"><Speak>Press one.</Speak></GetDigits>'
            "<Speak>Goodbye.</Speak></Response>")
    params, path = start(gateway, customer_app, menu)
    answer = tree(gateway.signed_post(path, {**params, "Digits": "5"}))
    assert [(v.tag, v.text) for v in answer] == [
        ("Play", customer_app.url("/invalid.wav")), ("Say", "Goodbye.")]
    assert customer_app.requests_to("/picked") == []
