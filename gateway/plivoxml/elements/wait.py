"""`<Wait>`: a pause of `length` seconds; silence/minSilence/beep refine when it ends on Plivo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import BOOLEAN, Integer
from ..model import Element


@dataclass(frozen=True)
class Wait(Element):
    TAG: ClassVar[str] = "Wait"
    ATTRIBUTES: ClassVar[dict] = {
        "length": Integer(minimum=1),
        "silence": BOOLEAN,
        "minSilence": Integer(minimum=0),
        "beep": BOOLEAN,
    }

    length: int
    silence: bool
    min_silence: int
    beep: bool
