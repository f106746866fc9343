"""Rooms and members in the shared store, changed only by atomic, idempotent transitions.

A member is one call's stay in one room, created when the gateway hands Twilio a Conference
(state `pending`), `joined` when Twilio reports it in the room, `left` when it leaves. It is keyed
by the participantLabel the gateway gave Twilio (CallSid-step), so every event finds the right
member. A room is keyed by Twilio's ConferenceSid; it assigns member IDs 1, 2, 3... in the order
joins are processed, whatever worker or machine processes them, with no gap or duplicate.

Callbacks for one member are numbered in the same transition that decides them, so they are
delivered in that order (an enter never after its exit) even when events arrive out of order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..deliveries import outbox_key
from ..plivoxml.elements.conference import Conference
from ..plivoxml.parser import default_values
from ..state import Store, without_defaults
from ..translate.context import call_sid_of

JOIN_LEAVE = ("enter", "exit")  # callbacks numbered once per member
MEMBER_TTL = 26 * 3600.0
ROOM_TTL = 26 * 3600.0
ENDED_TTL = 3600.0


@dataclass
class Member:
    label: str                      # CallSid-step, the Twilio participantLabel
    call_sid: str
    step: int
    app: str
    room: str                       # the room as the app wrote it
    twilio_room: str
    settings: dict                  # the Conference element's attributes (model field names)
    call_params: dict               # Plivo session params of the call
    state: str = "pending"          # pending -> joined -> left
    conference_sid: str | None = None
    member_id: int | None = None
    joined_at: float | None = None
    left_at: float | None = None
    callbacks: int = 0              # callbacks numbered so far (their order of delivery)
    numbers: dict[str, int] = field(default_factory=dict)  # enter/exit -> its number
    exit_status: str = "in-progress"  # CallStatus of the exit callback
    wait_twiml: str | None = None   # the translated waitSound, fetched once

    def to_dict(self) -> dict:
        # Shallow (asdict deep-copies, slowly), without what is still at its default: fields,
        # and the Conference's attributes the app left as Plivo's (`from_dict` restores both).
        # A member travels in its call's record, written on every answer, and is written at
        # every event: half its size was defaults.
        data = without_defaults(self)
        data["settings"] = {name: value for name, value in self.settings.items()
                            if _json_shape(value) != _STORED_DEFAULTS.get(name, _NONE)}
        return data

    def number(self, kinds: tuple[str, ...], once: tuple[str, ...] = ()
               ) -> tuple[tuple[int, str], ...]:
        """Give the next numbers to these callbacks; `once` kinds keep theirs (enter, exit)."""
        numbered = []
        for kind in kinds:
            self.callbacks += 1
            numbered.append((self.callbacks, kind))
            if kind in once:
                self.numbers[kind] = self.callbacks
        return tuple(numbered)

    def join(self, conference_sid: str, member_id: int, kinds: tuple[str, ...]
             ) -> tuple[tuple[int, str], ...] | None:
        """pending -> joined, numbering `kinds`; None (nothing changed) if not pending."""
        if self.state != "pending":
            return None
        self.state, self.conference_sid, self.member_id = "joined", conference_sid, member_id
        self.joined_at = time.time()
        return self.number(kinds, once=JOIN_LEAVE)

    def leave(self, kinds: tuple[str, ...], exit_status: str
              ) -> tuple[tuple[int, str], ...] | None:
        """joined -> left, numbering `kinds`; None (nothing changed) if not joined."""
        if self.state != "joined":
            return None
        self.state, self.left_at, self.exit_status = "left", time.time(), exit_status
        return self.number(kinds, once=JOIN_LEAVE)

    def numbered_already(self, kinds: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
        """The numbers these once-only callbacks got (to send again: harmless, see
        `Transition`)."""
        return tuple((self.numbers[k], k) for k in kinds if k in self.numbers)

    @classmethod
    def from_dict(cls, data: dict) -> Member:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["settings"] = {**SETTING_DEFAULTS, **data.get("settings", {})}
        return cls(**known)


def _json_shape(value: object) -> object:
    """A value as JSON gives it back (settings are compared stored or not)."""
    return list(value) if isinstance(value, tuple) else value


# The Conference attributes a member keeps (model field names), at Plivo's defaults (immutable
# values, shared by every member read back). A default changed here would apply to members
# already stored without that attribute.
SETTING_DEFAULTS = {Conference.field_for(name): value
                    for name, value in default_values(Conference).items()}
_STORED_DEFAULTS = {name: _json_shape(value) for name, value in SETTING_DEFAULTS.items()}
_NONE = object()  # no default: always stored


@dataclass
class Room:
    conference_sid: str
    twilio_room: str
    account: str
    room: str
    members: dict[str, int] = field(default_factory=dict)   # label -> member ID
    present: list[str] = field(default_factory=list)        # labels in the room now
    peak: int = 0                    # most members present at once
    min_two: bool = False            # a member had stayAlone=false (Plivo's mintwo)
    floor: str | None = None         # label of the floor holder
    floor_sequence: int = 0          # SequenceNumber of the event that gave the floor
    started_at: float | None = None
    ended: bool = False
    time_limit_at: float | None = None  # when the room's timeLimit ends it
    recording: dict | None = None    # Twilio's recording parameters, once known

    def to_dict(self) -> dict:
        return without_defaults(self)  # `from_dict` restores the defaults

    def enter(self, label: str, stay_alone: bool) -> None:
        """Give the member its ID (once) and count it present."""
        if label not in self.members:
            self.members[label] = len(self.members) + 1
        if label not in self.present:
            self.present.append(label)
        self.peak = max(self.peak, len(self.present))
        self.min_two = self.min_two or not stay_alone

    def leave(self, label: str) -> bool:
        """Count the member gone; False if it was not present (leaving twice is fine)."""
        if label not in self.present:
            return False
        self.present.remove(label)
        if self.floor == label:
            self.floor = None
        return True

    @classmethod
    def from_dict(cls, data: dict) -> Room:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Transition:
    """What one atomic change decided: the member after it, and the callbacks it numbered.

    A change already applied (a repeated event, or one processed again after a failure) is not
    applied twice, but still returns the numbers it gave enter/exit: sending them again is
    harmless (an outbox keeps one request per number) and makes the processing retryable.
    """

    member: Member | None
    numbered: tuple[tuple[int, str], ...] = ()   # (number, kind) of callbacks to send
    changed: bool = False


def member_key(label: str) -> str:
    return f"member:{label}"


def member_stream(label: str) -> str:
    """The delivery stream of a member's requests (its callbacks, then its room's action), sent
    in order (`deliveries`)."""
    return f"member:{label}"


def room_key(conference_sid: str) -> str:
    return f"room:{conference_sid}"


def seen_key(conference_sid: str, dedupe: str, event: str) -> str:
    """The mark of one of Twilio's events, processed once (see `first_seen`)."""
    return f"seen:{conference_sid}:{dedupe}:{event}"


def floor_listeners_key(conference_sid: str) -> str:
    return f"floor-listeners:{conference_sid}"


class Members:
    """Members and rooms over a Store.

    A pending member travels in its call's record (written anyway when the gateway answers
    Twilio: one write instead of two on the voice path) and gets a record of its own the first
    time anything asks for it (its join event, its Dial action, its wait music), which always
    happens before the call can move on to another room.
    """

    def __init__(self, store: Store, calls=None):
        self.store = store
        self.calls = calls

    # -- members -------------------------------------------------------------------------------
    def expect(self, member: Member) -> None:
        """The gateway just handed Twilio this Conference: the member is pending."""
        self.store.put(member_key(member.label), member.to_dict(), MEMBER_TTL)

    def get(self, label: str) -> Member | None:
        data = self.store.get(member_key(label))
        if data is None and self.calls is not None:
            data = self._from_call(label)
        return Member.from_dict(data) if data else None

    def _from_call(self, label: str) -> dict | None:
        call_sid = call_sid_of(label)
        call = self.calls.get(call_sid) if call_sid else None
        pending = call.member if call else None
        if not pending or pending.get("label") != label:
            return None
        if self.store.put_if_absent(member_key(label), pending, MEMBER_TTL):
            return pending  # what was just written: no need to read it back
        return self.store.get(member_key(label))

    def _transition(self, label: str, change, once: tuple[str, ...] = ()) -> Transition:
        """Apply change(Member) -> (Member, kinds) | None atomically; number the callbacks.

        `once`: kinds numbered at most once per member (enter, exit); when the change does not
        apply, their existing numbers are returned, so the caller can send them again."""
        outcome: dict = {}

        def fn(current: dict | None) -> dict | None:
            outcome.clear()
            if current is None:
                return None
            member = Member.from_dict(current)
            result = change(member)
            if result is None:
                outcome["numbered"] = member.numbered_already(once)
                return current
            member, kinds = result
            outcome["numbered"] = member.number(kinds, once)
            outcome["changed"] = True
            return member.to_dict()

        written = self.store.update(member_key(label), fn, MEMBER_TTL)
        if written is None:
            return Transition(None)
        return Transition(Member.from_dict(written), outcome.get("numbered", ()),
                          outcome.get("changed", False))

    def mark_joined(self, label: str, conference_sid: str, member_id: int,
                    callback_kinds: tuple[str, ...]) -> Transition:
        def change(m: Member):
            joined = m.join(conference_sid, member_id, ())
            return None if joined is None else (m, callback_kinds)
        return self._transition(label, change, once=("enter",))

    def mark_left(self, label: str, callback_kinds: tuple[str, ...],
                  exit_status: str = "in-progress") -> Transition:
        def change(m: Member):
            left = m.leave((), exit_status)
            return None if left is None else (m, callback_kinds)
        return self._transition(label, change, once=("exit",))

    def remember_wait_music(self, label: str, twiml: str) -> None:
        def keep(current: dict | None) -> dict | None:
            return {**current, "wait_twiml": twiml} if current else None
        self.store.update(member_key(label), keep, MEMBER_TTL)

    def holding_back(self, labels: list[str]) -> str | None:
        """Why a request that must come after these members' callbacks (the call's hangup)
        cannot go yet: "pending" (a join may still be reported), "joined" (the exit is still to
        come), "delivering" (callbacks still in the outbox); None when all are settled."""
        for label in labels:
            member = self.get(label)
            if member is None:
                continue
            if member.state in ("pending", "joined"):
                return member.state
            box = self.store.get(outbox_key(member_stream(label)))
            if box and box["items"]:
                return "delivering"
        return None

    def number_callback(self, label: str, kind: str, *, only_if_joined: bool = True
                        ) -> Transition:
        """Number one more callback (floor, digits...) for a member still in the room."""
        def change(m: Member):
            if only_if_joined and m.state != "joined":
                return None
            return m, (kind,)
        return self._transition(label, change)

    # -- rooms ---------------------------------------------------------------------------------
    def room(self, conference_sid: str) -> Room | None:
        data = self.store.get(room_key(conference_sid))
        return Room.from_dict(data) if data else None

    def open_room(self, conference_sid: str, twilio_room: str, account: str, room: str) -> None:
        self.store.put_if_absent(room_key(conference_sid), Room(
            conference_sid=conference_sid, twilio_room=twilio_room, account=account,
            room=room).to_dict(), ROOM_TTL)

    def update_room(self, conference_sid: str, change) -> Room | None:
        """Apply change(Room) -> Room | None (None: no change) atomically; return the room."""
        def fn(current: dict | None) -> dict | None:
            if current is None:
                return None
            room = Room.from_dict(current)
            changed = change(room)
            return changed.to_dict() if changed is not None else current

        written = self.store.update(room_key(conference_sid), fn, ROOM_TTL)
        return Room.from_dict(written) if written else None

    def enter_room(self, conference_sid: str, label: str, stay_alone: bool) -> Room | None:
        """Give the member its ID (once) and count it present."""
        def change(room: Room) -> Room:
            room.enter(label, stay_alone)
            return room
        return self.update_room(conference_sid, change)

    def leave_room(self, conference_sid: str, label: str) -> Room | None:
        """Count the member gone; returns the room (changed or not: leaving twice is fine)."""
        return self.update_room(conference_sid,
                                lambda room: room if room.leave(label) else None)

    def take_floor(self, conference_sid: str, label: str, sequence: int) -> bool:
        """True if this (newer) speech event gives the member the floor."""
        taken: list[bool] = []

        def change(room: Room) -> Room | None:
            taken.clear()
            if sequence <= room.floor_sequence or label not in room.present:
                return None
            room.floor_sequence = sequence
            if room.floor == label:
                return room
            room.floor = label
            taken.append(True)
            return room
        self.update_room(conference_sid, change)
        return bool(taken)

    def floor_wanted(self, conference_sid: str) -> bool:
        """Whether any member of the room ever wanted floor events: one small read, no write.
        A room where nobody did ignores its speaker events (Twilio sends one per talk spurt of
        every participant), since who holds the floor matters only to such a member."""
        return self.store.get(floor_listeners_key(conference_sid)) is not None

    def first_seen(self, conference_sid: str, sequence: str, event: str) -> bool:
        """De-duplicate Twilio's events: True the first time (ConferenceSid, SequenceNumber)."""
        return self.store.put_if_absent(seen_key(conference_sid, sequence, event),
                                        {"at": time.time()}, ROOM_TTL)

    def forget_seen(self, conference_sid: str, sequence: str, event: str) -> None:
        """Processing failed: let the same event (spooled, or sent again) be processed."""
        self.store.delete(seen_key(conference_sid, sequence, event))
