"""The TwiML under construction for one translation, with its report and side effects."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from twilio.twiml.voice_response import VoiceResponse

from ..plivoxml.model import Note, Status
from .context import TranslationContext
from .outcome import RecordingBooked, ScheduledHangup

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def render(response: VoiceResponse) -> str:
    """The same text as `response.to_xml()`, serialised straight to str: twilio's own method
    encodes to UTF-8 bytes and decodes them back, which doubles the cost of a small document."""
    return XML_DECLARATION + ET.tostring(response.xml(), encoding="unicode")


def _hang_up() -> VoiceResponse:
    response = VoiceResponse()
    response.hangup()
    return response


EMPTY_TWIML = render(VoiceResponse())    # silence, or "nothing more to do" (Twilio hangs up)
HANGUP_TWIML = render(_hang_up())        # a document that has run out: Plivo hangs up


@dataclass
class TwimlBuilder:
    """Collects verbs (through twilio's VoiceResponse), report notes and gateway side effects."""

    context: TranslationContext
    response: VoiceResponse = field(default_factory=VoiceResponse)
    notes: list[Note] = field(default_factory=list)
    effects: list[ScheduledHangup | RecordingBooked] = field(default_factory=list)
    verbs: int = 0  # verbs added so far; Reject is only possible before any

    def note(self, element: str, status: Status, message: str, *, line: int | None = None,
             attribute: str | None = None) -> None:
        self.notes.append(Note(element, status, message, line=line, attribute=attribute))

    @property
    def nothing_played_yet(self) -> bool:
        return self.context.first_in_call and self.verbs == 0
