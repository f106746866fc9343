"""The first voice webhook of a call, answered before Flask.

Every call starts with Twilio's `POST /twilio/voice`, and the gateway's answer waits on the app's
document: the request is the one whose cost sets how many calls a second the gateway takes.
Flask's own machinery around it (request context, routing, the before-request hook, the
response object and its hooks) cost ~75 µs per request, more than any single part of the
gateway's own work. `VoiceWebhook` sits between `intake.BoundedBody` (which has read the body,
within its limits) and the rest, and answers a voice webhook itself when

- it is a POST to the voice URL, without a query, with a URL-encoded form, and
- its `X-Twilio-Signature` is Twilio's for the public URL and the form.

It then does exactly what the Flask route does: the same `CallRunner.answer`, the same failure
policy (`webhooks.voice_answer`: TwiML whatever happens, the apology marked by the
`Gateway-Call-Failed` header, one log line naming the call), the same metric
(`gateway_webhooks_total{route="twilio.voice"}`), the same response headers. Everything else
goes on to Flask unchanged: a wrong or missing signature (refused with 403, and logged, there),
a query, a body that is not plain URL-encoded UTF-8. The form is parsed as Flask parses it, so
the signature covers the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..observability import WEBHOOKS
from ..translate.context import VOICE_PATH
from .signature import signed_form
from .twiml import FAILURE_HEADER
from .webhooks import voice_answer

ROUTE = "twilio.voice"  # the Flask endpoint's name, for the metric's label
# As Flask's Response(body, mimetype="application/xml") says it.
_CONTENT_TYPE = ("Content-Type", "application/xml; charset=utf-8")


class VoiceWebhook:
    """WSGI middleware: see the module doc. `public_url`: the base URL Twilio signs."""

    def __init__(self, app: Callable, *, runner, validator, public_url: str):
        self.app = app
        self.runner = runner
        self.validator = validator
        self.signed_url = public_url + VOICE_PATH

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            form = signed_form(environ, VOICE_PATH, self.validator, self.signed_url)
        except Exception:  # whatever it is, the Flask route answers it (and says why)
            form = None
        if form is None:
            return self.app(environ, start_response)
        body, outcome, failure = voice_answer(lambda: self.runner.answer(form),
                                              form, VOICE_PATH)
        WEBHOOKS.labels(ROUTE, outcome).inc()
        data = body.encode("utf-8")
        headers = [_CONTENT_TYPE, ("Content-Length", str(len(data)))]
        if failure:
            headers.append((FAILURE_HEADER, failure))
        start_response("200 OK", headers)
        return [data]
