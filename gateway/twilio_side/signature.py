"""Twilio's request signature (`X-Twilio-Signature`), checked as Twilio computes it.

Twilio signs the URL it requested (the gateway's public base URL, the path, the query) followed
by every POST parameter, name then value, sorted by name; the signature is the base64 HMAC-SHA1
of that string under the account's Auth Token. The URL exactly as requested is computed here
(`twilio_signature`, once per webhook: equal to `RequestValidator.compute_signature`, pinned by
`tests/core/test_twilio_signature.py`, at half its cost: one string join and a one-shot HMAC);
twilio's `RequestValidator` judges the rest (the URL with and without its port).
"""

from __future__ import annotations

import base64
import hmac

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict, MultiDict


class TwilioForm(MultiDict):
    """A form as werkzeug keeps it, with the `getall` twilio's validator asks for first: with
    werkzeug's own class each parameter costs the validator an AttributeError (a third of the
    check's time)."""

    getall = MultiDict.getlist


class ImmutableTwilioForm(ImmutableMultiDict):
    """`TwilioForm`, as Flask's `request.form` (see `app.GatewayRequest`)."""

    getall = ImmutableMultiDict.getlist


def signed_by_twilio(validator: RequestValidator, url: str, params, signature: str) -> bool:
    """Whether `signature` is Twilio's for `url` and `params` (a `TwilioForm` is quickest).

    The URL exactly as requested is tried first: it is what Twilio signs, and `validate()` always
    computes two signatures (with the port and without)."""
    if not signature:
        return False
    exact = twilio_signature(validator.token, url, params)  # the token, as bytes
    return hmac.compare_digest(exact.encode(), signature.encode()) or validator.validate(
        url, params, signature)


def twilio_signature(key: bytes, url: str, form) -> str:
    """X-Twilio-Signature for a POST to `url` with `form` (a werkzeug MultiDict) under `key`
    (the Auth Token's bytes): base64(HMAC-SHA1(key, url + each name and value)), names sorted,
    a name's distinct values sorted, as `RequestValidator.compute_signature` computes it."""
    parts = [url]
    for name in sorted(form.keys()):
        values = form.getlist(name)
        if len(values) == 1:
            parts.append(name + values[0])
        else:
            parts.extend(name + value for value in sorted(set(values)))
    digest = hmac.digest(key, "".join(parts).encode("utf-8"), "sha1")
    return base64.b64encode(digest).decode("ascii")
