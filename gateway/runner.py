"""Runs a call's Plivo documents on Twilio: fetch from the app, parse, translate, remember.

Every Twilio request that asks "what next?" for a call (the voice webhook, a Redirect coming
back, a member leaving a room) ends here. The runner fetches Plivo XML from the app exactly as
Plivo would (parameters, signatures, retry fragment, allowed hosts, within Twilio's 15 s window),
translates the stretch up to the next hand-back, stores the continuation in the call record and
returns TwiML. Failures raise `CallFailed`, which the webhook layer turns into a spoken apology
and one log line. A stretch that reaches an element the gateway cannot run fails the same way
(`CannotRun`): the caller hears the apology, not silence. The call record is kept even when the
answer fails, so that the app still gets its hangup request, as Plivo sends one for every call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .app_side.client import AppClient, AppRequestError, safe_url
from .app_side.guard import AppGuard
from .app_side.params import EVENT_REDIRECT, EVENT_START_APP, call_params, call_uuid
from .calls import CallRecord, Calls
from .mappings import Mappings, PlivoApp
from .observability import TRANSLATION_ERRORS, timed_fetch
from .plivoxml import Conference, Dial, Document, PlivoXMLError, Redirect, parse_document
from .plivoxml.elements import MultiPartyCall
from .translate import (
    ElementCannotRun,
    GatewayUrls,
    Translation,
    TranslationContext,
    translate,
)
from .translate.builder import HANGUP_TWIML, hang_up_after
from .translate.context import MAX_CALL_SECONDS
from .translate.multipartycall import conference_for

log = logging.getLogger("gateway.calls")

# Part of the budget kept for the fallback URL when the answer URL fails: 4 s, or less of a
# short budget, so the answer URL always gets most of it.
FALLBACK_RESERVE = 4.0
FALLBACK_SHARE = 0.3
TWIML_MAX_BYTES = 64 * 1024  # Twilio refuses a larger TwiML response (error 11750)


class CallFailed(Exception):
    """The call cannot go on: no valid Plivo XML could be had. Carries what the log line says."""

    def __init__(self, call_sid: str, url: str | None, reason: str):
        self.call_sid = call_sid
        self.url = url
        self.reason = reason
        super().__init__(f"call {call_sid}: {url or '-'}: {reason}")


class UnknownCall(CallFailed):
    """Twilio asks about a call the gateway has no record of (expired, or never started)."""


class CannotRun(CallFailed):
    """The app's document reaches an element the gateway cannot run (`ElementCannotRun`)."""

    def __init__(self, call_sid: str, url: str | None, error: ElementCannotRun):
        self.element = error.element
        self.line = error.line
        super().__init__(call_sid, url, str(error))


@dataclass(frozen=True)
class Fetched:
    document: Document
    text: str
    url: str


def url_for_log(url: str | None) -> str:
    """A URL fit for a log line (no credentials, query or fragment: they may carry secrets)."""
    return safe_url(url) if url else "-"


class CallRunner:
    """Fetches, translates and continues Plivo documents for calls."""

    def __init__(self, *, mappings: Mappings, calls: Calls, client: AppClient, urls: GatewayUrls,
                 budget: float, on_conference=None, on_effects=None, on_dial=None,
                 max_call_seconds: int = MAX_CALL_SECONDS, transcription: str = "embedded",
                 stream_token=None, guard: AppGuard | None = None):
        self.mappings = mappings
        # Per-app limit on fetches in flight and circuit breaker (see app_side.guard).
        self.guard = guard or AppGuard()
        self.calls = calls
        self.client = client
        self.urls = urls
        self.budget = budget
        self.max_call_seconds = max_call_seconds
        # Hooks for the conference and timer machinery: called with (call, app, element/effects).
        self.on_conference = on_conference
        self.on_effects = on_effects
        self.on_dial = on_dial  # a Dial handed to Twilio: (call, app, dial)
        self.transcription = transcription  # who transcribes for a transcriptionUrl
        self.stream_token = stream_token  # signs a side stream's member label (digitsMatch)

    # -- requests to the app -------------------------------------------------------------
    def fetch(self, app: PlivoApp, url: str, method: str, params: Mapping[str, str],
              deadline: float) -> Fetched:
        """One Plivo XML document from the app, parsed; raise AppRequestError/PlivoXMLError."""
        with self.guard.admit(app.name, url), timed_fetch(app.name):
            response = self.client.request(url, method, params, auth_token=app.auth_token(),
                                           allowed_hosts=app.allowed_hosts, deadline=deadline)
        try:
            return Fetched(parse_document(response.text), response.text, url)
        except PlivoXMLError as exc:
            TRANSLATION_ERRORS.labels(exc.element or "Response").inc()
            raise

    def fetch_with_fallback(self, call: CallRecord, app: PlivoApp, url: str, method: str,
                            params: Mapping[str, str], deadline: float) -> Fetched:
        """The document at url, else the app's fallback URL (Plivo's rule), else CallFailed."""
        reserve = min(FALLBACK_RESERVE, FALLBACK_SHARE * self.budget) if app.fallback_url else 0.0
        primary_deadline = deadline - reserve
        try:
            return self.fetch(app, url, method, params, primary_deadline)
        except (AppRequestError, PlivoXMLError, LookupError) as exc:
            reason = describe(exc)
            if not app.fallback_url:
                raise CallFailed(call.call_sid, url, reason) from None
            log.warning("call %s: %s failed (%s); trying the fallback URL", call.call_sid,
                        url_for_log(url), reason)
        try:
            return self.fetch(app, app.fallback_url, app.fallback_method, params, deadline)
        except (AppRequestError, PlivoXMLError, LookupError) as exc:
            raise CallFailed(call.call_sid, app.fallback_url, describe(exc)) from None

    # -- what Twilio asks --------------------------------------------------------------------
    def answer(self, twilio: Mapping[str, str]) -> str:
        """The voice webhook: a call comes in. Returns TwiML; raises CallFailed."""
        deadline = time.monotonic() + self.budget
        call_sid = twilio.get("CallSid", "")
        app = self.mappings.app_for_number(twilio.get("To") or twilio.get("Called") or "")
        if app is None:
            raise UnmappedNumber(call_sid, None, f"number {twilio.get('To')!r} is not mapped")
        params = call_params(twilio, event=EVENT_START_APP)
        call = CallRecord(call_sid=call_sid, app=app.name, call_uuid=call_uuid(call_sid),
                          params={k: v for k, v in params.items()
                                  if k not in ("CallStatus", "Event")})
        if not self.calls.claim(call):
            raise ReplayedRequest(call_sid, None, "a voice webhook for a call the gateway has "
                                  "already started: refused (a replay, or a duplicate)")
        try:
            fetched = self.fetch_with_fallback(call, app, app.answer_url, app.answer_method,
                                               params, deadline)
            return self.run(call, app, fetched, start=0)
        except CallFailed:
            # The caller hears the apology (Twilio answers to play it): the record (claimed
            # above) says so, and its end reaches the app's hangup URL, as Plivo's would.
            if not call.played:
                call.played, call.answered_at = True, time.time()
            call.document = call.resume_at = None
            self.calls.save(call)
            raise

    def resume(self, call_sid: str, step: int | None) -> str:
        """Control comes back after a Redirect (or from the conference machinery)."""
        call, app = self.load(call_sid)
        self.require_current_step(call, step)
        return self.continue_document(call, app, time.monotonic() + self.budget)

    @staticmethod
    def require_current_step(call: CallRecord, step: int | None) -> None:
        """Twilio asks "what next?" once per stretch of TwiML: a request for an older stretch
        is a replay or a duplicate, and must not reach the app a second time."""
        if step is not None and step != call.step:
            raise ReplayedRequest(call.call_sid, None, f"a request for step {step} while the "
                                  f"call is at step {call.step}: refused (a replay, or a "
                                  "duplicate)")

    def continue_document(self, call: CallRecord, app: PlivoApp, deadline: float,
                          stop_streams: tuple[str, ...] = (), *,
                          sound_first: str | None = None) -> str:
        """Go on with the stored continuation: fetch a Redirect's URL, or the next element.
        `stop_streams`: side streams the TwiML must stop first (a member that left a room);
        `sound_first` is played before whatever comes next (see `translate`)."""
        if call.document is None or call.resume_at is None:
            return self.finish(call, sound_first)
        document = parse_document(call.document)
        if call.resume_at >= len(document.steps):
            return self.finish(call, sound_first)
        element = document.steps[call.resume_at]
        if isinstance(element, Redirect):
            params = {**call.params, "CallStatus": "in-progress", "Event": EVENT_REDIRECT}
            fetched = self.fetch_or_fail(call, app, element.url, element.method, params,
                                         deadline)
            return self.run(call, app, fetched, start=0, stop_streams=stop_streams,
                            sound_first=sound_first)
        fetched = Fetched(document, call.document, call.document_url or "")
        return self.run(call, app, fetched, start=call.resume_at, stop_streams=stop_streams,
                        sound_first=sound_first)

    def fetch_or_fail(self, call: CallRecord, app: PlivoApp, url: str, method: str,
                      params: Mapping[str, str], deadline: float) -> Fetched:
        """Redirect and action documents: no fallback URL on Plivo, just the URL itself."""
        try:
            return self.fetch(app, url, method, params, deadline)
        except (AppRequestError, PlivoXMLError, LookupError) as exc:
            raise CallFailed(call.call_sid, url, describe(exc)) from None

    def finish(self, call: CallRecord, sound_first: str | None = None) -> str:
        """Nothing left to run: Plivo hangs up when a document runs out, and so does Twilio."""
        call.document = call.resume_at = None
        self.calls.save(call)
        return hang_up_after(sound_first) if sound_first else HANGUP_TWIML

    def run(self, call: CallRecord, app: PlivoApp, fetched: Fetched, start: int,
            stop_streams: tuple[str, ...] = (), *, sound_first: str | None = None) -> str:
        call.step += 1
        context = TranslationContext(account=app.account, urls=self.urls, step=call.step,
                                     first_in_call=not call.played, call_sid=call.call_sid,
                                     max_call_seconds=self.max_call_seconds,
                                     transcription=self.transcription,
                                     stream_token=self.stream_token, stop_streams=stop_streams,
                                     app=app.name, allowed_hosts=app.allowed_hosts)
        try:
            result: Translation = translate(fetched.document, context, start,
                                            sound_first=sound_first)
        except ElementCannotRun as exc:
            TRANSLATION_ERRORS.labels(exc.element).inc()  # refused by the element at fault
            raise CannotRun(call.call_sid, fetched.url, exc) from None
        if len(result.twiml) > TWIML_MAX_BYTES and len(result.twiml.encode()) > TWIML_MAX_BYTES:
            raise CallFailed(call.call_sid, fetched.url, f"the TwiML for this document is "
                             f"{len(result.twiml.encode())} bytes, over Twilio's limit of "
                             f"{TWIML_MAX_BYTES} (error 11750)")
        if result.verbs and not call.played:
            call.played, call.answered_at = True, time.time()  # Twilio answers to play
        keep = result.resume_at is not None
        call.document = fetched.text if keep else None
        call.document_url = fetched.url if keep else None
        call.resume_at = result.resume_at
        call.rejected = result.rejected
        room = result.handback
        if isinstance(room, MultiPartyCall):
            room = conference_for(room)  # an MPC runs as a conference (translate.multipartycall)
        if isinstance(room, Conference) and self.on_conference:
            self.on_conference(call, app, room)
        if isinstance(result.handback, Dial) and self.on_dial:
            self.on_dial(call, app, result.handback)
        if result.effects and self.on_effects:
            self.on_effects(call, app, result.effects)
        self.calls.save(call)
        for note in result.notes:
            if note.status in ("not-yet", "unsupported"):
                log.warning("call %s: %s: %s", call.call_sid, url_for_log(fetched.url), note)
        return result.twiml

    def load(self, call_sid: str, *, ended_ok: bool = False) -> tuple[CallRecord, PlivoApp]:
        """The call and its app. `ended_ok`: Twilio legitimately asks about an ended call (a
        Record's action after the caller hung up); otherwise that is refused as a replay."""
        call = self.calls.get(call_sid)
        if call is None:
            raise UnknownCall(call_sid, None, "no record of this call (expired or never "
                              "started here)")
        if call.ended and not ended_ok:
            raise ReplayedRequest(call_sid, None, "a request for a call that has ended: refused "
                                  "(a replay, or a late duplicate)")
        app = self.mappings.app_named(call.app)
        if app is None:
            raise CallFailed(call_sid, None, f"app {call.app!r} is no longer in the mappings")
        return call, app


class UnmappedNumber(CallFailed):
    """The called number routes to no app."""


class ReplayedRequest(CallFailed):
    """A request the gateway has already served, or for a call that has ended: Twilio's
    signature carries no timestamp, so a captured request can be sent again. Nothing reaches
    the app."""


def describe(exc: Exception) -> str:
    if isinstance(exc, AppRequestError):
        return exc.reason
    if isinstance(exc, PlivoXMLError):
        return f"invalid Plivo XML: {exc}"
    return str(exc)
