"""A form read before Flask (`formencoding.form_decoded`) is the form werkzeug reads: the same
pairs as `parse_qsl(keep_blank_values=True, errors="werkzeug.url_quote")`, so Twilio's signature
is checked over the parameters Flask would see."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from gateway.formencoding import form_decoded

TWILIO_EVENT = urlencode({
    "AccountSid": "AC" + "0" * 32, "ConferenceSid": "CF" + "a" * 32,
    "StatusCallbackEvent": "participant-speech-start", "SequenceNumber": "12",
    "Timestamp": "Tue, 01 Dec 2026 01:00:00 +0000", "FriendlyName": "Sales & Support (EU)",
    "Caller": "+14155550100", "CallerName": "Zoë O'Brien", "Empty": ""})

ODD = ["", "&", "&&a=1", "a", "a=", "=b", "==", "a=b=c", "a+b=c+d", "%", "%zz=1", "a=%2", "%41=%42",
       "a=%ff%fe", "%C3%A9=%E2%82%AC", "a=1&a=2&a=", "+=+", "a=%2B%26%3D", "x=%u00e9",
       "a=b;c=d", "%00=%00", "é=ü", "a=%F0%9F%98%80", "&a&&b=&"]


def werkzeug_form(body: str) -> list[tuple[str, list[str]]]:
    """Each name with its values, in order, as Flask's `request.form` holds them."""
    environ = EnvironBuilder(method="POST", data=body.encode(),
                             content_type="application/x-www-form-urlencoded").get_environ()
    return list(parse_form_data(environ)[1].lists())


def decoded(body: str) -> list[tuple[str, list[str]]]:
    return list(MultiDict(form_decoded(body)).lists())


@pytest.mark.parametrize("body", [TWILIO_EVENT, *ODD])
def test_a_form_decodes_as_werkzeug_decodes_it(body):
    assert decoded(body) == werkzeug_form(body)
    assert form_decoded(body) == parse_qsl(body, keep_blank_values=True,
                                           errors="werkzeug.url_quote")


def test_random_forms_decode_as_werkzeug_decodes_them():
    alphabet = "ab=&+%2F0ECc9é ;"
    rng = random.Random(20261201)
    for _ in range(3000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert decoded(body) == werkzeug_form(body), body
        assert form_decoded(body) == parse_qsl(body, keep_blank_values=True,
                                               errors="werkzeug.url_quote"), body
