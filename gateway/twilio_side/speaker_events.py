"""Speaker events, and every other conference event that needs no work, answered before Flask.

Twilio reports every talk spurt of every participant (`participant-speech-start` and `-stop`)
once a room subscribes to `speaker`, and the gateway must subscribe whenever a member may want
Plivo's floor events: Twilio keeps the room's events from its first participant, before later
members are known. In a room where nobody asked for floor events, such an event changes nothing
and sends nothing, yet it would pay for a whole Flask request (context, routing, the form parsed
twice). `SpeakerEvents` sits between `intake.BoundedBody` (which has read the body, within its
limits) and Flask, and answers 204 at once when

- the request is a signed (`X-Twilio-Signature`) form POST to the conference events URL, and
- `ConferenceEvents.needs_no_work` says the event needs nothing: a speech-start in a room where
  nobody wants floor events (one small read), a speech-stop, mute, hold... (no read at all), and
- for a speech-start, no event is waiting in the spool (a spooled join may be the one that
  wants the floor).

Everything else goes on to Flask unchanged: other events, a wrong or missing signature (refused
and logged there), a store that does not answer (spooled there), a body that is not plain
URL-encoded UTF-8. The form is parsed as Flask parses it, so the signature is checked over the
same parameters. Answered here, an event is counted in `gateway_webhooks_total` as Flask's
route would count it, and is left out of gunicorn's access log (`access_log.AccessLog`):
in a busy room these events would be most of its lines.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from ..access_log import UNLOGGED
from ..conference.events import SPEECH
from ..observability import WEBHOOKS
from ..translate.context import CONFERENCE_EVENTS_PATH
from .signature import TwilioForm, signed_by_twilio

ROUTE = "twilio.conference_events"  # the Flask endpoint's name, for the metric's label
_FORM = "application/x-www-form-urlencoded"


class SpeakerEvents:
    """WSGI middleware: see the module doc. `public_url`: the base URL Twilio signs."""

    def __init__(self, app: Callable, *, events, spool, validator, public_url: str):
        self.app = app
        self.events = events
        self.spool = spool
        self.validator = validator
        self.signed_url = public_url + CONFERENCE_EVENTS_PATH
        self.always_processed = frozenset(events.handlers) - {SPEECH}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.needs_no_work(environ):
            environ[UNLOGGED] = True
            WEBHOOKS.labels(ROUTE, "ok").inc()
            start_response("204 No Content", [])
            return []
        return self.app(environ, start_response)

    def needs_no_work(self, environ: dict) -> bool:
        body = environ.get("wsgi.input")
        if (environ.get("PATH_INFO") != CONFERENCE_EVENTS_PATH
                or environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING")
                or not isinstance(body, io.BytesIO)  # BoundedBody reads every body first
                or not environ.get("CONTENT_TYPE", "").startswith(_FORM)):
            return False
        try:
            # As werkzeug parses a form (so the signature covers the same parameters).
            form = TwilioForm(parse_qsl(body.getvalue().decode(), keep_blank_values=True,
                                       errors="werkzeug.url_quote"))
        except UnicodeDecodeError:
            return False
        event = form.to_dict()
        name = event.get("StatusCallbackEvent")
        if not name or name in self.always_processed or not event.get("ConferenceSid"):
            return False  # joins, leaves, ends...: processed by the full route
        if not signed_by_twilio(self.validator, self.signed_url, form,
                                environ.get("HTTP_X_TWILIO_SIGNATURE", "")):
            return False  # refused, and logged, by the full route
        try:
            if name == SPEECH and len(self.spool):
                return False  # a spooled join may want the floor: the full route replays it
            return self.events.needs_no_work(event) is not None
        except Exception:  # the store is down (the full route spools the event), or worse
            return False
