"""`<DTMF>`: send keypad tones on the call; the keys are the element's text.

Plivo allows 0-9, *, #, w (a 0.5 s wait) and W (1 s); `async` (default true) lets the next
element start while the tones are still being sent. Translation in `gateway.translate.dtmf`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..attributes import BOOLEAN
from ..model import Element

DTMF_KEYS = re.compile(r"[0-9*#wW]+")


@dataclass(frozen=True)
class DTMF(Element):
    TAG: ClassVar[str] = "DTMF"
    BODY: ClassVar[str] = "text"
    ATTRIBUTES: ClassVar[dict] = {"async": BOOLEAN}

    body: str
    async_: bool

    @classmethod
    def build(cls, *, line, values, body, children):
        values = dict(values)
        values["async_"] = values.pop("async")  # `async` is a Python keyword
        return super().build(line=line, values=values, body=body, children=children)

    @property
    def digits(self) -> str:
        return self.body.replace(" ", "")

    def problem(self) -> tuple[str | None, str] | None:
        if not DTMF_KEYS.fullmatch(self.digits):
            return None, (f"{self.body[:40]!r} is not DTMF: only 0-9, *, #, w (wait 0.5 s) and "
                          "W (wait 1 s)")
        return None
