"""`<Hangup>`: end the call now (or `schedule` seconds from now), optionally as rejected/busy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import TEXT, Integer
from ..model import Element

# Plivo maps these reasons to hangup causes; any other text is a normal hang-up.
REASONS = {"rejected": "CALL_REJECTED", "busy": "USER_BUSY"}


@dataclass(frozen=True)
class Hangup(Element):
    TAG: ClassVar[str] = "Hangup"
    ATTRIBUTES: ClassVar[dict] = {"reason": TEXT, "schedule": Integer(minimum=0)}

    reason: str
    schedule: int
