"""The prompts nested in GetDigits/GetInput: Speak, Play and Wait as Gather's Say, Play, Pause.

Twilio's `<Gather>` nests exactly these three, so each goes through its own element's
translator, into the Gather instead of the response.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..plivoxml import Element, Play, Speak, Wait
from .builder import TwimlBuilder
from .play import translate_play
from .speak import translate_speak
from .wait import translate_wait

PROMPT_TRANSLATORS = {Speak: translate_speak, Play: translate_play, Wait: translate_wait}


def translate_prompts(prompts: Iterable[Element], builder: TwimlBuilder) -> None:
    for prompt in prompts:
        PROMPT_TRANSLATORS[type(prompt)](prompt, builder)  # type: ignore[index]
