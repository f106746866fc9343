"""`<Play>`: an audio file by URL, repeated `loop` times (0 = repeat until the call ends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import Integer
from ..model import Element


@dataclass(frozen=True)
class Play(Element):
    TAG: ClassVar[str] = "Play"
    BODY: ClassVar[str] = "url"
    ATTRIBUTES: ClassVar[dict] = {"loop": Integer(minimum=0)}

    body: str
    loop: int

    @property
    def url(self) -> str:
        return self.body
