"""Sound documents (waitSound, enterSound/exitSound URLs): only Play, Speak and Wait count.

Plivo fetches these URLs and plays what their XML says, ignoring every other element. Twilio's
waitUrl and announceUrl documents accept Play/Say/Pause (and Redirect), so the three translate
natively; a wait document is made to loop with a final Redirect to itself, since Twilio plays
silence once a wait document runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plivoxml import Document, Note
from ..plivoxml.elements import Play, Speak, Wait
from .builder import TwimlBuilder, render
from .context import TranslationContext
from .play import translate_play
from .speak import translate_speak
from .wait import translate_wait

SOUND_TRANSLATORS = {Play: translate_play, Speak: translate_speak, Wait: translate_wait}


@dataclass(frozen=True)
class SoundTranslation:
    twiml: str
    notes: tuple[Note, ...]
    verbs: int


def translate_sounds(document: Document, context: TranslationContext, *,
                     loop_url: str | None = None) -> SoundTranslation:
    builder = TwimlBuilder(context)
    for element in document.elements:
        translator = SOUND_TRANSLATORS.get(type(element))  # type: ignore[call-overload]
        if translator is None:
            builder.note(getattr(element, "tag", None) or element.TAG, "ignored",
                         "only Play, Speak and Wait play in a sound document", line=element.line)
            continue
        translator(element, builder)
    verbs = builder.verbs
    if loop_url and verbs:
        builder.response.redirect(loop_url, method="POST")
    return SoundTranslation(render(builder.response), tuple(builder.notes), verbs)
