"""What translating one element means for the rest of the document."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Flow(enum.Enum):
    CONTINUE = "continue"  # the next element is translated into the same TwiML
    HANDBACK = "handback"  # the TwiML returns control to the gateway (Dial action, Redirect)
    END = "end"            # the call ends here; later elements are unreachable


@dataclass(frozen=True)
class ScheduledHangup:
    """Hang the call up `seconds` from now (Plivo `<Hangup schedule>`): a gateway timer."""

    seconds: int
    reason: str
