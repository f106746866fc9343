"""`<Dial>` with `<Number>`/`<User>` -> `<Dial action=gateway><Number|Sip>`: one forward, every
noun rung at once (Twilio: up to 10; the first to answer is connected, the others hung up).

Native on Twilio: timeout (Twilio's maximum 600 s), hangupOnStar, callerId, sendDigits on a
Number (`w` is half a second on both; Plivo's `W`, one second, becomes `ww`).
Always: the Dial's timeLimit is Plivo's (14400 s by default) capped by the gateway's
GATEWAY_MAX_CALL_SECONDS; the action returns to the gateway (`gateway.dial`), which sends Plivo's
action with DialStatus/DialRingStatus/DialHangupCause/DialALegUUID/DialBLegUUID.
Emulated: callbackUrl (each leg's status callback comes to the gateway, which sends Plivo's
DialAction=answer/connected/hangup); confirmSound+confirmKey and a User's sendDigits (the
noun's whisper `url` comes to the gateway, which plays the sound in a one-key Gather and hangs
that leg up without the key); sipHeaders (Twilio's SIP URI headers, named X-PH-<name> as Plivo
sends them); startOnDialAnswer of a Record just before (Twilio's record-from-answer).
Nearest: dialMusic `real` (answerOnBridge: the caller hears the far end's own ringing), a URL or
`none` (Twilio plays its ringback; it cannot play other audio while a Dial rings).
Emulated with a side stream: digitsMatch (the caller's keys during the forward). As for a room
member, `<Start><Stream>` of the caller's inbound audio before the Dial, named and signed with
the call's label for this step; the gateway's side-stream server hears the keys and sends
DialAction=digits (`gateway.dial.digits`); the TwiML after the Dial stops it.
digitsMatchBLeg the same way on the callee's leg: the whisper (`gateway.dial`) starts a stream of
the callee's audio, which goes on once the callee is connected.
"""

from __future__ import annotations

from urllib.parse import quote

from twilio.twiml.voice_response import Dial as TwilioDial

from ..mappings import host_allowed
from ..plivoxml.elements import Dial, Number, User
from .builder import TwimlBuilder
from .conference import has_side_stream, start_side_stream
from .outcome import ElementCannotRun, Flow, RecordingBooked

TWILIO_MAX_NOUNS = 10  # twilio.com/docs/voice/twiml/number: "up to ten <Number> nouns"
TWILIO_MAX_TIMEOUT = 600  # twilio.com/docs/voice/twiml/dial#timeout
LEG_EVENTS = "initiated ringing answered completed"
PLIVO_DEFAULT_TIME_LIMIT = 14400


def twilio_digits(digits: str) -> str:
    """Plivo's sendDigits for Twilio: W (one second) is two w's (half a second each)."""
    return digits.replace("W", "ww")


def sip_uri(user: User, dial: Dial) -> str:
    """The User's URI with Plivo's sipHeaders (the Dial's, then the User's) as Twilio's SIP URI
    headers, each named X-PH-<name> (the parser allows only letters and digits in them)."""
    headers = dict(dial.sip_headers)
    headers.update(user.sip_headers)
    if not headers:
        return user.body
    return user.body + "?" + "&".join(f"X-PH-{quote(k)}={quote(v)}" for k, v in headers.items())


def translate_dial(dial: Dial, builder: TwimlBuilder) -> Flow:
    ctx, line = builder.context, dial.line
    nouns = [c for c in dial.children if isinstance(c, Number | User)]
    if len(nouns) > TWILIO_MAX_NOUNS:
        raise ElementCannotRun("Dial", line, f"{len(nouns)} numbers and users: Twilio rings "
                               f"at most {TWILIO_MAX_NOUNS} at once")
    for noun in nouns:
        if isinstance(noun, User) and ctx.allowed_hosts is not None and not host_allowed(
                noun.host, ctx.allowed_hosts):
            raise ElementCannotRun("User", noun.line, f"SIP host {noun.host!r} is not in the "
                                   "app's allowed_hosts")
    if has_side_stream(dial.digits_match, dial.callback_url):
        start_side_stream(builder)  # only then: streams are billed, and only the app hears keys
    time_limit = min(dial.time_limit or PLIVO_DEFAULT_TIME_LIMIT, ctx.max_call_seconds)
    attributes: dict[str, object] = {
        "action": ctx.urls.dial_done(ctx.step), "method": "POST", "timeLimit": time_limit,
    }
    if dial.timeout is not None:
        attributes["timeout"] = min(dial.timeout, TWILIO_MAX_TIMEOUT)
    if dial.hangup_on_star:
        attributes["hangupOnStar"] = True
    if dial.caller_id and dial.caller_id != "none":
        attributes["callerId"] = dial.caller_id if dial.caller_id.startswith("+") else (
            "+" + dial.caller_id)
    if dial.dial_music == "real":
        attributes["answerOnBridge"] = True
    recording = _recording_from_answer(builder)
    if recording is not None:
        attributes.update({
            "record": "record-from-answer", "trim": "do-not-trim",
            "recordingStatusCallback": ctx.urls.record_status(recording.key),
            "recordingStatusCallbackMethod": "POST",
            "recordingStatusCallbackEvent": "completed absent",
        })
    twilio_dial = TwilioDial(**attributes)
    for leg, noun in enumerate(nouns):
        noun_attributes: dict[str, object] = {}
        whisper = dial.confirms or (isinstance(noun, User) and bool(noun.send_digits)) or bool(
            dial.digits_match_b_leg and dial.callback_url)
        if whisper:
            noun_attributes.update(url=ctx.urls.dial_whisper(ctx.step, leg), method="POST")
        if dial.callback_url:
            noun_attributes.update(statusCallback=ctx.urls.dial_events(ctx.step),
                                   statusCallbackEvent=LEG_EVENTS, statusCallbackMethod="POST")
        if isinstance(noun, Number):
            if noun.send_digits:
                noun_attributes["sendDigits"] = twilio_digits(noun.send_digits)
            twilio_dial.number(noun.e164, **noun_attributes)
        else:
            twilio_dial.sip(sip_uri(noun, dial), **noun_attributes)
    builder.response.append(twilio_dial)
    builder.verbs += 1
    _report(dial, nouns, builder, time_limit, recording)
    return Flow.HANDBACK


def _recording_from_answer(builder: TwimlBuilder) -> RecordingBooked | None:
    """A `<Record startOnDialAnswer>` earlier in this stretch: this Dial records from answer."""
    for effect in reversed(builder.effects):
        if isinstance(effect, RecordingBooked) and effect.kind == "next-dial":
            return effect
    return None


def _report(d: Dial, nouns: list, builder: TwimlBuilder, time_limit: int,
            recording: RecordingBooked | None) -> None:
    line = d.line

    def note(status: str, attribute: str | None, message: str, element: str = "Dial") -> None:
        builder.note(element, status, message, line=line, attribute=attribute)  # type: ignore[arg-type]

    numbers = sum(isinstance(n, Number) for n in nouns)
    note("translated", None, f"{numbers} number(s) and {len(nouns) - numbers} SIP user(s) rung "
         "at once; the first to answer is connected")
    note("translated", "timeLimit", f"{time_limit} s (Plivo's {d.time_limit or 14400} s, capped "
         "by GATEWAY_MAX_CALL_SECONDS)" if time_limit < (d.time_limit or 14400) else
         f"{time_limit} s")
    if d.timeout is None:
        note("translated", "timeout", "not set: Plivo rings as long as the network does; "
             "Twilio's default is 30 s")
    elif d.timeout > TWILIO_MAX_TIMEOUT:
        note("translated", "timeout", f"{d.timeout} s is above Twilio's maximum: "
             f"{TWILIO_MAX_TIMEOUT} s")
    if d.caller_id == "none":
        note("unsupported", "callerId", "none (an empty caller ID): Twilio always sends one; "
             "the caller's own is used")
    elif d.caller_id:
        note("native", "callerId", "must be a Twilio number or a verified caller ID on Twilio")
    if d.caller_name:
        note("unsupported", "callerName", "Twilio's <Dial> sets no caller name (the number's "
             "CNAM registration decides it)")
    if d.dial_music == "real":
        note("translated", "dialMusic", "real: answerOnBridge, the caller hears the far end's "
             "own ringing")
    elif d.dial_music == "none":
        note("unsupported", "dialMusic", "none: Twilio always plays a ringback tone while a "
             "Dial rings")
    elif d.dial_music:
        note("unsupported", "dialMusic", "a URL: Twilio cannot play other audio while a Dial "
             "rings; the caller hears Twilio's ringback tone (the nearest)")
    if d.action:
        note("emulated", "action", f"requested ({d.method}) by the gateway when the forward "
             "ends, with DialStatus, DialRingStatus, DialHangupCause, DialALegUUID, "
             "DialBLegUUID" + ("; its XML replaces the rest of the document" if d.redirect
                               else "; its answer is ignored and the document goes on"))
    if d.callback_url:
        note("emulated", "callbackUrl", "DialAction answer, connected and hangup sent by the "
             "gateway from each leg's Twilio status callback")
    if d.confirm_sound and d.confirm_key:
        note("emulated", "confirmKey", f"the callee hears confirmSound in a one-key Gather "
             f"(Twilio's whisper url) and must press {d.confirm_key} within "
             f"{d.confirm_timeout} s; otherwise that leg is hung up")
    elif d.confirm_sound or d.confirm_key:
        note("ignored", "confirmSound" if d.confirm_sound else "confirmKey", "needs both "
             "confirmSound and confirmKey, as on Plivo")
    if d.digits_match:
        note("emulated", "digitsMatch", f"patterns {','.join(d.digits_match)}: the caller's "
             "audio is streamed to the gateway (<Start><Stream>), which detects the keys and "
             "sends DialAction=digits to the callbackUrl"
             + ("" if d.callback_url else " (no callbackUrl: nothing to send, no stream)"))
    if d.digits_match_b_leg:
        note("emulated", "digitsMatchBLeg", f"patterns {','.join(d.digits_match_b_leg)}: the "
             "callee's audio is streamed to the gateway from its whisper url, which detects the "
             "keys and sends DialAction=digits (DialDigitsPressedBy=BLeg)"
             + ("" if d.callback_url else " (no callbackUrl: nothing to send, no stream)"))
    if recording is not None:
        note("translated", None, "the preceding <Record startOnDialAnswer> becomes Twilio's "
             "record-from-answer on this Dial")
    for noun in nouns:
        if noun.send_digits and noun.send_on_preanswer:
            builder.note(noun.TAG, "translated", "sendOnPreanswer: Twilio sends the digits "
                         "once the callee answers", line=noun.line, attribute="sendOnPreanswer")
        if isinstance(noun, User) and noun.send_digits:
            builder.note("User", "emulated", "sendDigits played to the callee by the whisper "
                         "url once it answers", line=noun.line, attribute="sendDigits")
    if d.sip_headers and numbers and numbers == len(nouns):
        note("ignored", "sipHeaders", "only a <User> (SIP) carries SIP headers")
