"""`<Conference>`: the room a call joins, with all 25 attributes of the Plivo SDK's element.

Checked as Plivo checks them; defaults from `attributes.DEFAULTS`. Translation lives in
`gateway.translate.conference`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import (
    BOOLEAN,
    METHOD,
    SOUND,
    TRANSCRIPTION_TYPES,
    URL,
    DigitPatterns,
    Digits,
    Enum,
    Integer,
)
from ..model import Element


@dataclass(frozen=True)
class Conference(Element):
    TAG: ClassVar[str] = "Conference"
    BODY: ClassVar[str] = "text"
    ATTRIBUTES: ClassVar[dict] = {
        "muted": BOOLEAN,
        "enterSound": SOUND,
        "exitSound": SOUND,
        "startConferenceOnEnter": BOOLEAN,
        "endConferenceOnExit": BOOLEAN,
        "stayAlone": BOOLEAN,
        "waitSound": URL,
        "maxMembers": Integer(minimum=1),
        "record": BOOLEAN,
        "recordFileFormat": Enum(("mp3", "wav")),
        "timeLimit": Integer(minimum=0),
        "hangupOnStar": BOOLEAN,
        "action": URL,
        "method": METHOD,
        "callbackUrl": URL,
        "callbackMethod": METHOD,
        "digitsMatch": DigitPatterns(),
        "floorEvent": BOOLEAN,
        "redirect": BOOLEAN,
        "relayDTMF": BOOLEAN,
        "sendDigits": Digits(),
        "recordWhenAlone": Enum(("", "true", "false")),
        "transcriptionType": TRANSCRIPTION_TYPES,
        "transcriptionUrl": URL,
        "transcriptionMethod": METHOD,
    }

    body: str  # the room name as the app wrote it (whitespace collapsed, as Plivo does)
    muted: bool
    enter_sound: str
    exit_sound: str
    start_conference_on_enter: bool
    end_conference_on_exit: bool
    stay_alone: bool
    wait_sound: str | None
    max_members: int
    record: bool
    record_file_format: str
    time_limit: int
    hangup_on_star: bool
    action: str | None
    method: str
    callback_url: str | None
    callback_method: str
    digits_match: tuple[str, ...]
    floor_event: bool
    redirect: bool
    relay_dtmf: bool
    send_digits: str
    record_when_alone: str
    transcription_type: str
    transcription_url: str | None
    transcription_method: str

    @property
    def room(self) -> str:
        return self.body
