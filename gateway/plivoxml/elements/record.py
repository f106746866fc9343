"""`<Record>`: record the caller (voicemail), or the whole call in the background
(`recordSession`), or the next Dial from its answer (`startOnDialAnswer`), with Plivo's
recording and transcription callbacks.

Checked as hosted Plivo checks them (docs.plivo.com "The Record element"); defaults from
`attributes.DEFAULTS`. Translation lives in `gateway.translate.record`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..attributes import (
    BOOLEAN,
    METHOD,
    TRANSCRIPTION_TYPES,
    URL,
    AttributeType,
    Enum,
    Integer,
)
from ..model import Element


@dataclass(frozen=True)
class FinishKeys(AttributeType):
    """finishOnKey: the keys (0-9, * and #) any of which ends the recording; empty: none."""

    describe = "keys from 0-9, * and #"

    def parse(self, text: str) -> str:
        text = text.strip()
        if text.lower() == "none":  # hosted Plivo's spelling of "no key ends it"
            return ""
        if re.fullmatch(r"[0-9*#]*", text):
            return "".join(dict.fromkeys(text))  # each key once, in the app's order
        raise ValueError(f"{text!r} may only contain the keys 0-9, * and #")


@dataclass(frozen=True)
class Record(Element):
    TAG: ClassVar[str] = "Record"
    ATTRIBUTES: ClassVar[dict] = {
        "action": URL,
        "method": METHOD,
        "fileFormat": Enum(("mp3", "wav")),
        "redirect": BOOLEAN,
        "timeout": Integer(minimum=1),
        "maxLength": Integer(minimum=1),
        "playBeep": BOOLEAN,
        "finishOnKey": FinishKeys(),
        "recordSession": BOOLEAN,
        "startOnDialAnswer": BOOLEAN,
        "recordChannelType": Enum(("mono", "stereo")),
        "transcriptionType": TRANSCRIPTION_TYPES,
        "transcriptionUrl": URL,
        "transcriptionMethod": METHOD,
        "callbackUrl": URL,
        "callbackMethod": METHOD,
    }

    action: str | None
    method: str
    file_format: str
    redirect: bool
    timeout: int
    max_length: int
    play_beep: bool
    finish_on_key: str
    record_session: bool
    start_on_dial_answer: bool
    record_channel_type: str
    transcription_type: str
    transcription_url: str | None
    transcription_method: str
    callback_url: str | None
    callback_method: str

    @property
    def in_background(self) -> bool:
        """recordSession / startOnDialAnswer: nothing is recorded here and now; the document
        goes on at once (timeout, finishOnKey and playBeep do not apply, as Plivo says)."""
        return self.record_session or self.start_on_dial_answer
