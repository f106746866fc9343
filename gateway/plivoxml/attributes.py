"""Attribute value types, checked as Plivo checks them, and the one table of Plivo's defaults.

Each `AttributeType` turns the attribute's text into a Python value or raises ValueError with the
reason. Defaults are Plivo's own (hosted service where it differs from the open-source framework;
see docs and reference/plivo.md), written as the text Plivo would have received, so that a default
goes through the same check as a value the app wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit


class AttributeType:
    """Parses one attribute's text; `describe` is used in error messages and the README."""

    describe = "text"

    def parse(self, text: str) -> object:
        return text


@dataclass(frozen=True)
class Text(AttributeType):
    describe = "text"

    def parse(self, text: str) -> str:
        return text


@dataclass(frozen=True)
class Boolean(AttributeType):
    """Plivo booleans: exactly `true` or `false` (the framework compares with == 'true')."""

    describe = "true or false"

    def parse(self, text: str) -> bool:
        if text == "true":
            return True
        if text == "false":
            return False
        raise ValueError(f"{text!r} is not a boolean: must be exactly true or false")


@dataclass(frozen=True)
class Integer(AttributeType):
    minimum: int | None = None
    maximum: int | None = None

    @property
    def describe(self) -> str:  # type: ignore[override]
        if self.minimum is not None and self.maximum is not None:
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an integer >= {self.minimum}"
        return "an integer"

    def parse(self, text: str) -> int:
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
            raise ValueError(f"{text!r} is not an integer")
        value = int(text)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{value} is out of range: must be {self.describe}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{value} is out of range: must be {self.describe}")
        return value


@dataclass(frozen=True)
class Method(AttributeType):
    describe = "GET or POST"

    def parse(self, text: str) -> str:
        if text in ("GET", "POST"):
            return text
        raise ValueError(f"{text!r} is not an HTTP method Plivo uses: must be GET or POST")


def is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in text


@dataclass(frozen=True)
class Url(AttributeType):
    """An absolute http(s) URL. An empty value means 'not set' (Plivo ignores it)."""

    describe = "an absolute http(s) URL"

    def parse(self, text: str) -> str | None:
        text = text.strip()
        if not text:
            return None
        if not is_http_url(text):
            raise ValueError(f"{text!r} is not an absolute http(s) URL")
        return text


@dataclass(frozen=True)
class Enum(AttributeType):
    values: tuple[str, ...] = ()

    @property
    def describe(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.values)

    def parse(self, text: str) -> str:
        if text in self.values:
            return text
        raise ValueError(f"{text!r} is not allowed: must be {self.describe}")


@dataclass(frozen=True)
class Sound(AttributeType):
    """enterSound/exitSound: "", beep:1, beep:2, or a URL returning Play/Speak/Wait XML."""

    describe = '"", beep:1, beep:2 or an absolute http(s) URL'

    def parse(self, text: str) -> str:
        text = text.strip()
        if text in ("", "beep:1", "beep:2") or is_http_url(text):
            return text
        raise ValueError(f"{text!r} is not a sound: must be {self.describe}")


@dataclass(frozen=True)
class DigitPatterns(AttributeType):
    """digitsMatch: comma-separated patterns of DTMF keys (0-9 * #)."""

    describe = "comma-separated patterns of digits, * and #"

    def parse(self, text: str) -> tuple[str, ...]:
        patterns = tuple(p.strip() for p in text.split(",") if p.strip())
        for p in patterns:
            if not re.fullmatch(r"[0-9*#]+", p):
                raise ValueError(f"pattern {p!r} may only contain digits, * and #")
        return patterns


@dataclass(frozen=True)
class Digits(AttributeType):
    """sendDigits: DTMF keys plus w/W (pauses of 0.5 s / 1 s)."""

    describe = "digits, *, #, A-D, w and W"

    def parse(self, text: str) -> str:
        if re.fullmatch(r"[0-9*#A-Dabcd wW]*", text):
            return text
        raise ValueError(f"{text!r} may only contain digits, *, #, A-D, w and W")


@dataclass(frozen=True)
class FinishOnKey(AttributeType):
    """finishOnKey: one key (0-9, * or #) that submits; "" or `none` means no such key ("")."""

    describe = 'one of 0-9, * or #, "" or none'

    def parse(self, text: str) -> str:
        if text in ("", "none"):
            return ""
        if re.fullmatch(r"[0-9*#]", text):
            return text
        raise ValueError(f"{text!r} is not a key that submits: must be {self.describe}")


@dataclass(frozen=True)
class KeySet(AttributeType):
    """validDigits: the keys a caller may press, any of 0-9, * and # (each once or more)."""

    describe = "keys from 0-9, * and #"

    def parse(self, text: str) -> str:
        if re.fullmatch(r"[0-9*#]+", text):
            return text
        raise ValueError(f"{text!r} may only contain the keys 0-9, * and #")


@dataclass(frozen=True)
class SecondsOrAuto(AttributeType):
    """digitEndTimeout/speechEndTimeout: whole seconds in a range, or `auto` (None)."""

    minimum: int = 2
    maximum: int = 10

    @property
    def describe(self) -> str:  # type: ignore[override]
        return f"auto or an integer from {self.minimum} to {self.maximum}"

    def parse(self, text: str) -> int | None:
        if text.strip() == "auto":
            return None
        try:
            return Integer(self.minimum, self.maximum).parse(text)
        except ValueError:
            raise ValueError(f"{text!r} is not allowed: must be {self.describe}") from None


@dataclass(frozen=True)
class Hints(AttributeType):
    """GetInput hints: comma-separated phrases, within Plivo's limits (500 phrases, 10,000
    characters, 100 characters a phrase)."""

    describe = "comma-separated phrases (at most 500, 100 characters each, 10,000 in all)"

    def parse(self, text: str) -> tuple[str, ...]:
        if len(text) > 10_000:
            raise ValueError(f"hints are {len(text)} characters long: at most 10,000")
        phrases = tuple(p.strip() for p in text.split(",") if p.strip())
        if len(phrases) > 500:
            raise ValueError(f"{len(phrases)} hint phrases: at most 500")
        for phrase in phrases:
            if len(phrase) > 100:
                raise ValueError(f"hint {phrase[:30]!r}... is longer than 100 characters")
        return phrases


@dataclass(frozen=True)
class DialMusic(AttributeType):
    """Dial's dialMusic: "" (a ringback tone), `none`, `real` (the callee's own early media) or
    a URL returning XML with Play/Speak/Wait."""

    describe = '"", none, real or an absolute http(s) URL'

    def parse(self, text: str) -> str:
        text = text.strip()
        if text in ("", "none", "real") or is_http_url(text):
            return text
        raise ValueError(f"{text!r} is not dial music: must be {self.describe}")


@dataclass(frozen=True)
class ConfirmKey(AttributeType):
    """Dial's confirmKey: the one key the callee presses to take the call ("": none)."""

    describe = "one of 0-9, * or #"

    def parse(self, text: str) -> str:
        text = text.strip()
        if re.fullmatch(r"[0-9*#]?", text):
            return text
        raise ValueError(f"{text!r} is not a key: must be {self.describe}")


@dataclass(frozen=True)
class CallerId(AttributeType):
    """Dial's callerId: a phone number (digits, an optional leading +); `none` sends an empty
    caller ID (the open-source engine's rule); "" keeps the caller's own."""

    describe = "a phone number (digits with an optional leading +) or none"

    def parse(self, text: str) -> str | None:
        text = text.strip()
        if not text:
            return None
        if text == "none" or re.fullmatch(r"\+?[0-9]{2,15}", text):
            return text
        raise ValueError(f"{text!r} is not a phone number: must be {self.describe}")


@dataclass(frozen=True)
class SipHeaders(AttributeType):
    """sipHeaders: `name=value,name2=value2`; hosted Plivo allows only [A-Za-z0-9] in names
    and values (so that they survive in a URL) and prefixes each name with X-PH-. Anything else
    is refused, which also keeps a header from smuggling SIP URI syntax (`?`, `&`, `;`, `>`)."""

    describe = "comma-separated name=value pairs of letters and digits"

    def parse(self, text: str) -> tuple[tuple[str, str], ...]:
        pairs: list[tuple[str, str]] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            name, equals, value = item.partition("=")
            if not equals or not re.fullmatch(r"[A-Za-z0-9]+", name) or not re.fullmatch(
                    r"[A-Za-z0-9]*", value):
                raise ValueError(f"SIP header {item[:40]!r} is not name=value with letters and "
                                 "digits only (Plivo's rule)")
            pairs.append((name, value))
        return tuple(pairs)


BOOLEAN = Boolean()
TEXT = Text()
METHOD = Method()
URL = Url()
SOUND = Sound()
COUNT = Integer(minimum=1)
FINISH_ON_KEY = FinishOnKey()

# Plivo's transcription types (Record and Conference): auto (machine), hybrid (machine, then a
# human check) and manual (the SDK's third value). The gateway transcribes each by machine.
TRANSCRIPTION_TYPES = Enum(("auto", "hybrid", "manual"))

# Plivo's defaults, one table: element -> attribute -> the text Plivo assumes when it is absent.
# Attributes absent from an element's row have no default (None in the model).
DEFAULTS: dict[str, dict[str, str]] = {
    "Conference": {
        "muted": "false",
        "enterSound": "",
        "exitSound": "",
        "startConferenceOnEnter": "true",
        "endConferenceOnExit": "false",
        "stayAlone": "true",
        "waitSound": "",
        "maxMembers": "200",
        "record": "false",
        "recordFileFormat": "mp3",
        "timeLimit": "0",
        "hangupOnStar": "false",
        "method": "POST",
        "callbackMethod": "POST",
        "digitsMatch": "",
        "floorEvent": "false",
        "redirect": "true",
        "relayDTMF": "true",
        "sendDigits": "",
        "recordWhenAlone": "",
        "transcriptionType": "auto",
        "transcriptionMethod": "GET",
    },
    "Record": {
        "method": "POST",
        "fileFormat": "mp3",
        "redirect": "true",
        "timeout": "15",
        "maxLength": "60",
        "playBeep": "true",
        # Hosted Plivo's current reference says "#"; older pages and the open-source engine
        # said any key (1234567890*#). The current reference is the authority.
        "finishOnKey": "#",
        "recordSession": "false",
        "startOnDialAnswer": "false",
        "recordChannelType": "mono",
        "transcriptionType": "auto",
        "transcriptionMethod": "POST",
        "callbackMethod": "POST",
    },
    "Speak": {"voice": "WOMAN", "language": "en-US", "loop": "1"},
    "Play": {"loop": "1"},
    "Wait": {"length": "1", "silence": "false", "minSilence": "2000", "beep": "false"},
    "Redirect": {"method": "POST"},
    "Hangup": {"reason": "", "schedule": "0"},
    "GetDigits": {
        "method": "POST",
        "timeout": "5",
        "digitTimeout": "2",
        "finishOnKey": "#",
        "numDigits": "99",
        "retries": "1",
        "redirect": "true",
        "playBeep": "false",
        "validDigits": "1234567890*#",
        "invalidDigitsSound": "",
        "log": "true",
    },
    "GetInput": {
        "method": "POST",
        # Plivo's docs give no default; listening for both is what a caller can always use.
        "inputType": "dtmf speech",
        "executionTimeout": "15",
        "digitEndTimeout": "auto",
        "speechEndTimeout": "auto",
        "finishOnKey": "#",
        "numDigits": "32",
        "speechModel": "default",
        "hints": "",
        "language": "en-US",
        "interimSpeechResultsCallbackMethod": "POST",
        "log": "true",
        "redirect": "true",
        "profanityFilter": "false",
    },
    "DTMF": {"async": "true"},
    "Dial": {
        "method": "POST",
        "hangupOnStar": "false",
        # Hosted Plivo: 14400 s (4 hours); the open-source engine reads 0 the same way.
        "timeLimit": "14400",
        # timeout: no default on Plivo (the network's); see gateway.translate.dial.
        "confirmKey": "",
        "confirmTimeout": "120",
        "dialMusic": "",
        "callbackMethod": "POST",
        "redirect": "true",
        "digitsMatch": "",
        "digitsMatchBLeg": "",
        "sipHeaders": "",
    },
    "Number": {"sendDigits": "", "sendOnPreanswer": "false"},
    "User": {"sendDigits": "", "sendOnPreanswer": "false", "sipHeaders": ""},
    # docs.plivo.com "The MultiPartyCall element" and the SDK's MultiPartyCallElement.
    "MultiPartyCall": {
        "maxDuration": "14400", "maxParticipants": "10", "recordMinMemberCount": "1",
        "waitMusicMethod": "GET", "agentHoldMusicMethod": "GET",
        "customerHoldMusicMethod": "GET", "record": "false", "recordParticipantTrack": "false",
        "recordFileFormat": "mp3", "recordingCallbackMethod": "POST",
        "statusCallbackEvents": "mpc-state-changes,participant-state-changes",
        "statusCallbackMethod": "POST", "stayAlone": "false", "coachMode": "true",
        "mute": "false", "hold": "false", "startMpcOnEnter": "true", "endMpcOnExit": "false",
        "enterSound": "beep:1", "enterSoundMethod": "GET", "exitSound": "beep:2",
        "exitSoundMethod": "GET", "onExitActionMethod": "POST", "relayDTMFInputs": "false",
        "startRecordingAudioMethod": "GET", "stopRecordingAudioMethod": "GET",
        "transcript": "false",
    },
    # docs.plivo.com "The Message element": type sms, callbackMethod POST.
    "Message": {"type": "sms", "callbackMethod": "POST"},
    # docs.plivo.com, the Stream element's attribute table.
    "Stream": {
        "bidirectional": "false",
        "audioTrack": "inbound",
        "streamTimeout": "86400",
        "statusCallbackMethod": "POST",
        "contentType": "audio/x-l16;rate=8000",
        "extraHeaders": "",
        "keepCallAlive": "false",
    },
}
