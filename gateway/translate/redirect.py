"""`<Redirect>` -> a TwiML `<Redirect>` back to the gateway.

Twilio cannot fetch the app's Plivo XML itself, so it is redirected to the gateway's continue
URL; there the gateway requests the Plivo URL (with Plivo's parameters and signatures, using the
element's method) and translates what it returns.
"""

from __future__ import annotations

from ..plivoxml.elements import Redirect
from .builder import TwimlBuilder
from .outcome import Flow


def translate_redirect(redirect: Redirect, builder: TwimlBuilder) -> Flow:
    builder.response.redirect(builder.context.urls.continue_(builder.context.step),
                              method="POST")
    builder.verbs += 1
    builder.note("Redirect", "emulated", f"the gateway fetches {redirect.url} "
                 f"({redirect.method}) and continues with its XML", line=redirect.line)
    return Flow.HANDBACK
