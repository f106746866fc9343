"""The gateway's check of X-Twilio-Signature computes what twilio's RequestValidator computes."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict

from gateway.twilio_side.signature import TwilioForm, twilio_signature

TOKEN = "0123456789abcdef0123456789abcdef"
URL = "https://gateway.example.com/twilio/voice?step=2"

FORMS = {
    "voice webhook": [("CallSid", "CA" + "1" * 32), ("AccountSid", "AC" + "2" * 32),
                      ("From", "+14155550111"), ("To", "+14155550100"),
                      ("CallStatus", "ringing"), ("Direction", "inbound")],
    "repeated names, repeated values": [("Digits", "2"), ("Digits", "1"), ("Digits", "2"),
                                        ("A", "z"), ("A", "a")],
    "unicode and markup": [("CallerName", "Zoë & <Jo>"), ("SpeechResult", "日本語 ok")],
    "empty values": [("Empty", ""), ("CallSid", "CA1")],
    "no form": [],
}


@pytest.mark.parametrize("pairs", FORMS.values(), ids=FORMS.keys())
def test_signature_is_the_request_validators(pairs):
    form = ImmutableMultiDict(pairs)
    expected = RequestValidator(TOKEN).compute_signature(URL, form)
    assert twilio_signature(TOKEN.encode(), URL, form) == expected


def test_the_gateways_form_class_gives_the_same_signature():
    pairs = FORMS["repeated names, repeated values"]
    expected = RequestValidator(TOKEN).compute_signature(URL, ImmutableMultiDict(pairs))
    assert twilio_signature(TOKEN.encode(), URL, TwilioForm(pairs)) == expected


def test_another_token_or_url_gives_another_signature():
    form = ImmutableMultiDict(FORMS["voice webhook"])
    signature = twilio_signature(TOKEN.encode(), URL, form)
    assert twilio_signature(b"another token", URL, form) != signature
    assert twilio_signature(TOKEN.encode(), URL + "&x=1", form) != signature


@pytest.mark.parametrize("name", [name for name, pairs in FORMS.items()
                                  if len(dict(pairs)) == len(pairs)])
def test_a_plain_dict_of_the_form_gives_the_same_signature(name):
    """The webhooks answered before Flask keep a form whose names are all distinct (as Twilio
    sends them) in a dict."""
    pairs = FORMS[name]
    expected = RequestValidator(TOKEN).compute_signature(URL, dict(pairs))
    assert twilio_signature(TOKEN.encode(), URL, dict(pairs)) == expected
