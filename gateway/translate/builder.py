"""The TwiML under construction for one translation, with its report and side effects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from twilio.twiml import TwiML
from twilio.twiml.voice_response import VoiceResponse

from ..plivoxml.model import Note, Status
from .context import TranslationContext
from .outcome import MessageQueued, RecordingBooked, ScheduledHangup
from .twiml_text import twiml_text


def render(response: VoiceResponse) -> str:
    """The same text as `response.to_xml()`, written straight from twilio's tree of verbs
    (`twiml_text`): twilio's own method builds an ElementTree, serialises it to UTF-8 bytes and
    decodes them back."""
    return twiml_text(response)


def _hang_up(sound: str | None = None) -> VoiceResponse:
    response = VoiceResponse()
    if sound:
        response.play(sound)
    response.hangup()
    return response


def hang_up_after(sound: str) -> str:
    """Play one sound, then hang up (a document that ran out right after a sound)."""
    return render(_hang_up(sound))


EMPTY_TWIML = render(VoiceResponse())    # silence, or "nothing more to do" (Twilio hangs up)
HANGUP_TWIML = render(_hang_up())        # a document that has run out: Plivo hangs up


@dataclass
class TwimlBuilder:
    """Collects verbs (through twilio's VoiceResponse), report notes and gateway side effects."""

    context: TranslationContext
    response: VoiceResponse = field(default_factory=VoiceResponse)
    notes: list[Note] = field(default_factory=list)
    effects: list[ScheduledHangup | RecordingBooked | MessageQueued] = field(
        default_factory=list)
    verbs: int = 0  # verbs added so far; Reject is only possible before any
    rejected: str | None = None  # the reason of the <Reject> emitted, if any (Plivo's cause)

    def note(self, element: str, status: Status, message: str, *, line: int | None = None,
             attribute: str | None = None) -> None:
        self.notes.append(Note(element, status, message, line=line, attribute=attribute))

    @contextmanager
    def inside(self, verb: TwiML) -> Iterator[None]:
        """Translators called in this block add their verbs to `verb` (a Gather's prompts)
        instead of the response; `verb` itself is appended to the response afterwards."""
        outer = self.response
        self.response = verb  # type: ignore[assignment]
        try:
            yield
        finally:
            self.response = outer
        outer.append(verb)

    @property
    def nothing_played_yet(self) -> bool:
        return self.context.first_in_call and self.verbs == 0
