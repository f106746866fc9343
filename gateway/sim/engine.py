"""The simulated Twilio voice platform: calls executing TwiML, conference rooms, callbacks.

`Switchboard` runs on the engine thread (`loop.EventLoop`): every method here is called there,
so state needs no locks. HTTP happens on webhook workers, whose answers come back as posted
commands; each call carries an `epoch` that any interruption (hang-up, REST redirect, leaving a
room) increments, so that a late answer or timer for what the call was doing is ignored.

Where a rule comes from Twilio's documentation the page is cited next to it; choices made where
the documentation is silent are listed in docs/simulator.md.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .audio import CallerAudio, Tone, key_tones
from .conference import Participant, Recording, Room, recording_path, twilio_bool
from .errors import APPLICATION_ERROR_MESSAGE, FetchError, TwimlError, TwimlWarning
from .ids import new_sid, rfc2822, utc_now
from .loop import EventLoop, Timer
from .messages import SimMessage
from .playback import Playback, Player, Timing, document_from, sound_of
from .scenario import CalleeSpec, CallSpec, Scenario
from .streams import MediaStream, StreamConfig
from .transcript import Transcript
from .twiml import (
    Conference,
    Connect,
    Dial,
    DialNumber,
    Document,
    Gather,
    Hangup,
    Pause,
    Play,
    Record,
    Redirect,
    Reject,
    Say,
    Start,
    Stop,
    Stream,
)
from .webhooks import Deliveries, Reply, Request, Webhooks

API_VERSION = "2010-04-01"
COUNTRY_CODES = {"+1": "US", "+44": "GB", "+33": "FR", "+49": "DE", "+34": "ES", "+39": "IT",
                 "+31": "NL", "+61": "AU", "+91": "IN", "+81": "JP", "+55": "BR", "+52": "MX"}


@dataclass(frozen=True)
class Options:
    account_sid: str
    voice_url: str
    status_url: str | None
    timing: Timing = field(default_factory=Timing)
    api_base: str = ""  # the REST server's base URL, for RecordingUrl


@dataclass
class DialState:
    verb: Dial
    participant: Participant | None = None
    timer: Timer | None = None
    legs: list[Leg] = field(default_factory=list)  # the numbers and SIP users it rings
    bridged: Leg | None = None  # the leg connected to the caller


@dataclass(eq=False)
class Leg:
    """One number or SIP user a `<Dial>` rings: a child call of the caller's, played by the
    scenario's `[[callee]]` for that number (none: it rings until the Dial's timeout).
    state: ringing -> whisper (answered, its `url` TwiML running) -> bridged -> ended."""

    noun: DialNumber
    call: Call
    parent: Call
    callee: CalleeSpec | None
    state: str = "ringing"
    sequence: int = 0  # status callbacks sent so far (SequenceNumber)


# How long a callee that is busy, or that cannot be reached, takes to say so. Twilio's docs give
# no figure; half a second keeps runs short and still lets a leg's events come in order.
REFUSAL_DELAY = 0.5


@dataclass
class GatherState:
    verb: Gather
    digits: str = ""
    listening: bool = False
    speaking: bool = False  # the caller is saying something this Gather recognises
    sequence: int = 0       # partial results sent so far


# Speech recognition as the simulator plays it (docs/simulator.md, "Gather: speech"): each word
# takes SECONDS_PER_WORD to say; Twilio's speechTimeout="auto" is taken as AUTO_SPEECH_END of
# silence; results carry CONFIDENCE. SECONDS_PER_WORD matches the voice that speaks a caller's
# words into recordings (espeak-ng at 140 words a minute, about 0.39 s a word with its pauses):
# were it shorter, a <Record> would hear the caller stop before the rendered voice does, end on
# its silence timeout too early, and cut the last words out of the file.
SECONDS_PER_WORD = 0.4
AUTO_SPEECH_END = 1.0
CONFIDENCE = "0.92"
STABILITY = "0.8"


@dataclass
class RecordState:
    """A `<Record>` under way: when it started, when the caller's voice was first and last
    heard (engine clock), and its timers."""

    verb: Record
    recording: Recording
    started_at: float
    voice_from: float | None = None
    voice_to: float | None = None
    silence_timer: Timer | None = None
    max_timer: Timer | None = None


@dataclass(frozen=True)
class RecordingCallback:
    url: str
    method: str
    events: tuple[str, ...]


@dataclass
class Call:
    spec: CallSpec
    account_sid: str
    sid: str = field(default_factory=lambda: new_sid("CA"))
    token: str = field(default_factory=lambda: json.dumps(
        {"parentCallInfoToken": secrets.token_hex(24), "identityHeaderTokens": []}))
    status: str = "ringing"
    created: datetime = field(default_factory=utc_now)
    start_time: datetime | None = None
    end_time: datetime | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    ended: bool = False
    doc: Document | None = None
    pc: int = 0
    epoch: int = 0
    timer: Timer | None = None
    dial: DialState | None = None
    gather: GatherState | None = None
    participant: Participant | None = None
    media: Playback | None = None  # what the call hears while waiting or on hold
    streams: dict[str, MediaStream] = field(default_factory=dict)
    connect: tuple[Connect, str] | None = None  # the <Connect> running, and its stream's sid
    talking: bool = False
    tones: list[Tone] = field(default_factory=list)
    end_reason: str | None = None
    record: RecordState | None = None
    session_recordings: list[Recording] = field(default_factory=list)
    direction: str = "inbound"
    parent_sid: str | None = None  # a <Dial>'s child call: the caller's CallSid
    leg: Leg | None = None  # a <Dial>'s child call: what it is to the Dial

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def duration(self) -> int:
        if self.answered_at is None:
            return 0
        end = self.ended_at if self.ended_at is not None else self.answered_at
        return max(0, round(end - self.answered_at))


def utterance_seconds(text: str) -> float:
    """How long a scenario `say` lasts: SECONDS_PER_WORD a word, at least 0.5 s."""
    return max(0.5, len(text.split()) * SECONDS_PER_WORD)


def country_of(number: str) -> str:
    for prefix in sorted(COUNTRY_CODES, key=len, reverse=True):
        if number.startswith(prefix):
            return COUNTRY_CODES[prefix]
    return ""


class Switchboard:
    """Everything Twilio does for the calls of a run. Engine thread only."""

    def __init__(self, options: Options, loop: EventLoop, webhooks: Webhooks,
                 deliveries: Deliveries, transcript: Transcript):
        self.options = options
        self.loop = loop
        self.webhooks = webhooks
        self.deliveries = deliveries
        self.transcript = transcript
        self.calls: dict[str, Call] = {}  # by CallSid, every call of every run
        self.rooms: dict[tuple[str, str], Room] = {}  # live rooms by (account, name)
        self.rooms_by_sid: dict[str, Room] = {}  # every room, live or completed
        self.recordings: dict[str, Recording] = {}
        self.recording_callbacks: dict[str, RecordingCallback] = {}  # calls' recordings
        self.messages: dict[str, SimMessage] = {}  # SMS accepted by the REST API (messages.py)
        self.expected = 0  # calls of the current run not yet ended (or not yet arrived)
        self.stream_keys = "tones"  # what forked audio carries of key presses (scenario's)
        self.declined_dial = "no-answer"  # DialCallStatus after a declining whisper (scenario's)
        self.run_t0 = loop.clock()
        self.player = Player(loop, webhooks, lambda: self.transcript, options.timing)
        self.callees: dict[str, CalleeSpec] = {}  # the other ends of Dials, by number or URI

    # ---------------------------------------------------------------------------------------
    # The run

    def begin(self, scenario: Scenario, transcript: Transcript) -> None:
        self.transcript = transcript
        self.webhooks.transcript = transcript
        self.deliveries.configure(scenario.twilio.duplicate_events,
                                  scenario.twilio.reorder_events, scenario.twilio.seed)
        self.run_t0 = self.loop.clock()
        self.stream_keys = scenario.twilio.stream_keys
        self.declined_dial = scenario.twilio.declined_dial
        self.callees = {callee.number: callee for callee in scenario.callees}
        self.expected = len(scenario.calls)
        for spec in scenario.calls:
            self.loop.at(self.run_t0 + spec.at, self._arrive, spec)

    @property
    def done(self) -> bool:
        return self.expected == 0

    def end_all(self, reason: str) -> None:
        for call in list(self.calls.values()):
            if not call.ended:
                self._end_call(call, "completed", reason, cause="duration")
        self.expected = 0

    def _arrive(self, spec: CallSpec) -> None:
        call = Call(spec, self.options.account_sid)
        call.tones = key_tones([(k.at, k.digits) for k in spec.keys])
        self.calls[call.sid] = call
        self.transcript.record("call-start", call=call.name, call_sid=call.sid, **{
            "from": spec.from_, "to": spec.to})
        t0 = self.run_t0
        if spec.hangup_at is not None:
            self.loop.at(t0 + spec.hangup_at, self._caller_hangs_up, call)
        for tone in call.tones:
            self.loop.at(t0 + tone.start, self._key, call, tone.key)
        for speech in spec.speech:
            self.loop.at(t0 + speech.start, self._speech, call, True)
            self.loop.at(t0 + speech.end, self._speech, call, False)
        for utterance in spec.says:
            self.loop.at(t0 + utterance.at, self._utterance, call, utterance.text)
        self._fetch_document(call, self.options.voice_url, "POST", "voice")

    # ---------------------------------------------------------------------------------------
    # Parameters Twilio sends

    def call_params(self, call: Call, **extra: str) -> dict[str, str]:
        """The standard voice request parameters (https://www.twilio.com/docs/voice/twiml,
        "Twilio's request to your application"), geographic fields empty when unknown."""
        frm, to = call.spec.from_, call.spec.to
        params = {
            "AccountSid": call.account_sid, "ApiVersion": API_VERSION, "CallSid": call.sid,
            "CallStatus": call.status, "CallToken": call.token, "Called": to,
            "CalledCity": "", "CalledCountry": country_of(to), "CalledState": "", "CalledZip": "",
            "Caller": frm, "CallerCity": "", "CallerCountry": country_of(frm), "CallerState": "",
            "CallerZip": "", "Direction": call.direction, "From": frm, "FromCity": "",
            "FromCountry": country_of(frm), "FromState": "", "FromZip": "", "To": to,
            "ToCity": "", "ToCountry": country_of(to), "ToState": "", "ToZip": "",
        }
        if call.parent_sid:
            # A <Dial>'s child call names its parent (the call resource's ParentCallSid).
            params["ParentCallSid"] = call.parent_sid
        params.update(extra)
        return params

    # ---------------------------------------------------------------------------------------
    # Fetching and running documents

    def _fetch_document(self, call: Call, url: str, method: str, kind: str,
                        **extra: str) -> None:
        epoch = call.epoch
        request = Request(url, method, self.call_params(call, **extra), kind, call.name)
        self.webhooks.submit(request, lambda outcome: self.loop.post(
            self._document_arrived, call, epoch, request, outcome))

    def _document_arrived(self, call: Call, epoch: int, request: Request,
                          outcome: Reply | FetchError) -> None:
        if call.ended or call.epoch != epoch:
            return  # the call hung up or moved on while we waited
        if isinstance(outcome, FetchError):
            self._application_error(call, outcome.code, outcome.reason, request.url,
                                    request.kind)
            return
        if outcome.call_failed:
            # The server says this TwiML apologises for a call it could not serve: Twilio plays
            # it all the same; the run is marked failed (see transcript.py).
            self.transcript.record("call-failed", call=call.name, reason=outcome.call_failed,
                                   url=request.url, kind=request.kind)
        try:
            document = document_from(outcome, request.url)
        except TwimlError as exc:
            self._application_error(call, exc.code, exc.reason, request.url, request.kind,
                                    line=exc.line)
            return
        self._run_document(call, document)

    def _warn(self, call: Call | None, warning: TwimlWarning, url: str) -> None:
        self.transcript.record("warning", call=call.name if call else None, code=warning.code,
                               reason=warning.reason, url=url, line=warning.line)

    def _run_document(self, call: Call, document: Document) -> None:
        for warning in document.warnings:
            self._warn(call, warning, document.url)
        call.doc = document
        call.pc = 0
        self._step(call)

    def _step(self, call: Call) -> None:
        """Run the next verb; with none left, Twilio hangs up."""
        if call.ended:
            return
        call.timer = None
        if call.doc is None or call.pc >= len(call.doc.verbs):
            if call.leg is not None and call.leg.state == "whisper":
                # The whisper TwiML ran out: "the parties are connected" (Number page, url).
                self._bridge(call.leg)
                return
            self._end_call(call, "completed", "no more TwiML", cause="twiml")
            return
        verb = call.doc.verbs[call.pc]
        call.pc += 1
        if not isinstance(verb, Reject) and call.answered_at is None:
            self._answer(call)
        handler = getattr(self, "_verb_" + type(verb).__name__.lower())
        handler(call, verb)

    def _answer(self, call: Call) -> None:
        call.answered_at = self.loop.clock()
        call.start_time = utc_now()
        call.status = "in-progress"

    def _after(self, call: Call, seconds: float) -> None:
        """Go on with the next verb after `seconds` (the verb's playing time)."""
        epoch = call.epoch
        call.timer = self.loop.after(seconds, self._verb_done, call, epoch)

    def _verb_done(self, call: Call, epoch: int) -> None:
        if call.epoch == epoch and not call.ended:
            self._step(call)

    def _heard(self, call: Call, kind: str, detail: str, **more: Any) -> None:
        self.transcript.record("heard", call=call.name, kind=kind, detail=detail, **more)

    def _sound(self, call: Call, verb: Say | Play | Pause) -> float:
        """The caller hears the verb; returns how long it plays."""
        sound = sound_of(verb, self.options.timing)
        self._heard(call, sound.kind, sound.detail, **sound.more)
        return sound.seconds

    # --- verbs ------------------------------------------------------------------------------
    def _verb_say(self, call: Call, verb: Say | Play | Pause) -> None:
        self._after(call, self._sound(call, verb))

    _verb_play = _verb_pause = _verb_say

    def _verb_redirect(self, call: Call, verb: Redirect) -> None:
        self._fetch_document(call, verb.url, verb.method, "redirect")

    def _verb_hangup(self, call: Call, verb: Hangup) -> None:
        self._end_call(call, "completed", "<Hangup>", cause="twiml")

    def _verb_reject(self, call: Call, verb: Reject) -> None:
        # https://www.twilio.com/docs/voice/twiml/reject: as the first verb the call is never
        # answered and ends busy (reason=busy) or no-answer (reason=rejected).
        if call.answered_at is not None:
            self._end_call(call, "completed", "<Reject> after the call was answered",
                           cause="twiml")
            return
        status = "busy" if verb.reason == "busy" else "no-answer"
        self._end_call(call, status, f"<Reject reason={verb.reason}>", cause="twiml")

    def _verb_start(self, call: Call, verb: Start) -> None:
        for stream in verb.streams:
            self._open_stream(call, stream)
        self._step(call)  # <Start> does not block: Twilio goes straight on

    def _verb_connect(self, call: Call, verb: Connect) -> None:
        # https://www.twilio.com/docs/voice/twiml/connect and /docs/voice/twiml/stream: a
        # bidirectional stream blocks; when its socket closes Twilio requests the action URL,
        # or goes on with the next verb. Twilio allows one bidirectional stream per call.
        media = self._open_stream(call, verb.stream, bidirectional=True)
        if media is None:
            self._step(call)
            return
        call.connect = (verb, media.config.stream_sid)

    def _connect_over(self, call: Call, stream_sid: str) -> None:
        if call.connect is None or call.connect[1] != stream_sid or call.ended:
            return
        verb, _ = call.connect
        call.connect = None
        call.epoch += 1
        if verb.action:
            self._fetch_document(call, verb.action, verb.method, "action")
        else:
            self._step(call)

    def _verb_stop(self, call: Call, verb: Stop) -> None:
        for name in verb.stream_names:
            for stream in list(call.streams.values()):
                if name is None or stream.config.name == name:
                    stream.stop()
        self._step(call)

    def _verb_gather(self, call: Call, verb: Gather) -> None:
        call.gather = GatherState(verb)
        self._gather_prompt(call, 0, call.epoch)

    def _verb_dial(self, call: Call, verb: Dial) -> None:
        call.dial = DialState(verb)
        if isinstance(verb.target, DialNumber):
            # "The first call to pick up is connected to the current call and the rest are
            # hung up" (Number page): every noun rings at once.
            state = call.dial
            epoch = call.epoch
            if verb.record != "do-not-record":
                self._warn(call, TwimlWarning(12200, "<Dial record> is not simulated; no Dial "
                                              "recording is made", verb.line),
                           call.doc.url if call.doc else "")
            state.timer = self.loop.after(verb.timeout, self._dial_timeout, call, epoch)
            for noun in verb.legs:
                self._ring(call, state, noun)
            return
        if verb.record != "do-not-record":
            self._warn(call, TwimlWarning(12200, "<Dial record> is not simulated for a "
                                          "conference; no Dial recording is made", verb.line),
                       call.doc.url if call.doc else "")
        self._join(call, verb.target)

    # --- the other end of a <Dial> (numbers, SIP users) -----------------------------------------
    def _ring(self, call: Call, state: DialState, noun: DialNumber) -> None:
        # A SIP URI may carry headers (`?X-Name=value`, Sip page): the callee is the URI.
        address, _, headers = noun.target.partition("?")
        callee = self.callees.get(address)
        # callerId: "the caller's phone number is used by default" (Dial page, callerId).
        caller_id = state.verb.caller_id or call.spec.from_
        child = Call(CallSpec(f"{call.name}>{address}", caller_id, address),
                     call.account_sid, status="initiated", direction="outbound-dial",
                     parent_sid=call.sid)
        self.calls[child.sid] = child
        leg = child.leg = Leg(noun, child, call, callee)
        state.legs.append(leg)
        outcome = callee.outcome if callee else "no-answer"
        self.transcript.record("dial", call=call.name, noun=noun.noun, target=address,
                               headers=headers, leg=child.name, call_sid=child.sid,
                               detail=outcome)
        self._leg_event(leg, "initiated")
        if outcome in ("busy", "fails"):
            self.loop.after(REFUSAL_DELAY, self._leg_over, leg,
                            "busy" if outcome == "busy" else "failed")
            return
        child.status = "ringing"
        self._leg_event(leg, "ringing")
        if callee is not None and outcome == "answers":
            self.loop.after(callee.answers_after, self._leg_answers, leg)

    def _leg_event(self, leg: Leg, event: str) -> None:
        """A leg's status callback, for the events its noun asked for (Number page,
        statusCallbackEvent: initiated, ringing, answered -> in-progress, completed -> the
        final status, with CallDuration)."""
        noun = leg.noun
        if not noun.status_callback or event not in noun.status_callback_event:
            return
        leg.sequence += 1
        extra = {"CallbackSource": "call-progress-events", "SequenceNumber": str(
            leg.sequence - 1), "Timestamp": rfc2822(utc_now())}
        if event == "completed":
            extra.update(CallDuration=str(leg.call.duration))
        self.deliveries.deliver(leg.call.sid, Request(
            noun.status_callback, noun.status_callback_method,
            self.call_params(leg.call, **extra), "leg-status", leg.call.name,
            extra={"event": event}))

    def _leg_answers(self, leg: Leg) -> None:
        child, state = leg.call, leg.parent.dial
        if leg.state != "ringing" or child.ended or state is None or leg not in state.legs:
            return
        self._answer(child)
        self.transcript.record("dial", call=leg.parent.name, leg=child.name, detail="answered")
        self._leg_event(leg, "answered")
        callee = leg.callee
        assert callee is not None
        # The callee's keys, in scenario time (a stream forked from its leg carries them too).
        offset = self.loop.clock() - self.run_t0
        child.tones = key_tones([(offset + k.at, k.digits) for k in callee.keys])
        for tone in child.tones:
            self.loop.at(self.run_t0 + tone.start, self._key, child, tone.key)
        for utterance in callee.says:
            self.loop.after(utterance.at, self._utterance, child, utterance.text)
        if callee.hangup_after is not None:
            self.loop.after(callee.hangup_after, self._callee_hangs_up, leg)
        if leg.noun.url:
            # url: "a TwiML document that will run on the called party's end, after she
            # answers, but before the parties are connected" (Number page).
            leg.state = "whisper"
            self._fetch_document(child, leg.noun.url, leg.noun.method, "whisper")
        else:
            self._bridge(leg)

    def _bridge(self, leg: Leg) -> None:
        parent, child = leg.parent, leg.call
        state = parent.dial
        if child.ended:
            return
        if state is None or parent.ended or state.bridged is not None or leg not in state.legs:
            self._end_call(child, "completed", "nobody left to connect to", cause="twiml")
            return
        leg.state = "bridged"
        state.bridged = leg
        if state.timer is not None:
            state.timer.cancel()
        self.transcript.record("dial", call=parent.name, leg=child.name, detail="connected")
        if leg.noun.send_digits:
            # sendDigits: "play DTMF tones when the call is answered" (Number page).
            self._heard(child, "digits", leg.noun.send_digits)
        for other in state.legs:
            if other is not leg and other.state in ("ringing", "whisper"):
                self._leg_over(other, "canceled" if other.state == "ringing" else "completed")
        # timeLimit: "the maximum duration of the <Dial> in seconds" (Dial page).
        state.timer = self.loop.after(state.verb.time_limit, self._bridge_time_limit, parent,
                                      parent.epoch)

    def _bridge_time_limit(self, call: Call, epoch: int) -> None:
        state = call.dial
        if call.epoch == epoch and not call.ended and state is not None and state.bridged:
            self.transcript.record("dial", call=call.name, detail="timeLimit reached")
            self._finish_bridge(call, state.bridged)

    def _finish_bridge(self, call: Call, leg: Leg) -> None:
        """The bridged callee is gone (or hung up on): the Dial completed."""
        child = leg.call
        if not child.ended:
            self._end_call(child, "completed", "the caller's Dial ended", cause="twiml")
        self._finish_dial(call, "completed", True, DialCallSid=child.sid,
                          DialCallDuration=str(child.duration))

    def _callee_hangs_up(self, leg: Leg) -> None:
        if not leg.call.ended:
            self.transcript.record("hangup", call=leg.call.name, by="callee")
            self._end_call(leg.call, "completed", "callee hung up", cause="caller")

    def _leg_over(self, leg: Leg, status: str) -> None:
        """A leg that will not be (or stay) connected: busy, failed, no-answer, canceled."""
        if not leg.call.ended:
            self._end_call(leg.call, status, f"dial leg {status}", cause="twiml")

    def _leg_ended(self, leg: Leg) -> None:
        """The child call ended: its completed event, and what it means for the Dial."""
        was = leg.state
        leg.state = "ended"
        self._leg_event(leg, "completed")
        parent = leg.parent
        state = parent.dial
        if parent.ended or state is None or leg not in state.legs:
            return
        if was == "bridged":
            self._finish_bridge(parent, leg)
            return
        if state.bridged is not None or any(other.state != "ended" for other in state.legs):
            return
        # Every leg ended unanswered. Twilio's docs give DialCallStatus per call, not how
        # several legs combine; the simulator says busy or failed when every leg was, else
        # no-answer (a whisper that hung up counts as not answered: the docs are silent).
        statuses = {other.call.status for other in state.legs}
        status = statuses.pop() if len(statuses) == 1 and statuses <= {"busy", "failed"} \
            else "no-answer"
        if was == "whisper" and len(state.legs) == 1:
            status = self.declined_dial  # the docs are silent: the scenario chooses
        self._finish_dial(parent, status, False, DialCallSid=leg.call.sid,
                          DialCallDuration="0")

    def _dial_timeout(self, call: Call, epoch: int) -> None:
        """timeout: "how long to wait for the dialed party to answer" (Dial page): every leg
        still ringing is hung up as no-answer (a leg already answered, in its whisper, goes on)."""
        state = call.dial
        if call.epoch != epoch or call.ended or state is None or state.bridged is not None:
            return
        ringing = [leg for leg in state.legs if leg.state == "ringing"]
        if not state.legs:
            self._finish_dial(call, "no-answer", False, DialCallSid=new_sid("CA"),
                              DialCallDuration="0")
        for leg in ringing:
            self._leg_over(leg, "no-answer")

    def _finish_dial(self, call: Call, status: str, bridged: bool, **extra: str) -> None:
        """The <Dial> is over for a call still on the line: its action, or the next verb."""
        state = call.dial
        call.dial = None
        if state is None or call.ended:
            return
        if state.timer is not None:
            state.timer.cancel()
        for leg in state.legs:  # hangupOnStar, timeLimit: the callee is hung up too
            if leg.state != "ended":
                self._leg_over(leg, "canceled" if leg.state == "ringing" else "completed")
        call.epoch += 1
        verb = state.verb
        if verb.action:
            # https://www.twilio.com/docs/voice/twiml/dial#action: DialCallStatus and
            # DialBridged; a conference sends neither DialCallSid nor DialCallDuration.
            self._fetch_document(call, verb.action, verb.method, "action",
                                 DialCallStatus=status, DialBridged=twilio_bool(bridged),
                                 **extra)
        else:
            self._step(call)

    # --- Record (https://www.twilio.com/docs/voice/twiml/record) ------------------------------
    def _verb_record(self, call: Call, verb: Record) -> None:
        if verb.play_beep:
            self._heard(call, "beep", "record")
        now = self.loop.clock()
        recording = Recording(new_sid("RE"), None, now, utc_now(), call=call,
                              source="RecordVerb")
        state = call.record = RecordState(verb, recording, now)
        if verb.recording_status_callback:
            self.recording_callbacks[recording.sid] = RecordingCallback(
                verb.recording_status_callback, verb.recording_status_callback_method,
                verb.recording_status_callback_event)
        self.recordings[recording.sid] = recording
        self.transcript.record("recording", call=call.name, recording_sid=recording.sid,
                               status="in-progress", source="RecordVerb")
        self._call_recording_callback(recording)
        epoch = call.epoch
        # maxLength: "the maximum length for the recording in seconds".
        state.max_timer = self.loop.after(verb.max_length, self._record_over, call, epoch, "")
        if call.talking:
            state.voice_from = now
        else:
            self._record_silence(call)

    def _record_silence(self, call: Call) -> None:
        """timeout: "the number of seconds of silence" that ends the recording (0: never)."""
        state = call.record
        assert state is not None
        if state.silence_timer is not None:
            state.silence_timer.cancel()
            state.silence_timer = None
        if state.verb.timeout > 0:
            state.silence_timer = self.loop.after(state.verb.timeout, self._record_over, call,
                                                  call.epoch, "")

    def _record_voice(self, call: Call, talking: bool) -> None:
        state = call.record
        assert state is not None
        now = self.loop.clock()
        if talking:
            if state.silence_timer is not None:
                state.silence_timer.cancel()
                state.silence_timer = None
            if state.voice_from is None:
                state.voice_from = now
            state.voice_to = None
        else:
            state.voice_to = now
            self._record_silence(call)

    def _utterance_over(self, call: Call, state: RecordState) -> None:
        if not call.ended and call.record is state and not call.talking:
            self._record_voice(call, False)

    def _record_key(self, call: Call, key: str) -> None:
        state = call.record
        assert state is not None
        # finishOnKey: "a set of digits ... any one of which ends the recording"; other keys
        # are recorded like any sound.
        if key in state.verb.finish_on_key:
            self._record_over(call, call.epoch, key)

    def _finish_record(self, call: Call) -> Recording:
        """Stop the call's <Record>: its recording, completed, or absent if nothing was said."""
        state = call.record
        assert state is not None
        call.record = None
        for timer in (state.silence_timer, state.max_timer):
            if timer is not None:
                timer.cancel()
        now = self.loop.clock()
        recording, verb = state.recording, state.verb
        heard_until = state.voice_to if state.voice_to is not None else now
        if state.voice_from is None:
            seconds, base = 0.0, state.started_at
        elif verb.trim == "trim-silence":  # "trims leading and trailing silence"
            seconds, base = heard_until - state.voice_from, state.voice_from
        else:
            seconds, base = now - state.started_at, state.started_at
        self._close_recording(recording, call, base, seconds, heard=state.voice_from is not None)
        return recording

    def _close_recording(self, recording: Recording, call: Call, base: float, seconds: float,
                         *, heard: bool) -> None:
        recording.duration = max(1, round(seconds)) if heard else 0
        recording.ended = utc_now()
        # "absent": nothing was recorded (recordingStatusCallbackEvent values).
        recording.status = "completed" if heard else "absent"
        said = []
        spoken = [(s.start, s.end, s.text) for s in call.spec.speech] + [
            (u.at, u.at + utterance_seconds(u.text), u.text) for u in call.spec.says]
        for at, until, text in sorted(spoken):
            start, end = self.run_t0 + at - base, self.run_t0 + until - base
            if end > 0 and start < seconds:
                said.append((max(0.0, start), min(end, seconds), text))
        recording.speech = tuple(said)
        self.transcript.record("recording", call=call.name, recording_sid=recording.sid,
                               status=recording.status, duration=recording.duration,
                               source=recording.source)
        self._call_recording_callback(recording)

    def _record_over(self, call: Call, epoch: int, digits: str) -> None:
        if call.ended or call.epoch != epoch or call.record is None:
            return
        verb = call.record.verb
        recording = self._finish_record(call)
        call.epoch += 1
        if call.timer is not None:
            call.timer.cancel()
        if recording.status != "completed":
            # An empty recording: Twilio requests no action and goes on with the next verb.
            self._step(call)
            return
        url = verb.action or (call.doc.url if call.doc else self.options.voice_url)
        self._fetch_document(call, url, verb.method, "record", **self._record_params(
            recording, digits))
        if verb.transcribe:
            self._transcription(call, recording, verb)

    def _record_params(self, recording: Recording, digits: str) -> dict[str, str]:
        """The action's parameters (record page, "Request parameters")."""
        return {"RecordingUrl": f"{self.options.api_base}"
                f"{recording_path(recording.account_sid, recording.sid)}",
                "RecordingSid": recording.sid,
                "RecordingDuration": str(recording.duration or 0), "Digits": digits}

    def _recordings_end_with(self, call: Call) -> None:
        """The call ends: a <Record> under way stops, and Twilio still requests its action with
        Digits=hangup (its TwiML is not run); session recordings complete."""
        if call.record is not None:
            verb = call.record.verb
            recording = self._finish_record(call)
            if recording.status == "completed":
                url = verb.action or (call.doc.url if call.doc else self.options.voice_url)
                self.deliveries.deliver(call.sid, Request(
                    url, verb.method, self.call_params(call, **self._record_params(
                        recording, "hangup")), "record", call.name))
                if verb.transcribe:
                    self._transcription(call, recording, verb)
        now = self.loop.clock()
        for recording in call.session_recordings:
            if recording.status == "in-progress":
                seconds = now - recording.started_at
                self._close_recording(recording, call, recording.started_at, seconds,
                                      heard=seconds >= 0.5)

    def _call_recording_callback(self, recording: Recording) -> None:
        callback = self.recording_callbacks.get(recording.sid)
        if callback is None or recording.status not in callback.events:
            return
        self.deliveries.deliver(f"{recording.sid}:recording", Request(
            callback.url, callback.method, recording.callback_params(self.options.api_base),
            "recording", recording.call.name if recording.call else None,
            {"status": recording.status}), faults=True)

    def _transcription(self, call: Call, recording: Recording, verb: Record) -> None:
        """transcribe/transcribeCallback: the text (what the caller said, in the scenario),
        or TranscriptionStatus=failed when nothing was said in words or the recording is over
        Twilio's two-minute limit (recording-transcription page)."""
        text = " ".join(t for _, _, t in recording.speech if t)
        ok = bool(text) and (recording.duration or 0) <= 120
        self.transcript.record("transcription", call=call.name, recording_sid=recording.sid,
                               status="completed" if ok else "failed", text=text if ok else "")
        if not verb.transcribe_callback:
            return
        params = {"AccountSid": call.account_sid, "CallSid": call.sid,
                  "RecordingSid": recording.sid,
                  "RecordingUrl": self._record_params(recording, "")["RecordingUrl"],
                  "TranscriptionSid": new_sid("TR"),
                  "TranscriptionStatus": "completed" if ok else "failed",
                  "TranscriptionText": text if ok else "", "TranscriptionType": "fast"}
        params["TranscriptionUrl"] = (f"{self.options.api_base}/2010-04-01/Accounts/"
                                      f"{call.account_sid}/Transcriptions/"
                                      f"{params['TranscriptionSid']}")
        # Queued behind the recording's status callback: Twilio transcribes the finished file.
        self.deliveries.deliver(f"{recording.sid}:recording", Request(
            verb.transcribe_callback, "POST", params, "transcription", call.name))

    def start_call_recording(self, call: Call, callback: RecordingCallback | None
                             ) -> Recording:
        """REST: POST Calls/{sid}/Recordings.json records the call from now until it ends
        (call-recording resource); the caller checks the call is in progress."""
        recording = Recording(new_sid("RE"), None, self.loop.clock(), utc_now(), call=call,
                              source="StartCallRecordingAPI")
        self.recordings[recording.sid] = recording
        if callback is not None:
            self.recording_callbacks[recording.sid] = callback
        call.session_recordings.append(recording)
        self.transcript.record("recording", call=call.name, recording_sid=recording.sid,
                               status="in-progress", source=recording.source)
        self._call_recording_callback(recording)
        return recording

    # --- Gather ---------------------------------------------------------------------------------
    def _gather_prompt(self, call: Call, index: int, epoch: int) -> None:
        state = call.gather
        if call.ended or call.epoch != epoch or state is None or state.listening:
            return
        prompts = state.verb.prompts
        if index >= len(prompts):
            self._gather_listen(call)
            return
        seconds = self._sound(call, prompts[index])
        call.timer = self.loop.after(seconds, self._gather_prompt, call, index + 1, epoch)

    def _gather_listen(self, call: Call) -> None:
        state = call.gather
        assert state is not None
        state.listening = True
        if call.timer is not None:
            call.timer.cancel()
        call.timer = self.loop.after(state.verb.timeout, self._gather_timeout, call, call.epoch)

    def _gather_key(self, call: Call, key: str) -> None:
        state = call.gather
        assert state is not None
        verb = state.verb
        if not verb.dtmf or state.speaking:
            return  # input="speech" hears no keys; once speech is detected it is what counts
        if not state.listening:
            self._gather_listen(call)  # a key press interrupts the prompts (bargeIn)
        if verb.finish_on_key and key == verb.finish_on_key:
            self._gather_submit(call, key)
            return
        state.digits += key
        if verb.num_digits is not None and len(state.digits) >= verb.num_digits:
            self._gather_submit(call, "")
        else:
            self._gather_listen(call)  # the timeout runs again from the last key

    def _gather_timeout(self, call: Call, epoch: int) -> None:
        state = call.gather
        if call.ended or call.epoch != epoch or state is None:
            return
        if state.digits or state.verb.action_on_empty_result:
            self._gather_submit(call, "")
        else:
            call.gather = None
            self._step(call)  # no input: Twilio goes on with the next verb

    def _gather_submit(self, call: Call, finished_on_key: str, speech: str | None = None
                       ) -> None:
        state = call.gather
        assert state is not None
        call.gather = None
        if call.timer is not None:
            call.timer.cancel()
        call.epoch += 1
        url = state.verb.action or (call.doc.url if call.doc else self.options.voice_url)
        if speech is not None:
            # https://www.twilio.com/docs/voice/twiml/gather#action: "SpeechResult" (the
            # transcribed text) and "Confidence" (0.0-1.0) when speech was recognised.
            self._fetch_document(call, url, state.verb.method, "gather", SpeechResult=speech,
                                 Confidence=CONFIDENCE)
            return
        self._fetch_document(call, url, state.verb.method, "gather", Digits=state.digits,
                             FinishedOnKey=finished_on_key)

    # --- Gather: speech ---------------------------------------------------------------------
    def _utterance(self, call: Call, text: str) -> None:
        """The caller says `text`: a listening speech Gather recognises it word by word."""
        if call.ended:
            return
        self.transcript.record("said", call=call.name, text=text[:200])
        if call.record is not None:  # recorded, not recognised: <Record> is listening
            self._record_voice(call, True)
            self.loop.after(utterance_seconds(text), self._utterance_over, call, call.record)
            return
        state = call.gather
        if state is None or not state.verb.speech or state.speaking:
            return  # nobody is listening for speech: the words are lost, as on a phone
        if not state.listening:
            if not state.verb.barge_in:
                return  # bargeIn="false": nothing is heard until the prompts end
            self._gather_listen(call)  # speech interrupts the prompts (bargeIn, default true)
        if call.timer is not None:
            call.timer.cancel()  # no input timeout while the caller talks
        state.speaking = True
        words = text.split()
        epoch = call.epoch
        for count in range(1, len(words) + 1):
            self.loop.after(count * SECONDS_PER_WORD, self._partial_result, call, state, epoch,
                            words, count)
        talking = max(0.5, len(words) * SECONDS_PER_WORD)
        call.timer = self.loop.after(talking + self._speech_end(state.verb), self._speech_done,
                                     call, state, epoch, " ".join(words))

    @staticmethod
    def _speech_end(verb: Gather) -> float:
        # https://www.twilio.com/docs/voice/twiml/gather#speechtimeout: seconds of silence that
        # end speech; "auto" stops at a pause; absent, it is the value of `timeout`.
        if verb.speech_timeout is None:
            return float(verb.timeout)
        return AUTO_SPEECH_END if verb.speech_timeout == "auto" else float(verb.speech_timeout)

    def _partial_result(self, call: Call, state: GatherState, epoch: int, words: list[str],
                        count: int) -> None:
        if call.ended or call.epoch != epoch or call.gather is not state:
            return
        verb = state.verb
        if not verb.partial_result_callback:
            return
        # https://www.twilio.com/docs/voice/twiml/gather#partialresultcallback: requests as
        # speech is recognised, with UnstableSpeechResult, StableSpeechResult, Stability and
        # a SequenceNumber to order them.
        state.sequence += 1
        params = self.call_params(call, SequenceNumber=str(state.sequence),
                                  StableSpeechResult=" ".join(words[:count - 1]),
                                  UnstableSpeechResult=words[count - 1], Stability=STABILITY)
        self.deliveries.deliver(call.sid, Request(verb.partial_result_callback,
                                                  verb.partial_result_callback_method, params,
                                                  "partial", call.name))

    def _speech_done(self, call: Call, state: GatherState, epoch: int, text: str) -> None:
        if call.ended or call.epoch != epoch or call.gather is not state:
            return
        self._gather_submit(call, "", speech=text)

    # ---------------------------------------------------------------------------------------
    # Ending calls

    def _application_error(self, call: Call, code: int, reason: str, url: str, kind: str,
                            *, line: int | None = None) -> None:
        """Twilio's "application error": logged, apologised for, and the call hangs up."""
        self.transcript.record("error", call=call.name, code=code, reason=reason, url=url,
                               kind=kind, line=line)
        self._heard(call, "say", APPLICATION_ERROR_MESSAGE)
        self._end_call(call, "completed", f"application error {code}", cause="error")

    def _interrupt(self, call: Call) -> None:
        """Whatever the call was doing stops: its timers and pending answers become stale."""
        call.epoch += 1
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        call.gather = None
        self._stop_media(call)

    def _end_call(self, call: Call, status: str, reason: str, *, cause: str) -> None:
        if call.ended:
            return
        self._interrupt(call)
        call.ended = True
        call.ended_at = self.loop.clock()
        call.end_time = utc_now()
        call.status = status
        call.end_reason = reason
        self._recordings_end_with(call)
        state = call.dial
        call.dial = None
        if state is not None:
            if state.timer is not None:
                state.timer.cancel()
            participant = call.participant
            if participant is not None:
                left = "participant_updated_via_api" if cause == "api" else "participant_hung_up"
                self._leave(participant, left, status)
            legs = {}
            if state.bridged is not None:
                legs = {"DialCallSid": state.bridged.call.sid,
                        "DialCallDuration": str(state.bridged.call.duration)}
            for leg in state.legs:
                if leg.state != "ended":
                    self._leg_over(leg, "canceled" if leg.state == "ringing" else "completed")
            if state.verb.action:
                # Twilio requests the action "when the <Dial> call ends", the caller's hang-up
                # included (dial page); the TwiML it returns is not executed.
                bridged = participant.bridged if participant is not None else bool(legs)
                params = self.call_params(call, DialCallStatus="completed",
                                          DialBridged=twilio_bool(bridged), **legs)
                self.deliveries.deliver(call.sid, Request(state.verb.action, state.verb.method,
                                                          params, "action", call.name))
        for stream in list(call.streams.values()):
            stream.stop()
        self.transcript.record("call-end", call=call.name, call_sid=call.sid, status=status,
                               duration=call.duration, reason=reason)
        if call.leg is not None:  # a Dial's child call: its own callbacks, not the number's
            self._leg_ended(call.leg)
            return
        self._status_callback(call)
        self.expected = max(0, self.expected - 1)

    def _status_callback(self, call: Call) -> None:
        """The number's status callback at the end of the call (call resource page,
        "StatusCallback"): CallDuration in seconds, Duration in minutes, rounded up."""
        if not self.options.status_url:
            return
        params = self.call_params(
            call, CallDuration=str(call.duration), Duration=str(math.ceil(call.duration / 60)),
            Timestamp=rfc2822(call.end_time), CallbackSource="call-progress-events",
            SequenceNumber="0")
        self.deliveries.deliver(call.sid, Request(self.options.status_url, "POST", params,
                                                  "status", call.name))

    def _caller_hangs_up(self, call: Call) -> None:
        if not call.ended:
            self.transcript.record("hangup", call=call.name, by="caller")
            self._end_call(call, "completed", "caller hung up", cause="caller")

    # ---------------------------------------------------------------------------------------
    # Keys and speech from the scenario

    def _key(self, call: Call, key: str) -> None:
        if call.ended:
            return
        self.transcript.record("key", call=call.name, digit=key)
        if call.record is not None:
            self._record_key(call, key)
        elif call.gather is not None:
            self._gather_key(call, key)
        elif (key == "*" and call.dial is not None and call.dial.verb.hangup_on_star
              and call.dial.bridged is not None):
            # hangupOnStar: "lets the calling party hang up on the called party" (Dial page).
            self._finish_bridge(call, call.dial.bridged)
        elif (key == "*" and call.dial is not None and call.dial.verb.hangup_on_star
              and call.participant is not None):
            # hangupOnStar: "When calling a conference, the DialCallStatus will be answered"
            # (dial page); the caller leaves the room and the call goes on.
            participant = call.participant
            self._leave(participant, "participant_hung_up", "in-progress")
            self._finish_dial(call, "answered", participant.bridged)

    def _speech(self, call: Call, talking: bool) -> None:
        if call.ended:
            return
        call.talking = talking
        self.transcript.record("speech", call=call.name, state="start" if talking else "stop")
        if call.record is not None:
            self._record_voice(call, talking)
        if call.participant is not None:
            self._update_speaker(call.participant)

    def _update_speaker(self, participant: Participant) -> None:
        room = participant.room
        audible = (participant.call.talking and room.started and not participant.muted
                   and not participant.hold and participant.call.sid in room.participants)
        if audible != participant.speaking:
            participant.speaking = audible
            event = "participant-speech-start" if audible else "participant-speech-stop"
            self._emit(room, event, participant)

    # ---------------------------------------------------------------------------------------
    # Conference

    def _emit(self, room: Room, event: str, participant: Participant | None = None,
              **extra: str) -> None:
        """Record a conference event; POST it when the first participant subscribed to it."""
        self.transcript.record("conference", event=event, conference=room.friendly_name,
                               conference_sid=room.sid,
                               call=participant.call.name if participant else None,
                               **{k: v for k, v in extra.items() if v is not None})
        if not room.subscribed(event):
            return
        params = room.event_params(event)
        if participant is not None:
            params.update(participant.event_params())
        params.update({k: v for k, v in extra.items() if v is not None})
        request = Request(room.settings.status_callback or "", room.settings.status_callback_method,
                          params, "conference-event",
                          participant.call.name if participant else None,
                          {"event": event, "sequence": int(params["SequenceNumber"])})
        self.deliveries.deliver(room.sid, request, faults=True)

    def _join(self, call: Call, noun: Conference) -> None:
        key = (call.account_sid, noun.name)
        room = self.rooms.get(key)
        if room is None:
            room = Room(call.account_sid, noun.name, noun)
            self.rooms[key] = room
            self.rooms_by_sid[room.sid] = room
        if len(room.participants) >= room.max_participants:
            # Error 16020 "Conference is full": the participant is not added; the <Dial> is
            # over (DialCallStatus=failed to its action, or the next verb).
            self.transcript.record("warning", call=call.name, code=16020,
                                   reason=f"conference {noun.name!r} is full "
                                   f"({room.max_participants} participants)")
            self._finish_dial(call, "failed", False)
            return
        label = noun.participant_label
        if label is not None and room.find(label) is not None:
            # Conference page, participantLabel: a duplicate gives 16025 and the call goes on
            # with the next verb without joining.
            self.transcript.record("warning", call=call.name, code=16025,
                                   reason=f"participant label {label!r} is already in use")
            call.dial = None
            self._step(call)
            return
        participant = Participant(
            call=call, room=room, noun=noun, muted=noun.muted,
            start_conference_on_enter=noun.start_conference_on_enter,
            end_conference_on_exit=noun.end_conference_on_exit, beep=noun.beep,
            wait_url=noun.wait_url, wait_method=noun.wait_method, label=label,
            coaching=noun.coach is not None, call_sid_to_coach=noun.coach)
        room.participants[call.sid] = participant
        room.updated = utc_now()
        call.participant = participant
        assert call.dial is not None
        call.dial.participant = participant
        self._emit(room, "participant-join", participant)
        if room.should_start():
            self._start_room(room)
        elif room.started:
            participant.bridged = True
        else:
            self._wait(participant)
        if participant.beeps_on_enter:
            self._beep(room, "enter", skip=participant)
        self._update_speaker(participant)
        epoch = call.epoch
        call.dial.timer = self.loop.after(call.dial.verb.time_limit, self._time_limit, call,
                                          epoch)

    def _start_room(self, room: Room) -> None:
        room.started = True
        room.status = "in-progress"
        room.updated = utc_now()
        self._emit(room, "conference-start")
        for participant in room.participants.values():
            participant.bridged = True
            if not participant.hold:
                self._stop_media(participant.call)
        if room.settings.record == "record-from-start":
            self._start_recording(room)
        for participant in list(room.participants.values()):
            self._update_speaker(participant)

    def _beep(self, room: Room, which: str, *, skip: Participant | None = None) -> None:
        # "When participants join and leave, notification sounds are played to inform the
        # other participants" (conference page): the joiner does not hear its own entry beep.
        for other in room.participants.values():
            if other is not skip and not other.hold:
                self._heard(other.call, "beep", which)

    def _time_limit(self, call: Call, epoch: int) -> None:
        if call.ended or call.epoch != epoch or call.participant is None:
            return
        participant = call.participant
        self.transcript.record("dial", call=call.name, detail="timeLimit reached")
        self._leave(participant, "participant_hung_up", "in-progress")
        self._finish_dial(call, "answered", participant.bridged)

    def _leave(self, participant: Participant, reason: str, call_status: str, *,
               kicked: bool = False) -> None:
        """Take a participant out of its room (the caller decides what its call does next)."""
        room = participant.room
        call = participant.call
        if call.sid not in room.participants:
            return
        self._stop_media(call)
        if participant.speaking:
            participant.speaking = False
            self._emit(room, "participant-speech-stop", participant)
        del room.participants[call.sid]
        room.updated = utc_now()
        call.participant = None
        self._emit(room, "participant-leave", participant, ParticipantCallStatus=call_status,
                   ReasonParticipantLeft=reason)
        if room.ending:
            return
        how = "kicked" if kicked else "left"
        if participant.end_conference_on_exit:
            self._end_room(room, f"participant-with-end-conference-on-exit-{how}", participant)
        elif not room.participants:
            self._end_room(room, f"last-participant-{how}", participant)
        elif participant.beeps_on_exit:
            self._beep(room, "exit")

    def end_room(self, room: Room) -> None:
        """REST: Status=completed on the conference."""
        self._end_room(room, "conference-ended-via-api", None)

    def _end_room(self, room: Room, reason: str, ending: Participant | None) -> None:
        room.ending = True
        # Gone at once: a call whose next verb dials the same name gets a new room.
        self.rooms.pop((room.account_sid, room.friendly_name), None)
        via_api = reason == "conference-ended-via-api"
        for participant in list(room.participants.values()):
            self._leave(participant,
                        "conference_ended_via_api" if via_api else "moderator_ended_conference",
                        "in-progress")
            # With the room gone, each call continues with its <Dial> action or next verb.
            self._finish_dial(participant.call, "answered", participant.bridged)
        self._stop_recording(room)
        room.status = "completed"
        room.updated = utc_now()
        room.reason_conference_ended = reason
        room.call_sid_ending_conference = ending.call.sid if ending else None
        texts = {
            "conference-ended-via-api": "Conference ended via API",
            "last-participant-left": "Last participant left",
            "last-participant-kicked": "Last participant was removed",
            "participant-with-end-conference-on-exit-left":
                "Participant with endConferenceOnExit left the conference",
            "participant-with-end-conference-on-exit-kicked":
                "Participant with endConferenceOnExit was removed from the conference",
        }
        self._emit(room, "conference-end", None, ReasonConferenceEnded=reason,
                   Reason=texts[reason],
                   CallSidEndingConference=ending.call.sid if ending else None,
                   ParticipantLabelEndingConference=ending.label if ending else None)

    # --- recordings ---------------------------------------------------------------------------
    def _start_recording(self, room: Room) -> None:
        recording = Recording(new_sid("RE"), room, self.loop.clock(), utc_now())
        room.recording = recording
        self.recordings[recording.sid] = recording
        self.transcript.record("recording", conference=room.friendly_name,
                               recording_sid=recording.sid, status="in-progress")
        self._recording_callback(room, recording)

    def _stop_recording(self, room: Room) -> None:
        recording = room.recording
        if recording is None or recording.status != "in-progress":
            return
        recording.duration = round(self.loop.clock() - recording.started_at)
        recording.ended = utc_now()
        # A recording with nothing in it is "absent" (recordingStatusCallbackEvent values).
        recording.status = "completed" if recording.duration > 0 else "absent"
        self.transcript.record("recording", conference=room.friendly_name,
                               recording_sid=recording.sid, status=recording.status,
                               duration=recording.duration)
        self._recording_callback(room, recording)

    def _recording_callback(self, room: Room, recording: Recording) -> None:
        settings = room.settings
        if (settings.recording_status_callback is None
                or recording.status not in settings.recording_status_callback_event):
            return
        params = recording.callback_params(self.options.api_base)
        self.deliveries.deliver(f"{room.sid}:recording", Request(
            settings.recording_status_callback, settings.recording_status_callback_method,
            params, "recording", None, {"status": recording.status}), faults=True)

    # --- what a participant hears: waitUrl, holdUrl, announcements ----------------------------
    def _stop_media(self, call: Call) -> None:
        if call.media is not None:
            call.media.stop()
            call.media = None

    def _wait(self, participant: Participant) -> None:
        """The waitUrl while the room has not started (conference page, waitUrl)."""
        call = participant.call
        self._stop_media(call)
        playback = call.media = Playback()
        url = participant.wait_url
        if url is None:
            self._heard(call, "wait", "default hold music")
        elif url == "":
            self._heard(call, "wait", "silence")
        else:
            self.player.play(playback, Request(url, participant.wait_method,
                                               self.call_params(call), "wait", call.name),
                             [call], "wait", lambda ok, why: None)

    def _hold_music(self, participant: Participant) -> None:
        call = participant.call
        self._stop_media(call)
        playback = call.media = Playback()
        if participant.hold_url is None:
            self._heard(call, "wait", "default hold music")
        elif participant.hold_url == "":
            self._heard(call, "wait", "silence")
        else:
            self.player.play(playback, Request(participant.hold_url, participant.hold_method,
                                               self.call_params(call), "hold", call.name),
                             [call], "wait", lambda ok, why: None)

    # ---------------------------------------------------------------------------------------
    # Operations the REST API performs (engine thread; rest.py validates parameters)

    def announce(self, room: Room, url: str, method: str,
                 participant: Participant | None = None) -> None:
        """AnnounceUrl on a conference (everyone hears it) or on one participant."""
        listeners = ([participant.call] if participant is not None
                     else [p.call for p in room.participants.values()])
        if participant is not None:
            params = self.call_params(participant.call, ConferenceSid=room.sid)
        else:
            params = {"AccountSid": room.account_sid, "ConferenceSid": room.sid,
                      "FriendlyName": room.friendly_name, "ApiVersion": API_VERSION}

        def finished(ok: bool, why: str) -> None:
            if room.status == "completed":
                return
            if participant is not None and participant.call.sid not in room.participants:
                return
            event = "announcement-end" if ok else "announcement-fail"
            extra = {"AnnounceUrl": url}
            if not ok:
                extra["ReasonAnnouncementFailed"] = why
            self._emit(room, event, participant, **extra)
        label = participant.call.name if participant else None
        self.player.play(Playback(), Request(url, method, params, "announce", label), listeners,
                         "announcement", finished)

    def update_participant(self, participant: Participant, changes: dict[str, Any]) -> None:
        room = participant.room
        participant.updated = utc_now()
        if "muted" in changes and changes["muted"] != participant.muted:
            participant.muted = changes["muted"]
            self._emit(room, "participant-mute" if participant.muted else "participant-unmute",
                       participant)
            self._update_speaker(participant)
        if "hold_url" in changes:
            participant.hold_url = changes["hold_url"]
        if "hold_method" in changes:
            participant.hold_method = changes["hold_method"]
        if "hold" in changes and changes["hold"] != participant.hold:
            participant.hold = changes["hold"]
            self._emit(room, "participant-hold" if participant.hold else "participant-unhold",
                       participant)
            if participant.hold:
                self._hold_music(participant)
            elif room.started:
                self._stop_media(participant.call)
            else:
                self._wait(participant)
            self._update_speaker(participant)
        modified = False
        for key in ("beep_on_exit", "end_conference_on_exit", "coaching", "call_sid_to_coach",
                    "wait_url", "wait_method"):
            if key not in changes:
                continue
            if key == "beep_on_exit":
                on_enter = participant.beeps_on_enter
                participant.beep = {(True, True): "true", (True, False): "onEnter",
                                    (False, True): "onExit", (False, False): "false"}[
                                        (on_enter, bool(changes[key]))]
            else:
                setattr(participant, key, changes[key])
            modified = True
        if modified:
            self._emit(room, "participant-modify", participant)
            if "wait_url" in changes and not room.started and not participant.hold:
                self._wait(participant)
        if "announce_url" in changes:
            self.announce(room, changes["announce_url"], changes.get("announce_method", "POST"),
                          participant)

    def kick(self, participant: Participant) -> None:
        """REST DELETE on a participant: out of the room; its call goes on after the Dial."""
        call = participant.call
        self._leave(participant, "participant_updated_via_api", "in-progress", kicked=True)
        self._finish_dial(call, "answered", participant.bridged)

    def end_call_via_api(self, call: Call, status: str) -> None:
        self._end_call(call, status, f"Status={status} via REST API", cause="api")

    def redirect_call(self, call: Call, *, url: str | None = None, method: str = "POST",
                      document: Document | None = None) -> None:
        """REST Url/Twiml update: the call leaves whatever it does (its Dial action is not
        requested) and runs the new TwiML."""
        if call.participant is not None:
            self._leave(call.participant, "participant_updated_via_api", "in-progress")
        if call.dial is not None and call.dial.timer is not None:
            call.dial.timer.cancel()
        call.dial = None
        self._interrupt(call)
        if call.answered_at is None:
            self._answer(call)
        if document is not None:
            self._run_document(call, document)
        else:
            assert url is not None
            self._fetch_document(call, url, method, "redirect")

    # ---------------------------------------------------------------------------------------
    # Media Streams

    def _open_stream(self, call: Call, stream: Stream, bidirectional: bool = False
                     ) -> MediaStream | None:
        names = {s.config.name for s in call.streams.values() if s.config.name}
        if stream.name and stream.name in names:
            self.transcript.record("warning", call=call.name, code=31900,
                                   reason=f"a stream named {stream.name!r} is already running")
            return None
        if len(call.streams) >= 4:
            self.transcript.record("warning", call=call.name, code=31900,
                                   reason="Twilio allows four unidirectional streams per call")
            return None
        if bidirectional and call.connect is not None:
            self.transcript.record("warning", call=call.name, code=31900,
                                   reason="Twilio allows one bidirectional stream per call")
            return None
        tracks = {"inbound_track": ("inbound",), "outbound_track": ("outbound",),
                  "both_tracks": ("inbound", "outbound")}[stream.track]
        config = StreamConfig(
            url=stream.url, stream_sid=new_sid("MZ"), name=stream.name,
            account_sid=call.account_sid, call_sid=call.sid, call_name=call.name,
            tracks=tracks, parameters=dict(stream.parameters),
            signature=self.webhooks.sign_url(stream.url), bidirectional=bidirectional)
        # Whether a fork keeps the key tones is not documented: the scenario chooses.
        keys_mode = self.stream_keys
        audio = CallerAudio(call.tones if keys_mode == "tones" else [],
                            [(s.start, s.end) for s in call.spec.speech],
                            seed=int(call.sid[2:10], 16))
        media = MediaStream(config, audio, self.run_t0, self.loop.clock, self.transcript,
                            lambda event, detail: self.loop.post(
                                self._stream_event, call, media, stream, event, detail),
                            # dtmf messages are documented for bidirectional streams
                            dtmf=tuple(call.tones) if keys_mode == "messages" or bidirectional
                            else ())
        call.streams[config.stream_sid] = media
        media.start()
        return media

    def _stream_event(self, call: Call, media: MediaStream, stream: Stream, event: str,
                      detail: str) -> None:
        """Stream thread reports: started | stopped | failed | closed (by the far end)."""
        if event == "failed":
            self.transcript.record("error", call=call.name, code=31920,
                                   reason=f"stream {media.config.stream_sid}: {detail}",
                                   url=stream.url, kind="stream")
        if event in ("stopped", "failed", "closed"):
            call.streams.pop(media.config.stream_sid, None)
            self._connect_over(call, media.config.stream_sid)
        if stream.status_callback is None:
            return
        status = {"started": "stream-started", "stopped": "stream-stopped",
                  "closed": "stream-stopped", "failed": "stream-error"}[event]
        params = {"AccountSid": call.account_sid, "CallSid": call.sid,
                  "StreamSid": media.config.stream_sid,
                  "StreamName": media.config.name or media.config.stream_sid,
                  "StreamEvent": status, "Timestamp": media.timestamp()}
        if event == "failed":
            params["StreamError"] = detail
        self.deliveries.deliver(f"{call.sid}:{media.config.stream_sid}", Request(
            stream.status_callback, stream.status_callback_method, params, "stream-status",
            call.name, {"event": status}))
