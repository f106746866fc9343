"""Twilio's answers about a `<Record>` -> Plivo's action, callbackUrl and transcriptionUrl.

* The Record action (`/twilio/record?rec=KEY`, also the `<Redirect>` Twilio runs after an empty
  recording): Plivo's recording parameters to the app's action, redirect true/false
  (`gateway.actions`); no action: the next element. If the caller hung up while recording (the
  voicemail case), the action is still sent, in the background, in order before the hang-up
  request: the message must not be lost.
* The recording status callback (`/twilio/record/status?rec=KEY`): Plivo's callbackUrl when the
  file is ready (or failed: empty values), then the transcription, all through the durable
  delivery queue on one stream per recording (the callback before its transcription).
* Twilio's transcription callback (GATEWAY_TRANSCRIPTION=twilio), or the `transcribe` job with
  the embedded engine: Plivo's transcription parameters, or Plivo's error form.
* recordSession: the `record_call` job starts Twilio's call recording (REST), retried until the
  call is in progress; its status callbacks come back like a Record's.

Settings of each Record are kept in the call record (`records[KEY]`) when its TwiML is served.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3

from .. import deliveries, jobs
from ..actions import follow_action
from ..calls import Calls
from ..deliveries import call_stream
from ..runner import CallRunner, ReplayedRequest
from ..transcription import MAX_BYTES, EmbeddedEngine, TranscriptionFailed, plivo_transcription
from ..translate.builder import EMPTY_TWIML
from .params import (
    action_recording,
    callback_recording,
    failure_reason,
    seconds_of,
    session_recording,
)

log = logging.getLogger("gateway.recording")

FINAL_CALL_STATUSES = {"completed", "canceled", "failed", "busy", "no-answer"}
SEEN_TTL = 24 * 3600.0
FETCH_TIMEOUT = 30.0
TWILIO_MAX_SECONDS = 120  # Twilio transcribes <Record> recordings of at most two minutes
MEDIA_REDIRECTS = 3


def recording_stream(call_sid: str, key: str) -> str:
    return f"recording:{call_sid}:{key}"


class Voicemail:
    def __init__(self, *, runner: CallRunner, calls: Calls, store, engine_name: str):
        self.runner = runner
        self.calls = calls
        self.store = store
        self.engine_name = engine_name  # GATEWAY_TRANSCRIPTION

    # -- the Record is over (Twilio's action, or the Redirect after an empty recording) -----
    def done(self, twilio: Mapping[str, str], key: str) -> str:
        call_sid = twilio.get("CallSid", "")
        deadline = time.monotonic() + self.runner.budget
        # Twilio requests a Record's action even after the caller hung up (record page).
        call, app = self.runner.load(call_sid, ended_ok=True)
        settings = call.records.get(key)
        if settings is None or settings.get("answered"):
            if call.ended:
                raise ReplayedRequest(call_sid, None, f"Record {key!r} of an ended call "
                                      "reported again, or never served: refused")
            if settings is not None:
                raise ReplayedRequest(call_sid, None, f"Record {key!r} already reported: "
                                      "refused (a replay, or a late duplicate)")
            log.warning("call %s: Record %r is not one the gateway knows; going on", call_sid,
                        key)
            return self.runner.continue_document(call, app, deadline)
        reserved = self.calls.claim_record_action(call_sid, key, ended=call.ended)
        settings["answered"] = True  # also in this copy, which the runner may save

        def in_order(request: dict | None) -> None:
            """The action in the background: in the place kept for it before the hangup
            request if the call's end came first, else next in the call's outbox."""
            stream = call_stream(call_sid)
            if reserved is not None:
                if request is None:
                    deliveries.release_number(self.store, stream, reserved)
                else:
                    deliveries.enqueue(self.store, stream, reserved, request)
            elif request is not None:
                deliveries.enqueue_next(self.store, stream, request)

        hung_up = (call.ended or twilio.get("CallStatus") in FINAL_CALL_STATUSES
                   or twilio.get("Digits") == "hangup")
        recording = action_recording(twilio, settings["file_format"], int(time.time() * 1000))
        if not twilio.get("RecordingUrl"):
            log.info("call %s: Record %s ended with no recording (nothing said?)", call_sid, key)
        params = {**call.params, "CallStatus": "completed" if hung_up else "in-progress",
                  **recording}
        action = settings.get("action")
        if hung_up:
            # The voicemail of a caller who hung up: still the app's to have.
            in_order({"url": action, "method": settings["method"], "app": app.name,
                      "kind": "action", "params": params} if action else None)
            return EMPTY_TWIML
        if not action or settings["redirect"]:
            in_order(None)  # a place kept for it (a late hangup report) is not needed
        if not action:
            return self.runner.continue_document(call, app, deadline)
        return follow_action(
            self.runner, call, app, url=action, method=settings["method"], params=params,
            redirect=settings["redirect"], deadline=deadline, send_in_background=in_order)

    # -- the file is ready, or will never be ------------------------------------------------
    def status(self, event: Mapping[str, str]) -> str:
        call_sid, key = event.get("CallSid", ""), event.get("rec", "")
        state = event.get("RecordingStatus", "")
        if state not in ("completed", "absent", "failed"):
            return "not-needed"
        seen = f"seen:recording:{event.get('RecordingSid') or call_sid + key}:{state}"
        if not self.store.put_if_absent(seen, {"at": time.time()}, SEEN_TTL):
            return "duplicate"
        try:
            return self._recorded(call_sid, key, event)
        except Exception:
            self.store.delete(seen)  # processed again when spooled or resent
            raise

    def _recorded(self, call_sid: str, key: str, event: Mapping[str, str]) -> str:
        call = self.calls.get(call_sid)
        settings = call.records.get(key) if call else None
        if call is None or settings is None:
            log.warning("recording %s of call %s (Record %r): no such Record known; nothing "
                        "sent", event.get("RecordingSid", "-"), call_sid, key)
            return "unknown"
        stream = recording_stream(call_sid, key)
        if event.get("RecordingStatus") != "completed":
            log.warning("call %s: recording %s %s (error %s)", call_sid,
                        event.get("RecordingSid", "-"), event.get("RecordingStatus"),
                        event.get("ErrorCode", "-"))
        if settings.get("callback_url"):
            deliveries.enqueue_next(self.store, stream, {
                "url": settings["callback_url"], "method": settings["callback_method"],
                "app": call.app, "kind": "record",
                "params": {**call.params, "CallStatus": "completed" if call.ended
                           else "in-progress",
                           **callback_recording(event, settings["file_format"])}})
        if settings.get("transcription_url"):
            # Twilio transcribes only <Record> recordings of at most two minutes; a longer one
            # (or a session recording) goes to the embedded engine.
            twilio_will = (self.engine_name == "twilio" and settings.get("kind") == "here"
                           and seconds_of(event.get("RecordingDuration")) <= TWILIO_MAX_SECONDS)
            transcribe_later(self.store, stream, event, url=settings["transcription_url"],
                             method=settings.get("transcription_method", "POST"),
                             app=call.app, call_uuid=call.call_uuid, twilio_will=twilio_will)
        return "recorded"

    # -- Twilio's own transcription ------------------------------------------------------------
    def twilio_transcription(self, event: Mapping[str, str]) -> str:
        call_sid, key = event.get("CallSid", ""), event.get("rec", "")
        seen = f"seen:transcription:{event.get('TranscriptionSid') or call_sid + key}"
        if not self.store.put_if_absent(seen, {"at": time.time()}, SEEN_TTL):
            return "duplicate"
        if self.store.get(transcribing_key(event.get("RecordingSid", ""))) is not None:
            return "transcribed-here"  # the embedded engine has it (a recording over 2 min)
        call = self.calls.get(call_sid)
        settings = call.records.get(key) if call else None
        if call is None or settings is None or not settings.get("transcription_url"):
            log.warning("transcription for call %s (Record %r): nothing to send it to",
                        call_sid, key)
            return "unknown"
        ok = event.get("TranscriptionStatus") == "completed"
        params = plivo_transcription(
            text=event.get("TranscriptionText", ""), duration=0, call_uuid=call.call_uuid,
            recording_id=event.get("RecordingSid", ""),
            error="" if ok else "Transcription failed (Twilio "
            f"{event.get('TranscriptionStatus') or 'status missing'})")
        deliveries.enqueue_next(self.store, recording_stream(call_sid, key), {
            "url": settings["transcription_url"],
            "method": settings.get("transcription_method", "POST"), "app": call.app,
            "kind": "transcription", "params": params})
        return "transcribed"


def transcribe_later(store, stream: str, event: Mapping[str, str], *, url: str, method: str,
                     app: str, call_uuid: str, twilio_will: bool = False) -> None:
    """For a recording Twilio reports (Record's or a conference's): the embedded engine's job,
    or Plivo's error form at once if there is nothing to hear. With Twilio transcribing, its
    callback sends the result (`Voicemail.twilio_transcription`)."""
    reason = failure_reason(event)
    request = {"url": url, "method": method, "app": app, "kind": "transcription"}
    base = {"duration": seconds_of(event.get("RecordingDuration")), "call_uuid": call_uuid,
            "recording_id": event.get("RecordingSid", "")}
    if reason:
        deliveries.enqueue_next(store, stream, {**request, "params": plivo_transcription(
            text="", error=reason, **base)})
        return
    if twilio_will:
        return
    store.put(transcribing_key(base["recording_id"]), {"at": time.time()}, SEEN_TTL)
    jobs.schedule("transcribe", {"stream": stream, "request": request, "base": base,
                                 "media_url": event.get("RecordingUrl", "") + ".wav"},
                  store=store)


def transcribing_key(recording_sid: str) -> str:
    """Set while the embedded engine transcribes a recording: Twilio's own result, if it sends
    one anyway, is then not sent to the app a second time."""
    return f"transcribing:{recording_sid}"


def fetch_media(url: str, *, account_sid: str, auth_token: str, api_host: str,
                timeout: float = FETCH_TIMEOUT) -> bytes:
    """A recording's file from Twilio (HTTP Basic auth, as Twilio requires on media URLs).
    Only from Twilio's API host: the credentials never go anywhere else. Twilio may redirect to
    its storage; urllib3 drops the Authorization header on a redirect to another host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != api_host:
        raise TranscriptionFailed(f"Recording URL is not on Twilio's API host ({api_host})")
    headers = urllib3.make_headers(basic_auth=f"{account_sid}:{auth_token}")
    try:
        response = urllib3.request(
            "GET", url, headers=headers, timeout=timeout, preload_content=False,
            retries=urllib3.Retry(total=MEDIA_REDIRECTS, connect=1, read=0,
                                  redirect=MEDIA_REDIRECTS))
        data = response.read(MAX_BYTES + 1)
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise TranscriptionFailed(f"Recording could not be fetched: {type(exc).__name__}") \
            from None
    if response.status != 200:
        raise TranscriptionFailed(f"Recording could not be fetched: HTTP {response.status}")
    if len(data) > MAX_BYTES:
        raise TranscriptionFailed("Recording file size too large for transcription")
    return data


@jobs.handler("transcribe")
def transcribe_job(runtime, stream: str, request: dict, base: dict, media_url: str) -> None:
    """Fetch, transcribe (bounded), deliver: the app gets the text or Plivo's error form."""
    settings = runtime.settings
    api_host = urlsplit(settings.twilio_api_base_url or "https://api.twilio.com").hostname
    engine: EmbeddedEngine = runtime.transcriber
    try:
        audio = fetch_media(media_url, account_sid=settings.twilio_account_sid,
                            auth_token=settings.twilio_auth_token, api_host=api_host or "")
        text, error = engine.transcribe(audio), ""
    except TranscriptionFailed as exc:
        text, error = "", exc.reason
        log.warning("transcription for %s failed: %s", stream, exc.reason)
    except Exception:  # never retried forever: the app gets Plivo's error form
        log.exception("transcription for %s: internal error", stream)
        text, error = "", "Transcription failed"
    deliveries.enqueue_next(runtime.store, stream, {
        **request, "params": plivo_transcription(text=text, error=error, **base)})


@jobs.handler("record_call")
def record_call_job(runtime, call_sid: str, key: str) -> None:
    """recordSession: start Twilio's recording of the whole call (retried by the job queue
    while Twilio says the call is not in progress yet). The app's action, if any, is requested
    in the background once the recording runs, as the open-source Plivo engine does for a
    background recording: the file's URL and ID, with -1 for what is not known yet."""
    recording = runtime.twilio.start_call_recording(call_sid, runtime.urls.record_status(key))
    if recording is None:
        log.info("call %s: ended before its session recording could start", call_sid)
        return
    call = runtime.calls.get(call_sid)
    settings = call.records.get(key) if call else None
    if call is None or not settings or not settings.get("action"):
        return
    deliveries.enqueue_next(runtime.store, call_stream(call_sid), {
        "url": settings["action"], "method": settings["method"], "app": call.app,
        "kind": "action", "params": {
            **call.params, "CallStatus": "in-progress", "Digits": "",
            **session_recording(recording, settings["file_format"], int(time.time() * 1000))}})
