"""Twilio's request signature (`X-Twilio-Signature`), checked as Twilio computes it.

Twilio signs the URL it requested (the gateway's public base URL, the path, the query) followed
by every POST parameter, name then value, sorted by name; the signature is the base64 HMAC-SHA1
of that string under the account's Auth Token. twilio's `RequestValidator` does the computing.
"""

from __future__ import annotations

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
    exact = validator.compute_signature(url, params)
    return hmac.compare_digest(exact.encode(), signature.encode()) or validator.validate(
        url, params, signature)
