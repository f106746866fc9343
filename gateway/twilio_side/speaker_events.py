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

Under `gateway serve` (gunicorn's gevent workers) the same decision is taken earlier still, by
the web worker itself, before gunicorn builds the WSGI request (`EarlyAnswers`, asked by
`gunicorn_worker.GeventWorker`): the body is read by `intake.BoundedBody.read_whole`, within the
same limits, and a refusal found while reading is handed on to be answered as usual.

Everything else goes on to Flask unchanged: other events, a wrong or missing signature (refused
and logged there), a store that does not answer (spooled there), a body that is not plain
URL-encoded UTF-8, a name given twice. The form is parsed as Flask parses it, so the signature
is checked over the same parameters. Answered here, an event is counted in
`gateway_webhooks_total` as Flask's route would count it, and is left out of gunicorn's access
log (`access_log.AccessLog`): in a busy room these events would be most of its lines.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable

from ..access_log import UNLOGGED
from ..conference.events import SPEECH
from ..observability import WEBHOOKS
from ..translate.context import CONFERENCE_EVENTS_PATH
from .intake import BoundedBody, RefusedBody
from .signature import signed_form

ROUTE = "twilio.conference_events"  # the Flask endpoint's name, for the metric's label


class SpeakerEvents:
    """WSGI middleware: see the module doc. `public_url`: the base URL Twilio signs."""

    def __init__(self, app: Callable, *, events, spool, validator, public_url: str):
        self.app = app
        self.events = events
        self.spool = spool
        self.validator = validator
        self.signed_url = public_url + CONFERENCE_EVENTS_PATH
        self.always_processed = frozenset(events.handlers) - {SPEECH}
        self.answered = WEBHOOKS.labels(ROUTE, "ok")  # made in the worker: after gunicorn's fork

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.needs_no_work(environ):
            environ[UNLOGGED] = True
            self.answered.inc()
            start_response("204 No Content", [])
            return []
        return self.app(environ, start_response)

    def needs_no_work(self, environ: dict) -> bool:
        if environ.get("PATH_INFO") != CONFERENCE_EVENTS_PATH:
            return False
        body = environ.get("wsgi.input")
        if isinstance(body, io.BytesIO) and _named_event(body.getvalue()) in self.always_processed:
            return False  # a join, a leave...: the full route, without decoding the form here
        try:
            form = signed_form(environ, CONFERENCE_EVENTS_PATH, self.validator,
                               self.signed_url, wanted=self.maybe_no_work)
            if form is None:
                return False
            if form["StatusCallbackEvent"] == SPEECH and len(self.spool):
                return False  # a spooled join may want the floor: the full route replays it
            return self.events.needs_no_work(form) is not None
        except Exception:  # the store is down (the full route spools the event), or worse:
            return False  # whatever it is, the full route answers it (and says why)

    def maybe_no_work(self, form) -> bool:
        """Asked before the signature, of a form whose event `_named_event` could not read:
        joins, leaves, ends... go the full route (no need to check their signature twice)."""
        name = form.get("StatusCallbackEvent")
        return bool(name and name not in self.always_processed and form.get("ConferenceSid"))


class EarlyAnswers:
    """The speaker events `gunicorn_worker.GeventWorker` answers itself, before WSGI (see the
    module doc): `path` is the only one it asks about."""

    path = CONFERENCE_EVENTS_PATH

    def __init__(self, intake: BoundedBody, speaker: SpeakerEvents):
        self.intake = intake
        self.speaker = speaker

    def answers(self, environ: dict) -> bool:
        """Read the body (`environ["wsgi.input"]`, within `intake`'s limits) and judge the
        event: True, counted, when a 204 is the whole answer (the worker writes it). Either
        way the body as read is left in `environ["wsgi.input"]`: in memory, or as the
        refusal `intake` will answer."""
        body, problem = self.intake.read_whole(environ)
        if problem:
            environ["wsgi.input"] = RefusedBody(body, *problem)
            return False
        environ["wsgi.input"] = io.BytesIO(body)
        if not self.speaker.needs_no_work(environ):
            return False
        self.speaker.answered.inc()
        return True


_EVENT_NAME = re.compile(rb"(?:^|&)StatusCallbackEvent=([A-Za-z-]*)(?:&|$)")


def _named_event(body: bytes) -> str | None:
    """The event a form body names, when it names it plainly (as Twilio writes it); else None
    (the decision then reads the whole form)."""
    found = _EVENT_NAME.search(body)
    return found.group(1).decode() if found else None
