"""Plivo model -> TwiML (pure): one translator per element, registered here by element class.

    translate(document, context, start=0) -> Translation

A translation covers the elements from `start` up to the first one that hands control back to
the gateway (a Conference: when the member leaves; a Redirect: to fetch the next document) or
ends the call (Hangup). `resume_at` says where the gateway goes on when control comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twilio.twiml.voice_response import Stop

from ..plivoxml import Document, Element, Note, UnsupportedElement
from ..plivoxml.elements import Conference, Hangup, Play, Redirect, Speak, Wait
from .builder import TwimlBuilder, render
from .conference import translate_conference
from .context import GatewayUrls, TranslationContext
from .hangup import translate_hangup
from .outcome import Flow, ScheduledHangup
from .play import translate_play
from .redirect import translate_redirect
from .speak import translate_speak
from .wait import translate_wait

Translator = Callable[..., Flow]

TRANSLATORS: dict[type[Element], Translator] = {
    Conference: translate_conference,
    Speak: translate_speak,
    Play: translate_play,
    Wait: translate_wait,
    Redirect: translate_redirect,
    Hangup: translate_hangup,
}


@dataclass(frozen=True)
class Translation:
    """TwiML for one stretch of a document, what happened to each element, and what comes next.

    resume_at: index of the element the gateway continues with when Twilio hands control back
    (the Redirect itself, or the element after a Conference); None when this TwiML ends the
    document. handback: the element that hands control back, if any.
    """

    twiml: str
    notes: tuple[Note, ...]
    resume_at: int | None
    handback: Element | None
    effects: tuple[ScheduledHangup, ...] = ()
    verbs: int = 0


def translate(document: Document, context: TranslationContext, start: int = 0) -> Translation:
    builder = TwimlBuilder(context)
    for name in context.stop_streams:  # a member's side stream, once it has left the room
        stop = Stop()
        stop.stream(name=name)
        builder.response.append(stop)
    if start == 0:
        builder.notes.extend(document.notes)
    elements = document.elements
    resume_at: int | None = None
    handback: Element | None = None
    for index in range(start, len(elements)):
        element = elements[index]
        if isinstance(element, UnsupportedElement):
            continue  # reported by the parser ("not yet supported: skipped")
        flow = TRANSLATORS[type(element)](element, builder)
        if flow is Flow.HANDBACK:
            handback = element
            resume_at = index if isinstance(element, Redirect) else index + 1
            break
        if flow is Flow.END:
            if index + 1 < len(elements):
                builder.note(elements[index + 1].TAG or "element", "ignored",
                             f"unreachable after <Hangup> on line {element.line}",
                             line=elements[index + 1].line)
            break
    return Translation(
        twiml=render(builder.response),
        notes=tuple(builder.notes),
        resume_at=resume_at,
        handback=handback,
        effects=tuple(builder.effects),
        verbs=builder.verbs,
    )


__all__ = ["TRANSLATORS", "GatewayUrls", "ScheduledHangup", "Translation", "TranslationContext",
           "translate"]
