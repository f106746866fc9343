"""`<PreAnswer>`: no TwiML of its own; the nested elements run in place (`Document.steps`).

Plivo plays them as early media, before the call is answered (no billing, CallStatus ringing).
Twilio answers an incoming call before it plays anything, so they play to an answered call:
the caller hears the same, the call is billed from there, and the app's later requests say
CallStatus in-progress. A GetDigits inside works as anywhere else (Twilio cannot collect keys
from an unanswered call either). Reported.
"""

from __future__ import annotations

from ..plivoxml import PreAnswer
from .builder import TwimlBuilder
from .outcome import Flow


def translate_preanswer(preanswer: PreAnswer, builder: TwimlBuilder) -> Flow:
    if preanswer.children:
        builder.note("PreAnswer", "translated", "Twilio answers before it plays anything: the "
                     f"{len(preanswer.children)} nested element(s) run in place on the answered "
                     "call (billed from here; later requests say CallStatus in-progress)",
                     line=preanswer.line)
    return Flow.CONTINUE
