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
import io
from collections.abc import Callable

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

from ..formencoding import form_decoded


class TwilioForm(ImmutableMultiDict):
    """A form as Flask keeps it (`request.form`, see `app.GatewayRequest`), with the `getall`
    twilio's validator asks for first: with werkzeug's own class each parameter costs the
    validator an AttributeError when it judges the URL's port variants."""

    getall = ImmutableMultiDict.getlist


_FORM = "application/x-www-form-urlencoded"


def signed_form(environ: dict, path: str, validator: RequestValidator, signed_url: str,
                wanted: Callable[[dict[str, str]], bool] = lambda form: True,
                ) -> dict[str, str] | None:
    """The form of a signed webhook Twilio POSTed to `path`, read from a WSGI environ before
    Flask sees the request (`voice_webhook`, `speaker_events`), as a plain dict; None when it is
    not one to answer there: another path or method, a query, a body not yet read whole by
    `intake.BoundedBody`, not plain URL-encoded UTF-8, a name given twice (Twilio never does;
    Flask's route reads every value), not `wanted`, or a signature that is not Twilio's for
    `signed_url` (the Flask route then refuses it, and logs why). The form is parsed as werkzeug
    parses it, so the signature covers the parameters Flask would see. `wanted` is asked before
    the signature is computed."""
    body = environ.get("wsgi.input")
    if (environ.get("PATH_INFO") != path or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING") or not isinstance(body, io.BytesIO)
            or not environ.get("CONTENT_TYPE", "").startswith(_FORM)):
        return None
    try:
        pairs = form_decoded(body.getvalue().decode())
    except UnicodeDecodeError:
        return None
    form = dict(pairs)
    if len(form) != len(pairs) or not wanted(form) or not signed_by_twilio(
            validator, signed_url, form, environ.get("HTTP_X_TWILIO_SIGNATURE", "")):
        return None
    return form


def signed_by_twilio(validator: RequestValidator, url: str, params, signature: str) -> bool:
    """Whether `signature` is Twilio's for `url` and `params` (a `TwilioForm`, or a dict).

    The URL exactly as requested is tried first: it is what Twilio signs, and `validate()` always
    computes two signatures (with the port and without)."""
    if not signature:
        return False
    exact = twilio_signature(validator.token, url, params)  # the token, as bytes
    return hmac.compare_digest(exact.encode(), signature.encode()) or validator.validate(
        url, params, signature)


def twilio_signature(key: bytes, url: str, form) -> str:
    """X-Twilio-Signature for a POST to `url` with `form` (a werkzeug MultiDict, or a dict of
    one value per name) under `key` (the Auth Token's bytes): base64(HMAC-SHA1(key, url + each
    name and value)), names sorted, a name's distinct values sorted, as
    `RequestValidator.compute_signature` computes it."""
    parts = [url]
    if isinstance(form, MultiDict):
        for name in sorted(form.keys()):
            values = form.getlist(name)
            if len(values) == 1:
                parts.append(name + values[0])
            else:
                parts.extend(name + value for value in sorted(set(values)))
    else:
        parts.extend(name + value for name, value in sorted(form.items()))
    digest = hmac.digest(key, "".join(parts).encode("utf-8"), "sha1")
    return base64.b64encode(digest).decode("ascii")
