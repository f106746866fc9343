"""`<Hangup>` -> `<Hangup>` or `<Reject>`; `schedule` becomes a gateway timer.

`reason="rejected"|"busy"` rejects the call with that reason when nothing has been played yet
(Twilio's Reject only refuses an unanswered call); later in the call it is a plain hang-up.
`schedule="N"` (N > 0): Plivo hangs up N seconds later and goes on with the next element now;
the gateway schedules a durable timer that ends the call through Twilio's REST API.
"""

from __future__ import annotations

from ..plivoxml.elements import Hangup
from ..plivoxml.elements.hangup import REASONS
from .builder import TwimlBuilder
from .outcome import Flow, ScheduledHangup


def translate_hangup(hangup: Hangup, builder: TwimlBuilder) -> Flow:
    if hangup.reason and hangup.reason not in REASONS:
        builder.note("Hangup", "translated", f"reason {hangup.reason!r} is not rejected/busy: a "
                     "normal hang-up, as Plivo does", line=hangup.line, attribute="reason")
    if hangup.schedule > 0:
        builder.effects.append(ScheduledHangup(hangup.schedule, hangup.reason))
        builder.note("Hangup", "emulated", f"hang-up scheduled in {hangup.schedule} s by a "
                     "gateway timer; the document goes on", line=hangup.line,
                     attribute="schedule")
        return Flow.CONTINUE
    if hangup.reason in REASONS:
        if builder.nothing_played_yet:
            builder.response.reject(reason=hangup.reason)
            builder.rejected = hangup.reason  # the hangup request reports Plivo's cause
        else:
            builder.response.hangup()
            builder.note("Hangup", "translated", f"reason {hangup.reason!r}: the call is "
                         "already answered, so Twilio hangs up instead of rejecting",
                         line=hangup.line, attribute="reason")
    else:
        builder.response.hangup()
    builder.verbs += 1
    return Flow.END
