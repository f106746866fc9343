"""Twilio's webhooks: signature checked first, then one handler per endpoint.

The body the signature covers has already been read, within a time and a size limit, by
`intake.BoundedBody` (the app's outermost layer), so checking it never waits on the sender.

Failure policy lives here, once: a voice request that cannot be served gets a short spoken
apology and a hang-up (never a 500), marked by the `Gateway-Call-Failed` response header, and
one log line naming the call, the URL and the reason (for a document that reaches an element
the gateway cannot run: the element and its line);
an event that cannot be processed is answered 200 and spooled if the store is down, or logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, Response, current_app, request

from .. import messaging
from ..app_side.params import call_uuid
from ..hangups import call_ended
from ..observability import WEBHOOKS, log_context
from ..runner import (
    CallFailed,
    CannotRun,
    ReplayedRequest,
    UnknownCall,
    UnmappedNumber,
    url_for_log,
)
from ..state import StoreUnavailable
from ..translate import context as paths
from ..translate.builder import EMPTY_TWIML, HANGUP_TWIML
from .signature import signed_by_twilio
from .twiml import FAILURE_HEADER, NOT_IN_SERVICE, spoken_goodbye

log = logging.getLogger("gateway.twilio")

blueprint = Blueprint("twilio", __name__)


def runtime():
    return current_app.extensions["gateway"]


def signed_url() -> str:
    """The URL Twilio signed: the public base URL plus the path and query it requested."""
    query = request.query_string.decode("latin-1")
    return runtime().settings.public_url + request.path + (f"?{query}" if query else "")


@blueprint.before_request
def require_twilio_signature():
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signed_by_twilio(current_app.extensions["gateway.validator"], signed_url(),
                            request.form, signature):
        log.warning("refused %s %s from %s: %s X-Twilio-Signature", request.method,
                    request.path, request.remote_addr, "wrong" if signature else "no")
        WEBHOOKS.labels(request.endpoint or "-", "forbidden").inc()
        return Response("Forbidden: this endpoint only answers requests signed by Twilio.\n",
                        status=403, mimetype="text/plain")
    return None


def step_arg() -> int | None:
    text = request.args.get("step", "")
    return int(text) if text.isdigit() else None


def twiml(body: str, failure: str | None = None) -> Response:
    response = Response(body, mimetype="application/xml")
    if failure:
        response.headers[FAILURE_HEADER] = failure
    return response


def voice_endpoint(on_failure: Callable[[], str] = spoken_goodbye, *, call_fails: bool = True):
    """Answer TwiML whatever happens: the handler's, else `on_failure()` with one log line.
    `call_fails`: the failure ends the call (the apology), so the answer is marked as one."""
    def decorate(handler):
        @wraps(handler)
        def wrapper(*args, **kwargs):
            call_sid = request.form.get("CallSid", "-")
            with log_context(**request_ids()):
                body, outcome, failure = answer(handler, call_sid, args, kwargs)
            WEBHOOKS.labels(request.endpoint or "-", outcome).inc()
            return twiml(body, failure)

        def answer(handler, call_sid, args, kwargs) -> tuple[str, str, str | None]:
            """(TwiML, the metrics outcome, the failure the answer is marked with)."""
            try:
                return handler(*args, **kwargs), "ok", None
            except UnmappedNumber as exc:
                log.warning("call %s: %s: %s", call_sid, request.path, exc.reason)
                return spoken_goodbye(NOT_IN_SERVICE), "unmapped", "not-in-service"
            except ReplayedRequest as exc:
                # Not a failed call: a copy of a request for a call that goes on elsewhere.
                log.warning("call %s: %s: %s", call_sid, request.path, exc.reason)
                return HANGUP_TWIML, "replay-refused", None
            except UnknownCall as exc:
                log.warning("call %s: %s: %s", call_sid, request.path, exc.reason)
                outcome = failure = "unknown-call"
            except CannotRun as exc:
                log.error("call %s: %s: %s", exc.call_sid, url_for_log(exc.url), exc.reason)
                outcome = "cannot-run"
                failure = f"cannot-run; element={exc.element}; line={exc.line}"
            except CallFailed as exc:
                log.error("call %s: %s: %s", exc.call_sid, url_for_log(exc.url), exc.reason)
                outcome = failure = "app-failed"
            except StoreUnavailable as exc:
                log.error("call %s: %s: the shared store is unavailable: %s", call_sid,
                          request.path, exc)
                outcome = failure = "store-unavailable"
            except Exception:
                log.exception("call %s: %s: internal error", call_sid, request.path)
                outcome = failure = "internal-error"
            return on_failure(), outcome, failure if call_fails else None
        return wrapper
    return decorate


def receive_event(kind: str, **from_url: str) -> Response:
    """Events Twilio does not wait on: 204 always; spooled while the store is down.
    `from_url`: what the gateway put in the callback URL's query (e.g. which Record)."""
    rt = runtime()
    spool = current_app.extensions["gateway.spool"]
    subject = request.form.get("CallSid") or request.form.get("ConferenceSid") or "-"
    params = {**request.form.to_dict(), **from_url}
    outcome = "ok"
    with log_context(**request_ids()):
        try:
            if len(spool):
                replay_spooled(rt, spool)
            EVENT_HANDLERS[kind](rt, params)
        except StoreUnavailable as exc:
            where = spool.add(kind, {k: [v] for k, v in params.items()})
            log.error("%s event for %s spooled (%s): the shared store is unavailable (%s)",
                      kind, subject, "in memory" if where == "memory" else "on disk", exc)
            drain_when_store_returns(rt, spool)
            outcome = "spooled"
        except Exception:
            log.exception("%s event for %s: internal error; dropped", kind, subject)
            outcome = "internal-error"
    WEBHOOKS.labels(request.endpoint or "-", outcome).inc()
    return Response("", status=204)


def request_ids() -> dict[str, str | None]:
    """The ids a log line of this request carries (JSON logs)."""
    call_sid = request.form.get("CallSid")
    return {"CallSid": call_sid, "CallUUID": call_uuid(call_sid) if call_sid else None,
            "ConferenceSid": request.form.get("ConferenceSid")}


def flat(params: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in params.items() if v}


def replay_spooled(rt, spool) -> int:
    """Process the spooled events in order; raises StoreUnavailable if the store is still down.
    An event that fails for any other reason is logged and dropped, never left blocking the
    events behind it."""
    def process(kind: str, params: dict[str, list[str]]) -> None:
        try:
            EVENT_HANDLERS[kind](rt, flat(params))
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("spooled %s event: internal error; dropped", kind)
    return spool.drain(process)


def drain_when_store_returns(rt, spool) -> None:
    """Spooled events are replayed by themselves once the store answers, not by the next request."""
    spool.drain_in_background(rt.store.ping, lambda: replay_spooled(rt, spool))


EVENT_HANDLERS: dict[str, Callable] = {
    "status": lambda rt, p: caller_ended(rt, p),
    "conference": lambda rt, p: rt.events.handle(p),
    "recording": lambda rt, p: rt.events.recording(p),
    "gather-partial": lambda rt, p: rt.menus.partial(p),
    "record-status": lambda rt, p: rt.voicemail.status(p),
    "record-transcription": lambda rt, p: rt.voicemail.twilio_transcription(p),
    "dial-leg": lambda rt, p: rt.forwards.leg_event(p),
    "message-status": lambda rt, p: messaging.report(rt, p.get("msg", ""), p),
}


def caller_ended(rt, params: dict[str, str]) -> str:
    """The call's end: first the hangup callback of a callee it was still connected to (Plivo
    sends it before the call's hangup request), then the hangup request."""
    rt.forwards.caller_ended(params)
    return call_ended(params, calls=rt.calls, mappings=rt.mappings, store=rt.store)


@blueprint.post(paths.VOICE_PATH)
@voice_endpoint()
def voice() -> str:
    return runtime().runner.answer(request.form.to_dict())


@blueprint.post(paths.CONTINUE_PATH)
@voice_endpoint()
def continue_call() -> str:
    return runtime().runner.resume(request.form.get("CallSid", ""), step_arg())


@blueprint.post(paths.CONFERENCE_LEFT_PATH)
@voice_endpoint()
def conference_left() -> str:
    return runtime().exits.member_left(request.form.to_dict(), step_arg())


@blueprint.post(paths.CONFERENCE_WAIT_PATH)
# Wait music that fails is silence, not a hang-up: the call goes on, so it has not failed.
@voice_endpoint(on_failure=lambda: EMPTY_TWIML, call_fails=False)
def conference_wait() -> str:
    return runtime().sounds.wait_music(request.form.to_dict(), step_arg())


@blueprint.post(paths.CONFERENCE_ANNOUNCE_PATH)
@voice_endpoint(on_failure=lambda: EMPTY_TWIML, call_fails=False)
def conference_announce() -> str:
    return runtime().sounds.announcement(request.args.get("member", ""),
                                         request.args.get("sound", ""))


@blueprint.post(paths.GATHER_PATH)
@voice_endpoint()
def gather() -> str:
    return runtime().menus.answered(request.form.to_dict(), step_arg())


@blueprint.post(paths.GATHER_PARTIAL_PATH)
def gather_partial() -> Response:
    return receive_event("gather-partial")


@blueprint.post(paths.STATUS_PATH)
def status() -> Response:
    return receive_event("status")


@blueprint.post(paths.CONFERENCE_EVENTS_PATH)
def conference_events() -> Response:
    return receive_event("conference")


@blueprint.post(paths.CONFERENCE_RECORDING_PATH)
def conference_recording() -> Response:
    return receive_event("recording")


@blueprint.post(paths.RECORD_PATH)
@voice_endpoint()
def record_done() -> str:
    return runtime().voicemail.done(request.form.to_dict(), request.args.get("rec", ""))


@blueprint.post(paths.RECORD_STATUS_PATH)
def record_status() -> Response:
    return receive_event("record-status", rec=request.args.get("rec", ""))


@blueprint.post(paths.RECORD_TRANSCRIPTION_PATH)
def record_transcription() -> Response:
    return receive_event("record-transcription", rec=request.args.get("rec", ""))


@blueprint.post(paths.DIAL_DONE_PATH)
@voice_endpoint()
def dial_done() -> str:
    return runtime().forwards.done(request.form.to_dict(), step_arg())


@blueprint.post(paths.DIAL_EVENTS_PATH)
def dial_events() -> Response:
    return receive_event("dial-leg", step=request.args.get("step", ""))


def leg_arg() -> int:
    text = request.args.get("leg", "")
    return int(text) if text.isdigit() else -1


@blueprint.post(paths.DIAL_WHISPER_PATH)
# The whisper runs on the callee's leg: a failure there drops that leg (Hangup), never the
# caller's call, and is no apology to anyone.
@voice_endpoint(on_failure=lambda: HANGUP_TWIML, call_fails=False)
def dial_whisper() -> str:
    return runtime().forwards.whisper(request.form.to_dict(), step_arg(), leg_arg())


@blueprint.post(paths.DIAL_CONFIRMED_PATH)
@voice_endpoint(on_failure=lambda: HANGUP_TWIML, call_fails=False)
def dial_confirmed() -> str:
    return runtime().forwards.confirmed(request.form.to_dict(), step_arg())


@blueprint.post(paths.MESSAGE_STATUS_PATH)
def message_status() -> Response:
    return receive_event("message-status", msg=request.args.get("msg", ""))
