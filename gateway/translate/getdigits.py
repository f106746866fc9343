"""`<GetDigits>` -> `<Gather input="dtmf">` whose action comes back to the gateway.

Native: the prompts (Say/Play/Pause), numDigits, finishOnKey, timeout (Twilio waits that long for
the first key after the prompts). The Gather always reports to the gateway, empty results
included (`actionOnEmptyResult`), so that the gateway does what Plivo does and Twilio cannot:
checks the keys against `validDigits` (playing `invalidDigitsSound` and listening again),
listens again after no input up to `retries` attempts, requests Plivo's `action` with `Digits`
(redirect true: its XML takes over; false: in the background while the document goes on), and
goes on with the next element when nothing valid came. `playBeep`: the gateway's beep, played
after the prompts. Nearest behaviour: Twilio has one timeout for the first key and between keys.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather

from ..plivoxml import GetDigits
from .builder import TwimlBuilder
from .outcome import Flow
from .prompts import translate_prompts


def translate_getdigits(menu: GetDigits, builder: TwimlBuilder) -> Flow:
    ctx = builder.context
    gather = Gather(input="dtmf", action=ctx.urls.gather(ctx.step), method="POST",
                    timeout=menu.timeout, numDigits=menu.num_digits,
                    finishOnKey=menu.finish_on_key, actionOnEmptyResult=True)
    with builder.inside(gather):
        translate_prompts(menu.children, builder)
        if menu.play_beep:
            builder.response.play(ctx.urls.beep)
    builder.verbs += 1
    _report(menu, builder)
    return Flow.HANDBACK


def _report(m: GetDigits, builder: TwimlBuilder) -> None:
    def note(status: str, attribute: str | None, message: str) -> None:
        builder.note("GetDigits", status, message, line=m.line, attribute=attribute)  # type: ignore[arg-type]

    if m.num_digits > 1 and m.digit_timeout != m.timeout:
        note("translated", "digitTimeout", f"Twilio has one timeout for the first key and "
             f"between keys: it waits {m.timeout} s between keys too, not {m.digit_timeout} s")
    if m.valid_digits != "1234567890*#":
        note("emulated", "validDigits", "the gateway checks the keys Twilio reports; others "
             "count as an invalid attempt" + (" (invalidDigitsSound played)"
                                            if m.invalid_digits_sound else ""))
    if m.retries > 1:
        note("emulated", "retries", f"the gateway listens again after no or invalid input, up "
             f"to {m.retries} attempts")
    if m.play_beep:
        note("emulated", "playBeep", "the gateway's beep is played after the prompts")
    if m.action:
        note("emulated", "action", f"requested ({m.method}) by the gateway with Digits"
             + ("; its XML replaces the rest of the document" if m.redirect
                else "; in the background, and the document goes on"))
    else:
        note("translated", "action", "no action: the keys are collected and nothing is "
             "requested, as on Plivo")
    if not m.log:
        note("translated", "log", "the gateway never logs the keys (it does not for any menu); "
             "Twilio's own call logs still hold them")
