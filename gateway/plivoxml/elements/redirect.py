"""`<Redirect>`: fetch another Plivo XML document and continue with it instead of this one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import METHOD
from ..model import Element


@dataclass(frozen=True)
class Redirect(Element):
    TAG: ClassVar[str] = "Redirect"
    BODY: ClassVar[str] = "url"
    ATTRIBUTES: ClassVar[dict] = {"method": METHOD}

    body: str
    method: str

    @property
    def url(self) -> str:
        return self.body
