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


class ElementCannotRun(Exception):
    """The stretch being translated reaches an element the gateway cannot run on Twilio.

    Nothing of that stretch is played (its earlier prompts would lead the caller into a dead
    end): the caller hears the gateway's apology instead, and the app's owner reads the element
    and its line in the log, in `gateway translate` and in `gateway check-apps`."""

    def __init__(self, element: str, line: int | None, reason: str):
        self.element = element
        self.line = line
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}<{self.element}> cannot run on the gateway: {self.reason}"


@dataclass(frozen=True)
class RecordingBooked:
    """A `<Record>` ran in this stretch: the gateway keeps its settings (callbackUrl,
    transcription, fileFormat...) under `key` for the callbacks that come later, and for
    `recordSession` starts a call recording through Twilio's REST API.

    kind: "here" (the caller is recorded now), "session" (the whole call from now on) or
    "next-dial" (startOnDialAnswer: kept for the next <Dial>)."""

    key: str
    kind: str
    settings: tuple[tuple[str, object], ...]

    @property
    def settings_dict(self) -> dict[str, object]:
        return dict(self.settings)


@dataclass(frozen=True)
class MessageQueued:
    """A `<Message>` ran in this stretch: the gateway sends it through Twilio's Messages API
    (a job: the document goes on at once, as on Plivo) and turns Twilio's status callbacks into
    Plivo's delivery reports at `callback_url`. `key` names it (call step and line)."""

    key: str
    destinations: tuple[str, ...]
    text: str
    src: str | None
    callback_url: str | None
    callback_method: str
