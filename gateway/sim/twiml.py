"""TwiML in, a validated verb list out: what the simulator agrees to execute (pure, no I/O).

`parse_twiml(body, url)` turns a Voice document into a `Document` of typed verbs, resolving
relative URLs against the document's URL as Twilio does (an empty `<Redirect/>` means the document
itself). Anything Twilio would not run raises `TwimlError(code, reason, line)`: text that is not
well-formed XML (12100), a root other than `<Response>` (12102), an unknown verb or bad nesting
(12100), a bad attribute value (the verb's own 13xxx code). Unknown attributes are warnings (12200)
and are otherwise ignored, as Twilio does. `allowed=WAIT_VERBS` restricts a waitUrl, holdUrl or
announceUrl document to Play, Say, Pause and Redirect (anything else is 13238).

Attribute tables follow https://www.twilio.com/docs/voice/twiml/{say,play,pause,redirect,hangup,
reject,dial,conference,stream,gather,record}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree

from .errors import TwimlError, TwimlWarning
from .ids import CALL_SID

# --------------------------------------------------------------------------------------------
# The document model


@dataclass(frozen=True)
class Say:
    text: str
    voice: str = "man"
    language: str = "en-US"
    loop: int = 1
    line: int | None = None


@dataclass(frozen=True)
class Play:
    url: str | None
    loop: int = 1
    digits: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Pause:
    length: int = 1
    line: int | None = None


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"
    line: int | None = None


@dataclass(frozen=True)
class Hangup:
    line: int | None = None


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected"
    line: int | None = None


@dataclass(frozen=True)
class Conference:
    """The `<Conference>` noun. `wait_url`: None when absent (Twilio's music), "" = silence."""

    name: str
    muted: bool = False
    beep: str = "true"
    start_conference_on_enter: bool = True
    end_conference_on_exit: bool = False
    wait_url: str | None = None
    wait_method: str = "POST"
    max_participants: int = 250
    record: str = "do-not-record"
    trim: str = "trim-silence"
    coach: str | None = None
    participant_label: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_event: tuple[str, ...] = ()
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_event: tuple[str, ...] = ("completed",)
    jitter_buffer_size: str = "large"
    region: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class DialNumber:
    """`<Dial>` to a number, client or SIP address: rung as the scenario's `[[callee]]` says
    (https://www.twilio.com/docs/voice/twiml/number, .../sip): `url` is the whisper TwiML run
    on the callee's leg once it answers, `status_callback` gets the leg's progress events."""

    noun: str
    target: str
    line: int | None = None
    url: str | None = None
    method: str = "POST"
    send_digits: str = ""
    status_callback: str | None = None
    status_callback_method: str = "POST"
    # "completed" is the default event when a statusCallback is given (Number page).
    status_callback_event: tuple[str, ...] = ("completed",)


@dataclass(frozen=True)
class Dial:
    target: Conference | DialNumber  # a Conference, or the first of `legs`
    action: str | None = None
    method: str = "POST"
    hangup_on_star: bool = False
    time_limit: int = 14400
    timeout: int = 30
    caller_id: str | None = None
    record: str = "do-not-record"
    line: int | None = None
    legs: tuple[DialNumber, ...] = ()  # every number/SIP noun, rung at once


@dataclass(frozen=True)
class Stream:
    url: str
    name: str | None = None
    track: str = "inbound_track"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    parameters: tuple[tuple[str, str], ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class Start:
    streams: tuple[Stream, ...]
    line: int | None = None


@dataclass(frozen=True)
class Connect:
    """`<Connect action method><Stream/></Connect>`: a bidirectional stream; the TwiML after it
    (or its action URL) runs only when the stream's socket closes
    (https://www.twilio.com/docs/voice/twiml/connect, /docs/voice/twiml/stream)."""

    stream: Stream
    action: str | None = None
    method: str = "POST"
    line: int | None = None


@dataclass(frozen=True)
class Stop:
    """`<Stop><Stream name=…/></Stop>`; a nameless Stream stops every stream of the call."""

    stream_names: tuple[str | None, ...]
    line: int | None = None


@dataclass(frozen=True)
class Gather:
    prompts: tuple[Say | Play | Pause, ...]
    action: str | None = None
    method: str = "POST"
    timeout: int = 5
    num_digits: int | None = None
    finish_on_key: str = "#"
    action_on_empty_result: bool = False
    input: tuple[str, ...] = ("dtmf",)
    speech_timeout: str | None = None  # seconds, or "auto"; None: Twilio's default (timeout)
    language: str = "en-US"
    barge_in: bool = True
    partial_result_callback: str | None = None
    partial_result_callback_method: str = "POST"
    line: int | None = None

    @property
    def dtmf(self) -> bool:
        return "dtmf" in self.input

    @property
    def speech(self) -> bool:
        return "speech" in self.input


@dataclass(frozen=True)
class Record:
    """https://www.twilio.com/docs/voice/twiml/record: attributes and their defaults."""

    action: str | None = None
    method: str = "POST"
    timeout: int = 5  # seconds of silence that end the recording; 0: silence never does
    finish_on_key: str = "1234567890*#"
    max_length: int = 3600
    play_beep: bool = True
    trim: str = "trim-silence"
    recording_status_callback: str | None = None
    recording_status_callback_method: str = "POST"
    recording_status_callback_event: tuple[str, ...] = ("completed",)
    transcribe: bool = False
    transcribe_callback: str | None = None
    line: int | None = None


Verb = (Say | Play | Pause | Redirect | Hangup | Reject | Dial | Start | Stop | Gather | Record
        | Connect)


@dataclass(frozen=True)
class Document:
    url: str
    verbs: tuple[Verb, ...]
    warnings: tuple[TwimlWarning, ...] = field(default=())
    audio: bool = False  # the URL answered with an audio file, played as one <Play>


VOICE_VERBS = frozenset({"Say", "Play", "Pause", "Redirect", "Hangup", "Reject", "Dial", "Start",
                         "Stop", "Gather", "Record", "Connect"})
WAIT_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
# Real TwiML verbs the simulator does not execute: a document using them is reported, not run.
NOT_SIMULATED = frozenset({"Enqueue", "Leave", "Sms", "Message", "Pay",
                           "Prompt", "Refer", "Echo", "Queue"})
SSML_TAGS = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as",
                       "sub", "w", "amazon:effect", "amazon:domain"})

CONFERENCE_EVENTS = frozenset({"start", "end", "join", "leave", "mute", "hold", "modify",
                               "speaker", "announcement"})
RECORDING_EVENTS = frozenset({"in-progress", "completed", "absent"})

# --------------------------------------------------------------------------------------------
# Attribute value parsers: each returns the typed value or raises ValueError(reason).

Parser = Callable[[str, str], object]  # (raw value, document URL) -> value


def _bool(raw: str, _: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{raw!r} is not true or false")
    return lowered == "true"


def _method(raw: str, _: str) -> str:
    if raw.strip().upper() not in ("GET", "POST"):
        raise ValueError(f"{raw!r} is not GET or POST")
    return raw.strip().upper()


def _int(low: int, high: int | None = None) -> Parser:
    def parse(raw: str, _: str) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[0-9]+", text):
            raise ValueError(f"{raw!r} is not an integer")
        value = int(text)
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{value} is not {bound}")
        return value
    return parse


def _enum(*allowed: str) -> Parser:
    def parse(raw: str, _: str) -> str:
        if raw not in allowed:
            raise ValueError(f"{raw!r} is not one of {', '.join(allowed)}")
        return raw
    return parse


def resolve_url(raw: str, base: str, *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """Resolve a TwiML URL against the document URL; raise ValueError if it is not usable."""
    text = raw.strip()
    if not text:
        raise ValueError("the URL is empty")
    absolute = urljoin(base, text)
    parts = urlsplit(absolute)
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError(f"{raw!r} is not a {'/'.join(schemes)} URL")
    return absolute


def _url(raw: str, base: str) -> str:
    return resolve_url(raw, base)


def _url_or_empty(raw: str, base: str) -> str:
    return "" if raw.strip() == "" else resolve_url(raw, base)


def _events(allowed: frozenset[str]) -> Parser:
    def parse(raw: str, _: str) -> tuple[str, ...]:
        tokens = raw.split()
        unknown = [t for t in tokens if t not in allowed]
        if unknown:
            raise ValueError(f"unknown event(s) {', '.join(unknown)}; allowed: "
                             f"{' '.join(sorted(allowed))}")
        return tuple(dict.fromkeys(tokens))
    return parse


def _text(max_len: int) -> Parser:
    def parse(raw: str, _: str) -> str:
        if len(raw) > max_len:
            raise ValueError(f"longer than {max_len} characters")
        return raw
    return parse


def _voice(raw: str, _: str) -> str:
    if raw in ("man", "woman", "alice") or re.fullmatch(r"(Polly|Google)\.[A-Za-z0-9_.-]+", raw):
        return raw
    raise ValueError(f"{raw!r} is not man, woman, alice, Polly.* or Google.*")


def _language(raw: str, _: str) -> str:
    if re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", raw):
        return raw
    raise ValueError(f"{raw!r} is not a language tag such as en-US")


def _digits(raw: str, _: str) -> str:
    if re.fullmatch(r"[0-9*#wWA-Da-d]+", raw):
        return raw
    raise ValueError(f"{raw!r} may only hold 0-9, *, #, A-D and w")


def _label(raw: str, _: str) -> str:
    if not raw or len(raw) > 128 or "/" in raw or CALL_SID.match(raw):
        raise ValueError("a label has 1 to 128 characters, no '/', and is not a Call SID")
    return raw


def _call_sid(raw: str, _: str) -> str:
    if not CALL_SID.match(raw):
        raise ValueError(f"{raw!r} is not a Call SID")
    return raw


def _stream_url(raw: str, base: str) -> str:
    # Twilio requires wss://; the simulator also allows ws:// so that tests need no TLS.
    return resolve_url(raw, base.replace("http", "ws", 1), schemes=("ws", "wss"))


def _keys(raw: str, _: str) -> str:
    if re.fullmatch(r"[0-9*#]*", raw):
        return raw
    raise ValueError(f"{raw!r} may only hold the keys 0-9, * and #")


def _finish_on_key(raw: str, _: str) -> str:
    if raw == "" or re.fullmatch(r"[0-9*#]", raw):
        return raw
    raise ValueError(f"{raw!r} is not one key (0-9, * or #) or empty")


def _inputs(raw: str, _: str) -> tuple[str, ...]:
    # https://www.twilio.com/docs/voice/twiml/gather#input: dtmf, speech or both, space-separated
    tokens = raw.split()
    if not tokens or any(t not in ("dtmf", "speech") for t in tokens) or len(set(tokens)) < len(
            tokens):
        raise ValueError(f"{raw!r} is not dtmf, speech or 'dtmf speech'")
    return tuple(tokens)


def _speech_timeout(raw: str, _: str) -> str:
    # https://www.twilio.com/docs/voice/twiml/gather#speechtimeout: a positive integer or "auto"
    if raw == "auto" or re.fullmatch(r"[1-9][0-9]{0,2}", raw):
        return raw
    raise ValueError(f"{raw!r} is not a whole number of seconds or auto")


# attribute -> (python field, parser, error code)
Spec = dict[str, tuple[str, Parser, int]]

SAY: Spec = {"voice": ("voice", _voice, 13511), "language": ("language", _language, 13512),
             "loop": ("loop", _int(0), 13510)}
PLAY: Spec = {"loop": ("loop", _int(0), 13410), "digits": ("digits", _digits, 13430)}
PAUSE: Spec = {"length": ("length", _int(1), 13910)}
REDIRECT: Spec = {"method": ("method", _method, 13710)}
HANGUP: Spec = {}
REJECT: Spec = {"reason": ("reason", _enum("rejected", "busy"), 13810)}
DIAL: Spec = {
    "action": ("action", _url, 11100),
    "method": ("method", _method, 13210),
    "hangupOnStar": ("hangup_on_star", _bool, 13213),
    "timeLimit": ("time_limit", _int(1), 13216),
    "timeout": ("timeout", _int(1, 600), 13212),
    "callerId": ("caller_id", _text(255), 13214),
    "record": ("record", _enum("do-not-record", "record-from-answer", "record-from-ringing",
                               "record-from-answer-dual", "record-from-ringing-dual", "true",
                               "false"), 13217),
    "trim": ("", _enum("trim-silence", "do-not-trim"), 13217),
    "answerOnBridge": ("", _bool, 13219),
    "recordingStatusCallback": ("", _url, 13256),
    "recordingStatusCallbackMethod": ("", _method, 13210),
    "recordingStatusCallbackEvent": ("", _events(RECORDING_EVENTS), 13621),
    "recordingTrack": ("", _enum("inbound", "outbound", "both"), 13217),
    "ringTone": ("", _text(16), 13220),
    "sequential": ("", _bool, 13218),
    "referUrl": ("", _url, 11100),
    "referMethod": ("", _method, 13210),
}
LEG_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
# <Number> and <Sip> attributes the simulator runs (Number and Sip pages); the others
# (byoc, machineDetection..., username/password) are accepted and not simulated.
NOUN: Spec = {
    "url": ("url", _url, 11100),
    "method": ("method", _method, 13210),
    "sendDigits": ("send_digits", _digits, 13223),
    "statusCallback": ("status_callback", _url, 11100),
    "statusCallbackMethod": ("status_callback_method", _method, 13210),
    "statusCallbackEvent": ("status_callback_event", _events(LEG_EVENTS), 13224),
    "byoc": ("", _text(34), 13225),
    "username": ("", _text(255), 13225),
    "password": ("", _text(255), 13225),
}
MAX_NOUNS = 10  # "up to ten <Number> nouns within a <Dial>" (Number page)
CONFERENCE: Spec = {
    "muted": ("muted", _bool, 13230),
    "beep": ("beep", _enum("true", "false", "onEnter", "onExit"), 13235),
    "startConferenceOnEnter": ("start_conference_on_enter", _bool, 13232),
    "endConferenceOnExit": ("end_conference_on_exit", _bool, 13231),
    "waitUrl": ("wait_url", _url_or_empty, 13233),
    "waitMethod": ("wait_method", _method, 13234),
    # "positive integer <= 250" (twilio.com/docs/voice/twiml/conference#maxparticipants): 1 too.
    "maxParticipants": ("max_participants", _int(1, 250), 16002),
    "record": ("record", _enum("do-not-record", "record-from-start"), 16002),
    "trim": ("trim", _enum("trim-silence", "do-not-trim"), 13239),
    "coach": ("coach", _call_sid, 13240),
    "participantLabel": ("participant_label", _label, 16023),
    "statusCallback": ("status_callback", _url, 11100),
    "statusCallbackMethod": ("status_callback_method", _method, 16002),
    "statusCallbackEvent": ("status_callback_event", _events(CONFERENCE_EVENTS), 16002),
    "recordingStatusCallback": ("recording_status_callback", _url, 13256),
    "recordingStatusCallbackMethod": ("recording_status_callback_method", _method, 16002),
    "recordingStatusCallbackEvent": ("recording_status_callback_event",
                                     _events(RECORDING_EVENTS), 13621),
    "jitterBufferSize": ("jitter_buffer_size", _enum("small", "medium", "large", "off"), 16002),
    # us1 ie1 de1 sg1 br1 au1 jp1 (twilio.com/docs/voice/twiml/conference#region); no us2.
    "region": ("region", _enum("us1", "ie1", "de1", "sg1", "br1", "au1", "jp1"), 16002),
    "eventCallbackUrl": ("", _url, 11100),
    "recordingConfigurationId": ("", _text(64), 16002),
}
STREAM: Spec = {
    "url": ("url", _stream_url, 31900),
    "name": ("name", _text(256), 31900),
    "track": ("track", _enum("inbound_track", "outbound_track", "both_tracks"), 31900),
    "statusCallback": ("status_callback", _url, 31900),
    "statusCallbackMethod": ("status_callback_method", _method, 31900),
    "connectorName": ("", _text(256), 31900),
}
START: Spec = {"action": ("", _url, 11100), "method": ("", _method, 14300)}
CONNECT: Spec = {"action": ("action", _url, 11100), "method": ("method", _method, 14300)}
GATHER: Spec = {
    "action": ("action", _url, 11100),
    "method": ("method", _method, 13312),
    "timeout": ("timeout", _int(1), 13313),
    "numDigits": ("num_digits", _int(1), 13314),
    "finishOnKey": ("finish_on_key", _finish_on_key, 13310),
    "actionOnEmptyResult": ("action_on_empty_result", _bool, 13338),
    "input": ("input", _inputs, 13326),
    "language": ("language", _language, 13331),
    "hints": ("", _text(10000), 13330),
    "speechTimeout": ("speech_timeout", _speech_timeout, 13327),
    "speechModel": ("", _text(64), 13334),
    "profanityFilter": ("", _bool, 13333),
    "enhanced": ("", _bool, 13334),
    "bargeIn": ("barge_in", _bool, 13332),
    "partialResultCallback": ("partial_result_callback", _url, 11100),
    "partialResultCallbackMethod": ("partial_result_callback_method", _method, 13329),
}

# Error codes: Twilio's error dictionary, <Record> (136xx).
RECORD: Spec = {
    "action": ("action", _url, 11100),
    "method": ("method", _method, 13610),
    "timeout": ("timeout", _int(0), 13611),
    "finishOnKey": ("finish_on_key", _keys, 13613),
    "maxLength": ("max_length", _int(1, 14400), 13612),
    "playBeep": ("play_beep", _bool, 13614),
    "trim": ("trim", _enum("trim-silence", "do-not-trim"), 13615),
    "recordingStatusCallback": ("recording_status_callback", _url, 13617),
    "recordingStatusCallbackMethod": ("recording_status_callback_method", _method, 13617),
    "recordingStatusCallbackEvent": ("recording_status_callback_event",
                                     _events(RECORDING_EVENTS), 13617),
    "transcribe": ("transcribe", _bool, 13616),
    "transcribeCallback": ("transcribe_callback", _url, 13616),
    "storageUrl": ("", _url, 11100),
    "storageUrlMethod": ("", _method, 13610),
}

# --------------------------------------------------------------------------------------------
# Parsing

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          remove_comments=True, remove_pis=True, huge_tree=False)


class _Reader:
    """One parse: the document URL, the verbs allowed here, and the warnings collected."""

    def __init__(self, url: str, allowed: frozenset[str]):
        self.url = url
        self.allowed = allowed
        self.warnings: list[TwimlWarning] = []

    def attrs(self, el: etree._Element, spec: Spec) -> dict[str, object]:
        values: dict[str, object] = {}
        for name, raw in el.attrib.items():
            if name not in spec:
                self.warnings.append(TwimlWarning(
                    12200, f"attribute {name!r} is not allowed on <{el.tag}>; ignored",
                    el.sourceline))
                continue
            target, parse, code = spec[name]
            try:
                value = parse(raw, self.url)
            except ValueError as exc:
                raise TwimlError(code, f"<{el.tag} {name}>: {exc}", el.sourceline) from None
            if target:
                values[target] = value
        return values

    def no_children(self, el: etree._Element) -> None:
        for child in el:
            raise TwimlError(12100, f"<{child.tag}> cannot be nested in <{el.tag}>",
                             child.sourceline)

    def no_text(self, el: etree._Element) -> None:
        if (el.text or "").strip():
            self.warnings.append(TwimlWarning(12200, f"text in <{el.tag}> is ignored",
                                              el.sourceline))

    def verb(self, el: etree._Element) -> Verb:
        tag = el.tag
        if not isinstance(tag, str):
            raise TwimlError(12100, "unexpected node", el.sourceline)
        if tag in NOT_SIMULATED:
            raise TwimlError(12100, f"<{tag}> is TwiML this simulator does not execute",
                             el.sourceline)
        if tag not in VOICE_VERBS:
            raise TwimlError(12100, f"<{tag}> is not a TwiML verb", el.sourceline)
        if tag not in self.allowed:
            raise TwimlError(13238, f"<{tag}> is not allowed here: only "
                             f"{', '.join(sorted(self.allowed))}", el.sourceline)
        return getattr(self, "_" + tag.lower())(el)

    def _say(self, el: etree._Element) -> Say:
        values = self.attrs(el, SAY)
        for child in el.iter():
            if child is not el and child.tag not in SSML_TAGS:
                raise TwimlError(12100, f"<{child.tag}> cannot be nested in <Say>",
                                 child.sourceline)
        text = " ".join("".join(el.itertext()).split())
        if not text:
            raise TwimlError(13520, "<Say> has no text to speak", el.sourceline)
        return Say(text=text, line=el.sourceline, **values)  # type: ignore[arg-type]

    def _play(self, el: etree._Element) -> Play:
        values = self.attrs(el, PLAY)
        self.no_children(el)
        body = (el.text or "").strip()
        url = None
        if body:
            try:
                url = resolve_url(body, self.url)
            except ValueError as exc:
                raise TwimlError(11100, f"<Play>: {exc}", el.sourceline) from None
        elif not values.get("digits"):
            raise TwimlError(11100, "<Play> needs a URL or digits", el.sourceline)
        return Play(url=url, line=el.sourceline, **values)  # type: ignore[arg-type]

    def _pause(self, el: etree._Element) -> Pause:
        values = self.attrs(el, PAUSE)
        self.no_children(el)
        self.no_text(el)
        return Pause(line=el.sourceline, **values)  # type: ignore[arg-type]

    def _redirect(self, el: etree._Element) -> Redirect:
        values = self.attrs(el, REDIRECT)
        self.no_children(el)
        body = (el.text or "").strip()
        try:
            url = resolve_url(body, self.url) if body else self.url
        except ValueError as exc:
            raise TwimlError(11100, f"<Redirect>: {exc}", el.sourceline) from None
        return Redirect(url=url, line=el.sourceline, **values)  # type: ignore[arg-type]

    def _hangup(self, el: etree._Element) -> Hangup:
        self.attrs(el, HANGUP)
        self.no_children(el)
        self.no_text(el)
        return Hangup(line=el.sourceline)

    def _reject(self, el: etree._Element) -> Reject:
        values = self.attrs(el, REJECT)
        self.no_children(el)
        self.no_text(el)
        return Reject(line=el.sourceline, **values)  # type: ignore[arg-type]

    def _dial(self, el: etree._Element) -> Dial:
        values = self.attrs(el, DIAL)
        nouns = list(el)
        text = (el.text or "").strip()
        if text and nouns:
            raise TwimlError(13215, "<Dial> has both a number in its text and nested nouns",
                             el.sourceline)
        if text:
            target: Conference | DialNumber = DialNumber("Number", text, el.sourceline)
            return Dial(target=target, line=el.sourceline, legs=(target,),
                        **values)  # type: ignore[arg-type]
        if not nouns:
            raise TwimlError(13215, "<Dial> has nothing to dial", el.sourceline)
        if nouns[0].tag == "Conference":
            if len(nouns) != 1:
                raise TwimlError(13215, "<Dial><Conference> must be the only noun",
                                 el.sourceline)
            return Dial(target=self._conference(nouns[0]), line=el.sourceline,
                        **values)  # type: ignore[arg-type]
        if len(nouns) > MAX_NOUNS:
            raise TwimlError(13215, f"<Dial> has {len(nouns)} nouns: at most {MAX_NOUNS}",
                             el.sourceline)
        legs = tuple(self._dial_noun(noun) for noun in nouns)
        return Dial(target=legs[0], line=el.sourceline, legs=legs,
                    **values)  # type: ignore[arg-type]

    def _dial_noun(self, noun: etree._Element) -> DialNumber:
        if noun.tag == "Queue":
            raise TwimlError(13215, "<Dial><Queue> is TwiML this simulator does not execute",
                             noun.sourceline)
        if noun.tag not in ("Number", "Client", "Sip", "Sim", "Application"):
            raise TwimlError(13215, f"<{noun.tag}> cannot be nested in <Dial> with numbers",
                             noun.sourceline)
        values = self.attrs(noun, NOUN)
        return DialNumber(noun.tag, " ".join("".join(noun.itertext()).split()),
                          noun.sourceline, **values)  # type: ignore[arg-type]

    def _conference(self, el: etree._Element) -> Conference:
        values = self.attrs(el, CONFERENCE)
        self.no_children(el)
        name = (el.text or "").strip()
        if not 1 <= len(name) <= 128:
            raise TwimlError(13237, "a conference name has 1 to 128 characters", el.sourceline)
        return Conference(name=name, line=el.sourceline, **values)  # type: ignore[arg-type]

    def _record(self, el: etree._Element) -> Record:
        values = self.attrs(el, RECORD)
        self.no_children(el)
        self.no_text(el)
        return Record(line=el.sourceline, **values)  # type: ignore[arg-type]

    def _start(self, el: etree._Element) -> Start:
        self.attrs(el, START)
        streams = []
        for child in el:
            if child.tag == "Stream":
                streams.append(self._stream(child))
            elif child.tag in ("Siprec", "Transcription", "Recording"):
                self.warnings.append(TwimlWarning(
                    12200, f"<Start><{child.tag}> is not simulated; ignored", child.sourceline))
            else:
                raise TwimlError(14300, f"<{child.tag}> cannot be nested in <Start>",
                                 child.sourceline)
        if not streams and not len(el):
            raise TwimlError(14300, "<Start> needs a nested noun", el.sourceline)
        return Start(streams=tuple(streams), line=el.sourceline)

    def _connect(self, el: etree._Element) -> Connect:
        values = self.attrs(el, CONNECT)
        children = list(el)
        for child in children:
            if child.tag != "Stream":
                # Room, Conversation, VirtualAgent, ConversationRelay...: not simulated.
                raise TwimlError(12100, f"<Connect><{child.tag}> is not simulated",
                                 child.sourceline)
        if len(children) != 1:
            raise TwimlError(12100, "<Connect> needs exactly one nested noun", el.sourceline)
        stream = self._stream(children[0])
        if stream.track != "inbound_track":
            # "bidirectional Streams only support the inbound_track" (TwiML <Stream>, track).
            raise TwimlError(31900, "a bidirectional <Stream> only supports inbound_track",
                             children[0].sourceline)
        return Connect(stream=stream, line=el.sourceline, **values)  # type: ignore[arg-type]

    def _stream(self, el: etree._Element) -> Stream:
        values = self.attrs(el, STREAM)
        if "url" not in values:
            raise TwimlError(31900, "<Stream> needs a url", el.sourceline)
        if urlsplit(str(values["url"])).query:
            self.warnings.append(TwimlWarning(
                31900, "Twilio does not support a query string in a Stream url; use <Parameter>",
                el.sourceline))
        parameters = []
        for child in el:
            if child.tag != "Parameter":
                raise TwimlError(12100, f"<{child.tag}> cannot be nested in <Stream>",
                                 child.sourceline)
            name, value = child.get("name"), child.get("value")
            if not name or value is None:
                raise TwimlError(31900, "<Parameter> needs a name and a value", child.sourceline)
            if len(name) + len(value) >= 500:
                raise TwimlError(31900, "a <Parameter> name and value must be under 500 "
                                 "characters together", child.sourceline)
            parameters.append((name, value))
        return Stream(parameters=tuple(parameters), line=el.sourceline,
                      **values)  # type: ignore[arg-type]

    def _stop(self, el: etree._Element) -> Stop:
        self.attrs(el, {})
        names: list[str | None] = []
        for child in el:
            if child.tag != "Stream":
                raise TwimlError(12100, f"<Stop><{child.tag}> is not simulated",
                                 child.sourceline)
            names.append(child.get("name"))
        if not names:
            raise TwimlError(12100, "<Stop> needs a nested <Stream>", el.sourceline)
        return Stop(stream_names=tuple(names), line=el.sourceline)

    def _gather(self, el: etree._Element) -> Gather:
        values = self.attrs(el, GATHER)
        prompts: list[Say | Play | Pause] = []
        for child in el:
            if child.tag not in ("Say", "Play", "Pause"):
                raise TwimlError(13320, f"<{child.tag}> cannot be nested in <Gather>",
                                 child.sourceline)
            prompts.append(getattr(self, "_" + child.tag.lower())(child))
        return Gather(prompts=tuple(prompts), line=el.sourceline,
                      **values)  # type: ignore[arg-type]


def parse_twiml(body: str | bytes, url: str, *, allowed: frozenset[str] = VOICE_VERBS
                ) -> Document:
    """Parse and validate one TwiML document fetched from `url`."""
    data = body.encode() if isinstance(body, str) else body
    if not data.strip():
        raise TwimlError(12100, "the document is empty")
    if b"<!DOCTYPE" in data[:2048].upper():
        raise TwimlError(12100, "a DOCTYPE is not allowed in TwiML")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise TwimlError(12100, f"not well-formed XML: {exc.msg}", exc.lineno) from None
    if root.tag != "Response":
        raise TwimlError(12102, f"the root element is <{root.tag}>, not <Response>",
                         root.sourceline)
    reader = _Reader(url, allowed)
    reader.attrs(root, {})
    if (root.text or "").strip():
        reader.warnings.append(TwimlWarning(12200, "text directly in <Response> is ignored",
                                            root.sourceline))
    verbs = tuple(reader.verb(child) for child in root)
    return Document(url=url, verbs=verbs, warnings=tuple(reader.warnings))
