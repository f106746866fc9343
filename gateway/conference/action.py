"""The member leaves the room (Twilio's Dial action): Plivo's action URL and the rest.

As Plivo: if the caller hung up, nothing is requested. If the member never got in (the room was
full), the Conference is skipped, its action too, and the next element runs. Otherwise, with an
action URL, it is requested with ConferenceName, ConferenceUUID, ConferenceMemberID (and
RecordUrl when recorded), redirect true/false as `gateway.actions` says. Without an action URL
the document goes on. A member with digitsMatch had a side stream: whatever TwiML follows stops
it first (`<Stop><Stream name=label>`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from .. import deliveries
from ..actions import follow_action
from ..runner import CallRunner
from ..translate.builder import EMPTY_TWIML
from ..translate.conference import has_side_stream
from ..translate.context import member_label
from .callbacks import action_params
from .members import Member, Members, member_stream

log = logging.getLogger("gateway.conference")

JOIN_WAIT = 2.0  # how long the action waits for a late join event before going on without IDs
REFUSED = {"failed", "busy", "no-answer", "canceled"}


class ConferenceExit:
    def __init__(self, *, runner: CallRunner, members: Members, store):
        self.runner = runner
        self.members = members
        self.store = store

    def member_left(self, twilio: Mapping[str, str], step: int | None) -> str:
        call_sid = twilio.get("CallSid", "")
        deadline = time.monotonic() + self.runner.budget
        if twilio.get("CallStatus") in ("completed", "canceled", "failed", "busy", "no-answer"):
            # The caller hung up: Plivo requests no action URL after a hang-up.
            return EMPTY_TWIML
        call, app = self.runner.load(call_sid)
        self.runner.require_current_step(call, step)
        member = self.members.get(member_label(call_sid, step if step is not None else call.step))
        if member is None:
            log.warning("call %s: left a room the gateway has no record of; going on",
                        call_sid)
            return self.runner.continue_document(call, app, deadline)
        stop = (member.label,) if has_side_stream(member.settings.get("digits_match"),
                                                  member.settings.get("callback_url")) else ()
        if member.state == "pending":
            if twilio.get("DialCallStatus") in REFUSED:
                log.info("call %s: not admitted to room %r (full?): Conference and its action "
                         "skipped", call_sid, member.room)
                return self.runner.continue_document(call, app, deadline, stop)
            member = self.wait_for_join(member)
        action = member.settings.get("action")
        if not action:
            return self.runner.continue_document(call, app, deadline, stop)
        room = self.members.room(member.conference_sid) if member.conference_sid else None
        params = action_params(member, room.recording if room else None)
        def in_background(request: dict) -> None:
            # Numbered in the member's stream: after its enter and exit callbacks.
            transition = self.members.number_callback(member.label, "action",
                                                      only_if_joined=False)
            for number, kind in transition.numbered:
                deliveries.enqueue(self.store, member_stream(member.label), number,
                                   {**request, "kind": kind})

        return follow_action(self.runner, call, app, url=action,
                             method=member.settings.get("method", "POST"), params=params,
                             redirect=member.settings.get("redirect", True), deadline=deadline,
                             send_in_background=in_background, stop_streams=stop)

    def wait_for_join(self, member: Member) -> Member:
        """The join event may still be on its way: give it a moment, bounded."""
        until = time.monotonic() + JOIN_WAIT
        while time.monotonic() < until:
            time.sleep(0.05)
            latest = self.members.get(member.label)
            if latest is not None and latest.state != "pending":
                return latest
        log.warning("call %s: no join event for room %r yet; action sent without member IDs",
                    member.call_sid, member.room)
        return member
