"""digitsMatch callbacks: a matched pattern -> `ConferenceAction=digits` to the callbackUrl.

The side-stream server (`gateway.media.server`) hears the keys and matches them
(`gateway.media.digits_match`); this module is its way into the conference's state. A digits
callback is numbered in the member's own outbox (`Members.number_callback`), in the same sequence
as its enter and exit: it is only numbered while the member is in the room, so it is never
delivered before the enter or after the exit. Keys pressed before Twilio's join event reached
the gateway wait for it a moment (the caller is in the room already; the event is on its way).
Every call here is blocking (the store): the server runs them off its event loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from .. import deliveries
from .callbacks import member_callback
from .members import Members, member_stream

log = logging.getLogger("gateway.conference.digits")

JOIN_WAIT = 2.0   # seconds a match waits for a late join event before it is dropped
JOIN_POLL = 0.05


@dataclass(frozen=True)
class Binding:
    """What the stream server needs to know of a member when its stream starts."""

    state: str                   # pending | joined | left | unknown
    patterns: tuple[str, ...]
    call_sid: str = ""


class ConferenceDigits:
    def __init__(self, *, store, members: Members):
        self.store = store
        self.members = members

    def binding(self, label: str) -> Binding:
        member = self.members.get(label)
        if member is None:
            return Binding("unknown", ())
        return Binding(member.state, tuple(member.settings.get("digits_match") or ()),
                       member.call_sid)

    def matched(self, label: str, pattern: str) -> str:
        """Send `digits` for the pattern; returns sent | left | not-joined | no-callback |
        unknown."""
        member = self.members.get(label)
        if member is None:
            return "unknown"
        if not member.settings.get("callback_url"):
            return "no-callback"  # numbering it would leave a hole in the member's outbox
        deadline = time.monotonic() + JOIN_WAIT
        while True:
            transition = self.members.number_callback(label, "digits")
            if transition.numbered:
                break
            member = transition.member  # not numbered: not (or no longer) in the room
            if member is None:
                return "unknown"
            if member.state != "pending" or time.monotonic() >= deadline:
                if member.state == "pending":
                    log.warning("member %s: keys %s matched but Twilio never reported it in "
                                "the room: nothing sent", label, pattern)
                return "left" if member.state == "left" else "not-joined"
            time.sleep(JOIN_POLL)
        member = transition.member
        url = member.settings["callback_url"]
        params = {**member_callback(member, "digits"), "ConferenceDigitsMatch": pattern}
        for number, kind in transition.numbered:
            deliveries.enqueue(self.store, member_stream(member.label), number, {
                "url": url, "method": member.settings.get("callback_method", "POST"),
                "app": member.app, "kind": kind, "params": params})
        return "sent"
