"""`<Play>` -> `<Play>`: same URL and loop (Plivo's loop 0, 'repeat', is Twilio's loop 0)."""

from __future__ import annotations

from ..plivoxml.elements import Play
from .builder import TwimlBuilder
from .outcome import Flow


def translate_play(play: Play, builder: TwimlBuilder) -> Flow:
    builder.response.play(play.url, loop=play.loop)
    builder.verbs += 1
    return Flow.CONTINUE
