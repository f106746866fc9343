"""`<Record>` -> `<Record>` that reports to the gateway, or a background recording.

Recording the caller here (voicemail): Twilio's `<Record>` with Plivo's timeout (seconds of
silence), maxLength, finishOnKey and playBeep made explicit, `trim="do-not-trim"` (Plivo keeps
the silences; Twilio trims by default), its action back to the gateway (which turns Twilio's
parameters into Plivo's and requests the app's action, redirect true/false) and its recording
status callback to the gateway (Plivo's callbackUrl when the file is ready, and the
transcription). Twilio skips the action of an empty recording and runs the next verb, so a
`<Redirect>` to the same gateway URL follows: the app hears of that recording too.

`recordSession="true"`: the whole call from here on, through Twilio's call recordings (REST),
and the document goes on at once, as on Plivo. `startOnDialAnswer="true"`: kept for the next
`<Dial>` in the same stretch, which records from answer (`gateway.translate.dial`). Either way
nothing is played here.

Transcription (transcriptionUrl): Twilio's own (`transcribe`/`transcribeCallback`) when the
gateway runs with GATEWAY_TRANSCRIPTION=twilio, else the embedded engine after the recording is
ready (gateway.transcription).
"""

from __future__ import annotations

from dataclasses import fields

from ..plivoxml.elements import Record
from .builder import TwimlBuilder
from .outcome import Flow, RecordingBooked

RECORDING_EVENTS = "completed absent"
TWILIO_MAX_LENGTH = 14400  # seconds: Twilio records at most four hours (its call limit, too)


def record_settings(record: Record) -> tuple[tuple[str, object], ...]:
    """What the later callbacks need: the element's attributes, by model field name."""
    return tuple((f.name, getattr(record, f.name)) for f in fields(record) if f.name != "line")


def translate_record(record: Record, builder: TwimlBuilder) -> Flow:
    ctx = builder.context
    booked = sum(isinstance(e, RecordingBooked) for e in builder.effects)
    key = f"{ctx.step}-{booked}"
    if record.in_background:
        kind = "session" if record.record_session else "next-dial"
        builder.effects.append(RecordingBooked(key, kind, record_settings(record)))
        _report(record, builder)
        return Flow.CONTINUE
    attributes: dict[str, object] = {
        "action": ctx.urls.record_done(key),
        "method": "POST",
        "timeout": record.timeout,
        "maxLength": min(record.max_length, TWILIO_MAX_LENGTH),
        "finishOnKey": record.finish_on_key,
        "playBeep": record.play_beep,
        "trim": "do-not-trim",
        "recordingStatusCallback": ctx.urls.record_status(key),
        "recordingStatusCallbackMethod": "POST",
        "recordingStatusCallbackEvent": RECORDING_EVENTS,
    }
    if record.transcription_url and ctx.transcription == "twilio":
        attributes["transcribe"] = True
        attributes["transcribeCallback"] = ctx.urls.record_transcription(key)
    builder.response.record(**attributes)
    builder.response.redirect(ctx.urls.record_done(key), method="POST")
    builder.verbs += 1
    builder.effects.append(RecordingBooked(key, "here", record_settings(record)))
    _report(record, builder)
    return Flow.HANDBACK


def _report(r: Record, builder: TwimlBuilder) -> None:
    line = r.line

    def note(status: str, attribute: str, message: str) -> None:
        builder.note("Record", status, message, line=line, attribute=attribute)  # type: ignore[arg-type]

    if r.record_session:
        note("emulated", "recordSession", "the whole call from here on, through Twilio's call "
             "recordings (REST); the document goes on at once")
        if r.start_on_dial_answer:
            note("ignored", "startOnDialAnswer", "recordSession already records the call")
        note("translated", "maxLength", "a session recording runs until the call ends")
    elif r.start_on_dial_answer:
        note("translated", "startOnDialAnswer", "the next <Dial> records from answer (Twilio's "
             "record-from-answer); callbackUrl and transcription follow the recording")
    else:
        note("native", "timeout", f"{r.timeout} s of silence end the recording")
        if r.max_length > TWILIO_MAX_LENGTH:
            note("translated", "maxLength", f"{r.max_length} s is above Twilio's limit: capped "
                 f"at {TWILIO_MAX_LENGTH} s")
        if r.finish_on_key:
            note("native", "finishOnKey", f"the keys {r.finish_on_key} end the recording")
    note("translated", "fileFormat", f"RecordUrl ends in .{r.file_format} (Twilio serves both)")
    if r.action and r.record_session:
        note("emulated", "action", f"requested ({r.method}) in the background once the "
             "recording runs (RecordUrl, RecordingID; durations -1); its answer is ignored")
    elif r.action and r.start_on_dial_answer:
        note("not-yet", "action", "not requested for a recording started by a <Dial> "
             "(the Dial's own action is)")
    elif r.action:
        note("emulated", "action", f"requested ({r.method}) by the gateway with Plivo's "
             "recording parameters" + ("; its XML replaces the rest of the document"
                                       if r.redirect else
                                       "; its answer is ignored and the document goes on"))
    if r.callback_url:
        note("emulated", "callbackUrl", "sent by the gateway when Twilio reports the file ready")
    if r.transcription_url:
        engine = builder.context.transcription
        how = ("Twilio's transcription (transcribe/transcribeCallback)" if engine == "twilio"
               and not r.in_background else "the gateway's embedded engine (offline)")
        note("emulated", "transcriptionUrl", f"transcribed by {how}; Plivo's transcription "
             "parameters sent by the gateway")
        if r.transcription_type != "auto":
            note("translated", "transcriptionType", f"{r.transcription_type}: transcribed by "
                 "machine (no human check)")
    if r.record_channel_type == "stereo":
        note("translated", "recordChannelType", "stereo: Twilio records this call in mono")
