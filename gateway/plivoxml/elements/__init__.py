"""The registry of Plivo elements: supported ones by class, the rest of the SDK's by name.

Supported elements are parsed into typed models; the other elements of the Plivo SDK parse into
`UnsupportedElement` and are reported, never silently dropped; anything else is an error, as on
Plivo ("unrecognized element").
"""

from __future__ import annotations

from ..model import Element
from .conference import Conference
from .dial import Dial, Number, User
from .dtmf import DTMF
from .getdigits import GetDigits
from .getinput import GetInput
from .hangup import Hangup
from .message import Message
from .multipartycall import MultiPartyCall
from .play import Play
from .preanswer import PreAnswer
from .record import Record
from .redirect import Redirect
from .speak import SSML_TAGS, Speak, Ssml
from .stream import Stream
from .wait import Wait

SUPPORTED: dict[str, type[Element]] = {
    cls.TAG: cls for cls in (Conference, Speak, Play, Wait, Redirect, Hangup, GetDigits, GetInput,
                             DTMF, PreAnswer, Record, Dial, Number, User, Stream,
                             Message, MultiPartyCall)
}

# Plivo SDK elements not translated yet, with the children the SDK allows in each: none now
# (kept so that the next element Plivo adds is parsed and reported, never dropped).
NOT_YET: dict[str, tuple[str, ...]] = {}

# What <Response> may contain directly (the SDK's ResponseElement nestables).
RESPONSE_CHILDREN = ("Conference", "Dial", "DTMF", "GetDigits", "GetInput", "Hangup", "Message",
                     "Play", "PreAnswer", "Record", "Redirect", "Speak", "Wait", "MultiPartyCall",
                     "Stream")

__all__ = ["DTMF", "NOT_YET", "RESPONSE_CHILDREN", "SSML_TAGS", "SUPPORTED", "Conference", "Dial",
           "GetDigits", "GetInput", "Hangup", "Message", "MultiPartyCall", "Number", "Play",
           "PreAnswer", "Record", "Redirect", "Speak", "Ssml", "Stream", "User", "Wait"]
