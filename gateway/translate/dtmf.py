"""`<DTMF>` -> `<Play digits>`: Twilio plays the keys on the call, then goes on.

Plivo's `W` (a 1 s wait) is two of Twilio's `w` (0.5 s each). `async="true"` (Plivo's default:
the next element starts while the tones are sent) has no Twilio equivalent: Twilio finishes the
tones first, a delay of about a tenth of a second per key. Reported.
"""

from __future__ import annotations

from ..plivoxml import DTMF
from .builder import TwimlBuilder
from .outcome import Flow


def twilio_digits(digits: str) -> str:
    return digits.replace("W", "ww")


def translate_dtmf(dtmf: DTMF, builder: TwimlBuilder) -> Flow:
    builder.response.play(digits=twilio_digits(dtmf.digits))
    builder.verbs += 1
    if dtmf.async_:
        builder.note("DTMF", "translated", "async: Twilio sends the tones before the next "
                     "element starts (it has no asynchronous tones)", line=dtmf.line,
                     attribute="async")
    return Flow.CONTINUE
