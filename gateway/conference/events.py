"""Twilio's conference and recording events -> Plivo's callbacks, and the emulations they drive.

Twilio sends every event of a room to one gateway URL (it keeps only the first participant's
statusCallback); each member's Plivo settings come from the store. Duplicates are dropped by
(ConferenceSid, SequenceNumber, event). Reordering is absorbed by the member state machine: a
leave processed before its join first completes the join, so enter always precedes exit, and a
stale speech event never takes the floor back.

Emulations: stayAlone=false (end the room when it drops to one after having two), timeLimit (a
durable timer that ends the room), enterSound/exitSound URLs (a REST announcement to the room).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping

from .. import deliveries, jobs
from ..calls import call_key
from ..translate.context import (
    CONFERENCE_ANNOUNCE_PATH,
    GatewayUrls,
    call_sid_of,
    member_label,
)
from .callbacks import member_callback, record_callback
from .members import (
    MEMBER_TTL,
    ROOM_TTL,
    Member,
    Members,
    Room,
    floor_listeners_key,
    member_key,
    member_stream,
    room_key,
    seen_key,
)

log = logging.getLogger("gateway.conference")

PARTICIPANT_GONE = {"participant_hung_up"}
SPEECH = "participant-speech-start"
JOIN, LEAVE = "participant-join", "participant-leave"


class ConferenceEvents:
    def __init__(self, *, store, members: Members, calls, mappings, urls: GatewayUrls):
        self.store = store
        self.members = members
        self.calls = calls
        self.mappings = mappings
        self.urls = urls
        self.handlers = {
            JOIN: self.participant_joined,
            LEAVE: self.participant_left,
            SPEECH: self.participant_speaking,
            "conference-start": self.conference_started,
            "conference-end": self.conference_ended,
        }

    # -- entry points --------------------------------------------------------------------------
    def handle(self, event: Mapping[str, str]) -> str:
        """Process one conference status callback; returns what was done (for logs/tests)."""
        conference_sid = event.get("ConferenceSid", "")
        name = event.get("StatusCallbackEvent", "")
        if not conference_sid or not name:
            log.warning("conference event without ConferenceSid/StatusCallbackEvent: ignored")
            return "ignored"
        skipped = self.needs_no_work(event)
        if skipped:
            return skipped
        handler = self.handlers[name]
        sequence = event.get("SequenceNumber", "")
        dedupe = f"{sequence}:{event.get('CallSid', '')}" if sequence else (
            f"{event.get('CallSid', '')}:{event.get('Timestamp', '')}")
        in_transaction = name in (JOIN, LEAVE)  # their de-duplication is part of it
        if not in_transaction and not self.members.first_seen(conference_sid, dedupe, name):
            log.info("conference %s: duplicate %s #%s dropped", conference_sid, name, sequence)
            return "duplicate"
        try:
            done = (self.member_event(event, name, seen_key(conference_sid, dedupe, name))
                    if in_transaction else handler(event))
        except Exception:
            # Processing is idempotent: let the same event run again (spooled, or resent).
            with contextlib.suppress(Exception):
                self.members.forget_seen(conference_sid, dedupe, name)
            raise
        if done == "duplicate":
            log.info("conference %s: duplicate %s #%s dropped", conference_sid, name, sequence)
        return done

    def needs_no_work(self, event: Mapping[str, str]) -> str | None:
        """Why an event needs nothing done (no write, nothing sent), or None if it needs
        processing. Speaker events are most of what Twilio sends (one per talk spurt of every
        participant), so this is the cheap first look the web layer takes before anything else
        (`twilio_side.speaker_events`); `handle` starts with it too."""
        name = event.get("StatusCallbackEvent", "")
        if name not in self.handlers:  # speech-stop, mute, hold...: nothing to do or remember
            return "not-needed"
        if name == SPEECH and not self.members.floor_wanted(event.get("ConferenceSid", "")):
            return "no-floor-listener"  # the common case: one read, no write, nothing sent
        return None

    def member_for(self, event: Mapping[str, str]) -> Member | None:
        label = event.get("ParticipantLabel", "")
        member = self.members.get(label) if label else None
        if member is None:
            label = self.label_from_call(event)
            member = self.members.get(label) if label else None
        if member is None:
            self.unknown(event)
        return member

    # -- participants ---------------------------------------------------------------------------
    def participant_joined(self, event: Mapping[str, str]) -> str:
        """A join (the transaction of `member_event`); `handle` is the usual way in."""
        return self.member_event(event, JOIN, None)

    def participant_left(self, event: Mapping[str, str]) -> str:
        return self.member_event(event, LEAVE, None)

    def member_event(self, event: Mapping[str, str], name: str, seen: str | None,
                     *, read_call: bool | None = None) -> str:
        """A join or a leave in one store transaction: the event's de-duplication mark, the
        member (taken from its call's record the first time), its room, and its callbacks with
        their flush. A leave processed before its join completes the join first. What Twilio's
        REST API must do about it (sounds, timers, ending the room) follows the transaction.

        `read_call`: whether the transaction reads the call's record too (a member is in it
        until its first event; the record carries the Plivo document, so a leave, whose member
        has its own record by then, does without it unless it finds none)."""
        if read_call is None:
            read_call = name == JOIN
        conference_sid = event["ConferenceSid"]
        label = event.get("ParticipantLabel", "") or self.label_from_call(event)
        if not label:
            return self.unknown(event)
        now = time.time()
        stream = member_stream(label)
        call = call_key(call_sid_of(label) or event.get("CallSid", "") or "-")
        floor = floor_listeners_key(conference_sid)
        keys = {member_key(label): MEMBER_TTL, room_key(conference_sid): ROOM_TTL,
                floor: ROOM_TTL, **deliveries.stage_keys(stream)}  # the floor is mostly read
        if read_call:
            keys[call] = MEMBER_TTL  # only read
        if seen:
            keys[seen] = ROOM_TTL
        hung_up = event.get("ReasonParticipantLeft") in PARTICIPANT_GONE or event.get(
            "ParticipantCallStatus") == "completed"
        outcome: dict = {}
        staged: dict = {}

        def change(current: dict) -> dict:
            outcome.clear()
            staged.clear()
            if seen and current[seen] is not None:
                outcome["done"] = "duplicate"
                return {}
            changes: dict = {seen: {"at": now}} if seen else {}
            data = current[member_key(label)] or pending_in_call(current.get(call), label)
            if data is None:
                outcome["done"] = "unknown" if read_call else "read-call"
                return changes if read_call else {}
            member = Member.from_dict(data)
            settings = member.settings
            wanted = ("enter", "exit") if settings.get("callback_url") else ()
            room_data = current[room_key(conference_sid)]
            room = Room.from_dict(room_data) if room_data else None
            numbered: tuple = ()
            if name == JOIN or member.state == "pending":
                if room is None:
                    room = self.opening(conference_sid, member)
                room.enter(label, settings.get("stay_alone", True))
                if (settings.get("floor_event") and settings.get("callback_url")
                        and current[floor] is None):  # its speaker events matter from now on
                    changes[floor] = {"since": now}
                entered = member.join(conference_sid, room.members[label], wanted[:1])
                outcome["entered"] = entered is not None
                numbered += entered if entered is not None else member.numbered_already(
                    ("enter",))
            if name == LEAVE:
                left = member.leave(wanted[1:], "completed" if hung_up else "in-progress")
                outcome["left"] = left is not None
                numbered += left if left is not None else member.numbered_already(("exit",))
                if room is not None:
                    room.leave(label)
            changes[member_key(label)] = member.to_dict()
            if room is not None:
                changes[room_key(conference_sid)] = room.to_dict()
            if numbered:
                changes.update(deliveries.stage(current, stream, self.requests(
                    member, numbered), now, staged))
            outcome.update(member=member, room=room)
            return changes

        self.store.update_many(keys, change)
        deliveries.queue_staged(stream, staged, now)
        done = outcome.get("done")
        if done == "read-call":  # no record of its own yet: the member is still in its call's
            return self.member_event(event, name, seen, read_call=True)
        if done == "unknown":
            return self.unknown(event)
        if done:
            return done
        member, room = outcome["member"], outcome["room"]
        if outcome.get("entered") is not None:
            self.after_join(conference_sid, member, outcome["entered"])
        if name == JOIN:
            return "joined" if outcome["entered"] else "already-joined"
        self.after_leave(conference_sid, member, room, outcome["left"])
        return "left"

    def after_join(self, conference_sid: str, member: Member, entered: bool) -> None:
        settings = member.settings
        if settings.get("time_limit", 0) > 0:
            self.start_time_limit(conference_sid, settings["time_limit"])
        if entered and settings.get("enter_sound", "").startswith("http"):
            self.announce(conference_sid, member, "enter")

    def after_leave(self, conference_sid: str, member: Member, room: Room | None,
                    left: bool) -> None:
        if room is None or room.ended:
            return
        if left and room.present and member.settings.get("exit_sound", "").startswith("http"):
            self.announce(conference_sid, member, "exit")
        if room.min_two and room.peak >= 2 and len(room.present) == 1:
            log.info("conference %s: one member left alone and stayAlone=false: ending it",
                     conference_sid)
            jobs.schedule("end_conference", {"conference_sid": conference_sid},
                          job_id=f"end:{conference_sid}", store=self.store)

    def opening(self, conference_sid: str, member: Member) -> Room:
        """The room as Twilio's first event for it opens it."""
        app = self.mappings.app_named(member.app)
        return Room(conference_sid=conference_sid, twilio_room=member.twilio_room,
                    account=app.account if app else "", room=member.room)

    def label_from_call(self, event: Mapping[str, str]) -> str:
        """An event without a ParticipantLabel: the member of the call's current step."""
        call = self.calls.get(event["CallSid"]) if event.get("CallSid") else None
        return member_label(call.call_sid, call.step) if call is not None else ""

    @staticmethod
    def unknown(event: Mapping[str, str]) -> str:
        log.warning("conference %s: %s for unknown call %s: nothing sent",
                    event.get("ConferenceSid"), event.get("StatusCallbackEvent"),
                    event.get("CallSid", "-"))
        return "unknown"

    def participant_speaking(self, event: Mapping[str, str]) -> str:
        member = self.member_for(event)
        if member is None:
            return "unknown"
        try:
            sequence = int(event.get("SequenceNumber") or 0)
        except ValueError:
            sequence = 0
        if not self.members.take_floor(event["ConferenceSid"], member.label, sequence):
            return "no-floor-change"
        if not (member.settings.get("floor_event") and member.settings.get("callback_url")):
            return "floor"
        transition = self.members.number_callback(member.label, "floor")
        if transition.member is not None:
            self.send(transition.member, transition.numbered)
        return "floor"

    # -- the room ------------------------------------------------------------------------------
    def conference_started(self, event: Mapping[str, str]) -> str:
        self.members.update_room(event["ConferenceSid"], lambda room: (
            room if room.started_at else _set(room, started_at=time.time())))
        return "started"

    def conference_ended(self, event: Mapping[str, str]) -> str:
        self.members.update_room(event["ConferenceSid"], lambda room: _set(room, ended=True))
        return "ended"

    def start_time_limit(self, conference_sid: str, seconds: int) -> None:
        """The room's end is fixed by its first member with a timeLimit; booking the timer is
        idempotent (one job per room), so a join processed again books the same one."""
        def fix_end(room):
            if room.time_limit_at is not None:
                return None
            room.time_limit_at = (room.started_at or time.time()) + seconds
            return room

        room = self.members.update_room(conference_sid, fix_end)
        if room is not None and room.time_limit_at is not None:
            jobs.schedule("end_conference", {"conference_sid": conference_sid},
                          job_id=f"timelimit:{conference_sid}",
                          delay=max(0.0, room.time_limit_at - time.time()), store=self.store)

    def announce(self, conference_sid: str, member: Member, sound: str) -> None:
        url = self.urls.url(CONFERENCE_ANNOUNCE_PATH, member=member.label, sound=sound)
        jobs.schedule("announce", {"conference_sid": conference_sid, "url": url},
                      store=self.store)

    # -- recordings ----------------------------------------------------------------------------
    def recording(self, event: Mapping[str, str]) -> str:
        conference_sid = event.get("ConferenceSid", "")
        status = event.get("RecordingStatus", "")
        if not conference_sid:
            return "ignored"
        seen = f"{event.get('RecordingSid')}:{status}"
        if not self.members.first_seen(conference_sid, seen, "recording"):
            return "duplicate"
        try:
            return self._recorded(conference_sid, status, event)
        except Exception:
            with contextlib.suppress(Exception):
                self.members.forget_seen(conference_sid, seen, "recording")
            raise

    def _recorded(self, conference_sid: str, status: str, event: Mapping[str, str]) -> str:
        recording = {k: event.get(k, "") for k in (
            "RecordingSid", "RecordingUrl", "RecordingStatus", "RecordingDuration",
            "RecordingStartTime", "RecordingChannels", "RecordingSource")}
        room = self.members.update_room(conference_sid, lambda r: _set(r, recording=recording))
        if room is None:
            log.warning("recording %s for unknown conference %s: nothing sent",
                        event.get("RecordingSid"), conference_sid)
            return "unknown"
        if status != "completed":
            return "noted"
        sent: set[tuple[str, str]] = set()
        for label in room.members:
            member = self.members.get(label)
            if member is None or not member.settings.get("record"):
                continue
            url, method = member.settings.get("callback_url"), member.settings["callback_method"]
            if not url or (url, method) in sent:
                continue
            sent.add((url, method))
            deliveries.enqueue_next(self.store, f"record:{conference_sid}", {
                "url": url, "method": method, "app": member.app, "kind": "record",
                "params": record_callback(member.room, conference_sid, recording,
                                          member.settings["record_file_format"])})
        self.transcribe(conference_sid, room, event)
        return "recorded"

    def transcribe(self, conference_sid: str, room, event: Mapping[str, str]) -> None:
        """Each recording member's transcriptionUrl (once per URL) gets the room's recording
        transcribed by the embedded engine: Twilio does not transcribe conference recordings."""
        from ..recording.voicemail import transcribe_later  # the recording package imports us

        sent: set[tuple[str, str]] = set()
        for label in room.members:
            member = self.members.get(label)
            if member is None or not member.settings.get("record"):
                continue
            url = member.settings.get("transcription_url")
            method = member.settings.get("transcription_method", "POST")
            if not url or (url, method) in sent:
                continue
            sent.add((url, method))
            transcribe_later(self.store, f"record:{conference_sid}", event, url=url,
                             method=method, app=member.app,
                             call_uuid=member.call_params.get("CallUUID", ""))

    # -- delivery ------------------------------------------------------------------------------
    def send(self, member: Member, numbered) -> None:
        if numbered:
            deliveries.enqueue_many(self.store, member_stream(member.label),
                                    self.requests(member, numbered))

    @staticmethod
    def requests(member: Member, numbered) -> dict[int, dict]:
        """The member's numbered callbacks as outbox requests (pure)."""
        settings = member.settings
        return {number: {
            "url": settings["callback_url"], "method": settings["callback_method"],
            "app": member.app, "kind": kind,
            "params": member_callback(member, kind, call_status=(
                member.exit_status if kind == "exit" else "in-progress"))}
            for number, kind in numbered}


def pending_in_call(call: dict | None, label: str) -> dict | None:
    """The member as its call's record holds it until it has a record of its own."""
    pending = call.get("member") if call else None
    return pending if pending and pending.get("label") == label else None


def _set(room, **changes):
    for key, value in changes.items():
        setattr(room, key, value)
    return room
