"""Plivo model -> TwiML (pure): one translator per element, registered here by element class.

    translate(document, context, start=0) -> Translation

A translation covers the elements from `start` up to the first one that hands control back to
the gateway (a Conference: when the member leaves; a Redirect: to fetch the next document;
GetDigits/GetInput: with the caller's answer) or ends the call (Hangup). Positions index
`Document.steps` (PreAnswer's elements in place). `resume_at` says where the gateway goes on when
control comes back. `translate_input_again` is a menu heard again (after no or invalid input).

Nothing is skipped in silence: a stretch that reaches an element the gateway cannot run raises
`ElementCannotRun` (none of that stretch is played; the webhook layer apologises and logs the
element). Elements after a `<Hangup>` are never reached, so they are only reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twilio.twiml.voice_response import Stop

from ..plivoxml import Document, Element, Note, UnsupportedElement
from ..plivoxml.elements import (
    DTMF,
    Conference,
    Dial,
    GetDigits,
    GetInput,
    Hangup,
    Message,
    MultiPartyCall,
    Play,
    PreAnswer,
    Record,
    Redirect,
    Speak,
    Stream,
    Wait,
)
from .builder import TwimlBuilder, render
from .conference import translate_conference
from .context import GatewayUrls, TranslationContext
from .dial import translate_dial
from .dtmf import translate_dtmf
from .getdigits import translate_getdigits
from .getinput import translate_getinput
from .hangup import translate_hangup
from .message import translate_message
from .multipartycall import translate_multipartycall
from .outcome import ElementCannotRun, Flow, MessageQueued, RecordingBooked, ScheduledHangup
from .play import translate_play
from .preanswer import translate_preanswer
from .record import translate_record
from .redirect import translate_redirect
from .speak import translate_speak
from .stream import translate_stream
from .wait import translate_wait

Translator = Callable[..., Flow]

NOT_YET_REASON = "not yet supported (a call that reaches it hears the gateway's apology)"

TRANSLATORS: dict[type[Element], Translator] = {
    Conference: translate_conference,
    Speak: translate_speak,
    Play: translate_play,
    Wait: translate_wait,
    Redirect: translate_redirect,
    Hangup: translate_hangup,
    GetDigits: translate_getdigits,
    GetInput: translate_getinput,
    DTMF: translate_dtmf,
    PreAnswer: translate_preanswer,
    Record: translate_record,
    Dial: translate_dial,
    Stream: translate_stream,
    Message: translate_message,
    MultiPartyCall: translate_multipartycall,
}

# Elements that collect the caller's input: their Gather reports back to the gateway.
INPUT_ELEMENTS = (GetDigits, GetInput)


@dataclass(frozen=True)
class Translation:
    """TwiML for one stretch of a document, what happened to each element, and what comes next.

    resume_at: index of the element the gateway continues with when Twilio hands control back
    (the Redirect itself, or the element after a Conference); None when this TwiML ends the
    document. handback: the element that hands control back, if any. rejected: the reason of
    the `<Reject>` this TwiML ends with (Twilio reports busy/no-answer; Plivo's cause differs).
    """

    twiml: str
    notes: tuple[Note, ...]
    resume_at: int | None
    handback: Element | None
    effects: tuple[ScheduledHangup | RecordingBooked | MessageQueued, ...] = ()
    verbs: int = 0
    rejected: str | None = None


def tag_of(element: Element) -> str:
    return element.tag if isinstance(element, UnsupportedElement) else element.TAG


def translate(document: Document, context: TranslationContext, start: int = 0, *,
              sound_first: str | None = None) -> Translation:
    """`sound_first`: a sound the gateway plays before the elements (a menu's
    invalidDigitsSound, when the caller's last attempt was invalid)."""
    builder, resume_at, handback = compose(document, context, start, sound_first=sound_first)
    return Translation(
        twiml=render(builder.response),
        notes=tuple(builder.notes),
        resume_at=resume_at,
        handback=handback,
        effects=tuple(builder.effects),
        verbs=builder.verbs,
        rejected=builder.rejected,
    )


def compose(document: Document, context: TranslationContext, start: int = 0, *,
            sound_first: str | None = None) -> tuple[TwimlBuilder, int | None, Element | None]:
    """The stretch from `start` up to the next hand-back, built but not yet serialised:
    (the builder, where to resume, the element handed back)."""
    builder = TwimlBuilder(context)
    for name in context.stop_streams:  # a member's side stream, once it has left the room
        stop = Stop()
        stop.stream(name=name)
        builder.response.append(stop)
    if start == 0:
        builder.notes.extend(document.notes)
    if sound_first:
        builder.response.play(sound_first)
        builder.verbs += 1
    elements = document.steps
    resume_at: int | None = None
    handback: Element | None = None
    for index in range(start, len(elements)):
        element = elements[index]
        if isinstance(element, UnsupportedElement):
            raise ElementCannotRun(element.tag, element.line, NOT_YET_REASON)
        flow = TRANSLATORS[type(element)](element, builder)
        if flow is Flow.HANDBACK:
            handback = element
            resume_at = index if isinstance(element, Redirect) else index + 1
            break
        if flow is Flow.END:
            if index + 1 < len(elements):
                unreachable = elements[index + 1]
                builder.note(tag_of(unreachable), "ignored",
                             f"unreachable after <Hangup> on line {element.line}",
                             line=unreachable.line)
            break
    return builder, resume_at, handback


def translate_input_again(document: Document, context: TranslationContext, at: int,
                          sound: str | None = None) -> Translation:
    """The menu at `at` (a GetDigits/GetInput step) once more, after `sound` (Plivo's
    invalidDigitsSound) when given; its report is not repeated."""
    element = document.steps[at]
    builder = TwimlBuilder(context)
    if sound:
        builder.response.play(sound)
        builder.verbs += 1
    TRANSLATORS[type(element)](element, builder)
    return Translation(twiml=render(builder.response), notes=(), resume_at=at + 1,
                       handback=element, verbs=builder.verbs)


__all__ = ["INPUT_ELEMENTS", "TRANSLATORS", "ElementCannotRun", "GatewayUrls", "MessageQueued",
           "RecordingBooked", "ScheduledHangup", "Translation", "TranslationContext", "compose",
           "translate", "translate_input_again"]
