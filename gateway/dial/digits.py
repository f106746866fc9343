"""digitsMatch on a forward: a pattern the caller typed -> `DialAction=digits` to callbackUrl.

The side-stream server (`gateway.media.server`) hears the caller's keys and matches them, as for
a room member; this module is its way into the forward's state (the Dial's settings, kept by
`Forwards.expect` under the call and step that the stream's label names). The callback goes
through the call's ordered outbox, with the leg callbacks, so it comes after `answer`/`connected`
and before `hangup` and the action. Once the forward is over (`Forwards.done` marks it), a match
is dropped and the stream closed. Blocking (the store): the server runs this off its loop.
"""

from __future__ import annotations

from ..conference.digits import Binding
from ..translate.context import call_sid_of
from .forwards import Forwards, dial_key


def _step_of(label: str) -> int | None:
    parts = label.split("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


class DialDigits:
    def __init__(self, *, forwards: Forwards):
        self.forwards = forwards
        self.store = forwards.store

    def _settings(self, label: str) -> tuple[str, dict | None]:
        call_sid, step = call_sid_of(label) or "", _step_of(label)
        if not call_sid or step is None:
            return call_sid, None
        return call_sid, self.store.get(dial_key(call_sid, step))

    def binding(self, label: str) -> Binding:
        call_sid, settings = self._settings(label)
        if settings is None:
            return Binding("unknown", ())
        patterns = tuple(settings.get("digits_match") or ()) if settings.get(
            "callback_url") else ()
        return Binding("left" if settings.get("over") else "joined", patterns, call_sid)

    def matched(self, label: str, pattern: str) -> str:
        call_sid, settings = self._settings(label)
        call = self.forwards.runner.calls.get(call_sid) if settings else None
        if settings is None or call is None:
            return "unknown"
        if settings.get("over"):
            return "left"
        if not settings.get("callback_url"):
            return "no-callback"
        self.forwards.digits(call, settings, pattern)
        return "sent"


class Digits:
    """What the side-stream server asks, for a room member or a forward: the label says which
    (a room's member first; a label the rooms do not know may be a forward's)."""

    def __init__(self, conference, dial: DialDigits):
        self.conference = conference
        self.dial = dial

    def binding(self, label: str) -> Binding:
        found = self.conference.binding(label)
        return found if found.state != "unknown" else self.dial.binding(label)

    def matched(self, label: str, pattern: str) -> str:
        if self.conference.binding(label).state != "unknown":
            return self.conference.matched(label, pattern)
        return self.dial.matched(label, pattern)
