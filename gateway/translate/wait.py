"""`<Wait>` -> `<Pause length>`.

Plivo's `silence="true"` ends the wait early once the caller is silent for `minSilence` ms, and
`beep="true"` ends it at a voicemail beep; Twilio's Pause has neither, so both wait the full
`length` (the nearest behaviour: never shorter than Plivo's upper bound). Reported.
"""

from __future__ import annotations

from ..plivoxml.elements import Wait
from .builder import TwimlBuilder
from .outcome import Flow


def translate_wait(wait: Wait, builder: TwimlBuilder) -> Flow:
    builder.response.pause(length=wait.length)
    builder.verbs += 1
    if wait.silence:
        builder.note("Wait", "translated", "silence detection has no Twilio equivalent: pauses "
                     f"the full {wait.length} s", line=wait.line, attribute="silence")
    if wait.beep:
        builder.note("Wait", "translated", "beep detection has no Twilio equivalent: pauses "
                     f"the full {wait.length} s", line=wait.line, attribute="beep")
    return Flow.CONTINUE
