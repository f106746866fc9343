"""digitsMatch on a forward: a pattern typed -> `DialAction=digits` to the Dial's callbackUrl.

The side-stream server (`gateway.media.server`) hears the keys and matches them, as for a room
member; this module is its way into the forward's state (the Dial's settings, kept by
`Forwards.expect` under the call and step). A stream's label names a call and a step: the
caller's own (digitsMatch, `DialDigitsPressedBy=ALeg`) or a dialled callee's, started from its
whisper (digitsMatchBLeg, `BLeg`; `Forwards` notes whose Dial that callee belongs to). The
callback goes through the caller's ordered outbox, with the leg callbacks, so it comes after
`answer`/`connected` and before `hangup` and the action. Once the forward is over
(`Forwards.done` marks it), a match is dropped and the stream closed. Blocking (the store): the
server runs this off its loop.
"""

from __future__ import annotations

from ..conference.digits import Binding
from ..translate.context import call_sid_of
from .forwards import Forwards, dial_key, leg_key


def _step_of(label: str) -> int | None:
    parts = label.split("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


class DialDigits:
    def __init__(self, *, forwards: Forwards):
        self.forwards = forwards
        self.store = forwards.store

    def _resolve(self, label: str) -> tuple[str, str, dict | None, str]:
        """(the caller's CallSid, the callee's or "", the Dial's settings, ALeg | BLeg)."""
        sid, step = call_sid_of(label) or "", _step_of(label)
        if not sid or step is None:
            return sid, "", None, "ALeg"
        settings = self.store.get(dial_key(sid, step))
        if settings is not None:
            return sid, "", settings, "ALeg"
        leg = self.store.get(leg_key(sid))
        if leg is None or leg.get("step") != step:
            return sid, "", None, "ALeg"
        return leg["parent"], sid, self.store.get(dial_key(leg["parent"], step)), "BLeg"

    def binding(self, label: str) -> Binding:
        _, child, settings, pressed_by = self._resolve(label)
        if settings is None:
            return Binding("unknown", ())
        key = "digits_match_b_leg" if pressed_by == "BLeg" else "digits_match"
        patterns = tuple(settings.get(key) or ()) if settings.get("callback_url") else ()
        return Binding("left" if settings.get("over") else "joined", patterns,
                       child or (call_sid_of(label) or ""))

    def matched(self, label: str, pattern: str) -> str:
        call_sid, child, settings, pressed_by = self._resolve(label)
        call = self.forwards.runner.calls.get(call_sid) if settings else None
        if settings is None or call is None:
            return "unknown"
        if settings.get("over"):
            return "left"
        if not settings.get("callback_url"):
            return "no-callback"
        self.forwards.digits(call, settings, pattern, pressed_by, child or None)
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
