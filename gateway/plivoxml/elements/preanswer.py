"""`<PreAnswer>`: what Plivo plays before answering (early media), nested in it.

Plivo takes no attributes here (the open-source engine refuses any) and nests Speak, Play, Wait,
GetDigits, Redirect, Message and DTMF. Twilio answers before it plays anything, so the nested
elements run in place, with the call answered (`Document.steps`; reported by the translator in
`gateway.translate.preanswer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..model import Element


@dataclass(frozen=True)
class PreAnswer(Element):
    TAG: ClassVar[str] = "PreAnswer"
    CHILDREN: ClassVar[tuple[str, ...]] = ("Speak", "Play", "Wait", "GetDigits", "Redirect",
                                           "Message", "DTMF")

    children: tuple[Element, ...]
