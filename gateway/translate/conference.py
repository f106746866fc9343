"""`<Conference>` -> `<Dial><Conference>`, Plivo's defaults made explicit where Twilio's differ.

Native on Twilio: muted, startConferenceOnEnter, endConferenceOnExit, maxMembers (as
maxParticipants, capped at Twilio's 250), record (record-from-start), hangupOnStar (on Dial).
Differences made explicit: Twilio beeps by default (Plivo does not: `beep` follows enterSound/
exitSound), Twilio plays hold music by default (Plivo is silent: `waitUrl=""` unless waitSound).
Always: the Dial's timeLimit is the gateway's cap on a call (GATEWAY_MAX_CALL_SECONDS, at most
Twilio's 4 h), the Dial action returns to the gateway (Plivo's action/redirect, the rest of the
document), and the room reports every event and its recording to the gateway, which turns them
into Plivo's callbacks from each member's own settings (Twilio keeps only the first
participant's statusCallback).
Emulated with a side stream: digitsMatch. Twilio reports no keys pressed in a room, so for a
member with digitsMatch (and only then: streams are billed) a `<Start><Stream>` before the Dial
forks the caller's inbound audio to the gateway, which hears the keys itself
(`gateway.media.server`). The stream is named after the member and carries the member's label and
an HMAC token (`gateway.media.tokens`) as `<Parameter>`s: Twilio allows no query string there.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, Start

from ..plivoxml.elements import Conference
from .builder import TwimlBuilder
from .outcome import Flow
from .rooms import twilio_room_name

TWILIO_MAX_PARTICIPANTS = 250
ALL_CONFERENCE_EVENTS = "start end join leave mute hold modify speaker announcement"
BEEPS = ("beep:1", "beep:2")


def twilio_beep(conference: Conference) -> str:
    enter = conference.enter_sound in BEEPS
    leave = conference.exit_sound in BEEPS
    return {(True, True): "true", (True, False): "onEnter", (False, True): "onExit",
            (False, False): "false"}[(enter, leave)]


def translate_conference(conference: Conference, builder: TwimlBuilder) -> Flow:
    ctx, line = builder.context, conference.line
    note = builder.note
    if conference.send_digits:
        # Sent to the caller's own line just before joining: Twilio's <Play digits>.
        builder.response.play(digits=conference.send_digits)
        note("Conference", "translated", "sendDigits played as DTMF before joining",
             line=line, attribute="sendDigits")
    if has_side_stream(conference.digits_match, conference.callback_url):
        start_side_stream(builder)
    # timeLimit: Twilio's cap on the member's call (4 h by default), written out so that it is
    # the gateway's setting (GATEWAY_MAX_CALL_SECONDS), not an unstated default.
    dial = Dial(action=ctx.urls.conference_left(ctx.step), method="POST",
                hangupOnStar=True if conference.hangup_on_star else None,
                timeLimit=ctx.max_call_seconds)
    max_participants = min(conference.max_members, TWILIO_MAX_PARTICIPANTS)
    if conference.max_members > TWILIO_MAX_PARTICIPANTS:
        note("Conference", "translated", f"maxMembers={conference.max_members} is above "
             f"Twilio's limit: capped at {TWILIO_MAX_PARTICIPANTS}", line=line,
             attribute="maxMembers")
    # Attribute names are given as Twilio spells them: twilio's builder would otherwise convert
    # each snake_case keyword (a measurable share of a translation); the TwiML is the same.
    attributes: dict[str, object] = {
        "muted": conference.muted,
        "beep": twilio_beep(conference),
        "startConferenceOnEnter": conference.start_conference_on_enter,
        "endConferenceOnExit": conference.end_conference_on_exit,
        "maxParticipants": max_participants,
        "waitUrl": ctx.urls.conference_wait(ctx.step) if conference.wait_sound else "",
        "statusCallback": ctx.urls.conference_events,
        "statusCallbackMethod": "POST",
        "statusCallbackEvent": ALL_CONFERENCE_EVENTS,
        "participantLabel": ctx.participant_label,
    }
    if conference.wait_sound:
        attributes["waitMethod"] = "POST"
    if conference.record:
        attributes.update({
            "record": "record-from-start",
            "trim": "do-not-trim",  # Plivo keeps the silences; Twilio trims them by default
            "recordingStatusCallback": ctx.urls.conference_recording,
            "recordingStatusCallbackMethod": "POST",
            "recordingStatusCallbackEvent": "in-progress completed",
        })
    dial.conference(twilio_room_name(ctx.account, conference.room), **attributes)
    builder.response.append(dial)
    builder.verbs += 1
    _report(conference, builder)
    return Flow.HANDBACK


def has_side_stream(digits_match, callback_url) -> bool:
    """A member gets a side stream only when its keys can be reported: digitsMatch patterns and
    a callbackUrl to send them to (streams are billed). The TwiML after its Dial stops it."""
    return bool(digits_match) and bool(callback_url)


def start_side_stream(builder: TwimlBuilder) -> None:
    """`<Start><Stream>` of the caller's inbound audio, named after the member (the TwiML after
    the Dial stops it by that name). A forward's digitsMatch uses it too (`translate.dial`)."""
    ctx = builder.context
    label = ctx.participant_label
    start = Start()
    stream = start.stream(name=label, url=ctx.urls.media_stream, track="inbound_track")
    stream.parameter(name="member", value=label)
    stream.parameter(name="token", value=ctx.token_for(label))
    builder.response.append(start)


def _report(c: Conference, builder: TwimlBuilder) -> None:
    """Say how each attribute the app set (or relies on) reaches Twilio."""
    line = c.line

    def note(status: str, attribute: str, message: str) -> None:
        builder.note("Conference", status, message, line=line, attribute=attribute)  # type: ignore[arg-type]

    note("translated", "room", "room scoped by the app's account: Twilio FriendlyName "
         f"{twilio_room_name(builder.context.account, c.room)}")
    if '">' in c.room or '="' in c.room:
        note("translated", "room", f"room text {c.room[:60]!r} looks like stray markup "
             "(a '>' closed the tag early?); used as written, as Plivo would")
    for attribute, value in (("enterSound", c.enter_sound), ("exitSound", c.exit_sound)):
        if value == "beep:2":
            note("translated", attribute, "beep:2 (double beep) becomes Twilio's single beep")
        elif value and value not in BEEPS:
            note("emulated", attribute, "sound URL fetched by the gateway and announced to the "
                 "room through Twilio's REST API")
    if c.wait_sound:
        note("emulated", "waitSound", "fetched by the gateway (POST), its Play/Speak/Wait "
             "translated and looped while the member waits")
    if not c.stay_alone:
        note("emulated", "stayAlone", "when the room drops to one member after having two, the "
             "gateway ends it through Twilio's REST API")
    if c.time_limit:
        note("emulated", "timeLimit", f"the gateway ends the room {c.time_limit} s after it "
             "starts (a durable timer and Twilio's REST API)")
    if c.record:
        note("native", "record", f"record-from-start; the gateway reports RecordUrl ending in "
             f".{c.record_file_format}")
    if c.action:
        note("emulated", "action", f"requested ({c.method}) by the gateway when the member "
             "leaves the room" + ("; its XML replaces the rest of the document" if c.redirect
                                  else "; its answer is ignored and the document goes on"))
    if c.callback_url:
        note("emulated", "callbackUrl", "enter/exit/floor/record callbacks sent by the gateway "
             "from Twilio's conference events")
    if c.floor_event:
        note("emulated", "floorEvent", "floor callbacks from Twilio's speaker events")
    if has_side_stream(c.digits_match, c.callback_url):
        note("emulated", "digitsMatch", f"patterns {','.join(c.digits_match)}: the caller's "
             "audio is streamed to the gateway (<Start><Stream>), which detects the keys and "
             "sends ConferenceAction=digits to the callbackUrl")
    elif c.digits_match:
        note("ignored", "digitsMatch", "no callbackUrl to send the digits to: no side stream "
             "is opened")
    if c.transcription_url:
        if c.record:
            note("emulated", "transcriptionUrl", "the room's recording transcribed by the "
                 "gateway's embedded engine (Twilio does not transcribe conference "
                 "recordings); Plivo's transcription parameters sent by the gateway")
        else:
            note("ignored", "transcriptionUrl", "record is false: nothing to transcribe")
        if c.transcription_type != "auto":
            note("translated", "transcriptionType", f"{c.transcription_type}: transcribed by "
                 "machine (no human check)")
    if c.record_when_alone == "true":
        note("unsupported", "recordWhenAlone", "Twilio records a conference only once two "
             "members are bridged")
    if not c.relay_dtmf:
        note("unsupported", "relayDTMF", "Twilio does not relay DTMF between conference "
             "members; relayDTMF=false is what happens anyway")
