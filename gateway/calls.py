"""The state of one call, as the gateway remembers it between Twilio's requests.

A call is keyed by Twilio's CallSid. It remembers which app it belongs to, the Plivo session
parameters every request to the app carries, and where it is in its Plivo documents: the XML of
the document being run and the index to resume at when Twilio hands control back (the
continuation), plus the step counter that numbers the stretches of TwiML it was given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .state import Store

CALL_TTL = 26 * 3600.0       # longer than Twilio's longest call (24 h with the setting on)
ENDED_CALL_TTL = 3600.0      # kept a while after the end, for late callbacks
ENDED_MARK_TTL = 48 * 3600.0  # how long a replayed webhook for an ended call is recognised


@dataclass
class CallRecord:
    call_sid: str
    app: str                               # the mapping's app name
    call_uuid: str
    params: dict[str, str]                 # Plivo session params sent with every app request
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    step: int = 0                          # stretches of TwiML given to Twilio so far
    played: bool = False                   # something was played: the call is answered
    document: str | None = None            # Plivo XML being run (None: nothing left to run)
    document_url: str | None = None
    resume_at: int | None = None
    ended: bool = False
    hangup_queued: bool = False            # the hangup request is in the call's outbox
    member: dict | None = None             # the room this call was last sent to, until it joins
    member_labels: list[str] = field(default_factory=list)  # every room stay, in order
    rejected: str | None = None            # the TwiML rejected the call: Plivo's reason
    input_attempts: int = 0                # attempts already failed at the menu being run
    records: dict = field(default_factory=dict)  # each <Record>'s settings, by its key

    def pending_record_actions(self) -> list[str]:
        """Keys of the `<Record>`s recording the caller here whose action (the app's) has not
        come back from Twilio yet."""
        return [key for key, settings in self.records.items()
                if settings.get("kind") == "here" and settings.get("action")
                and not settings.get("answered") and settings.get("action_number") is None]

    def to_dict(self) -> dict:
        # A shallow copy: the value is serialised at once (dataclasses.asdict deep-copies,
        # which cost more than the rest of the write).
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> CallRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def call_key(call_sid: str) -> str:
    """The call's record in the store (read by transactions that span it, e.g. a join)."""
    return f"call:{call_sid}"


def _ended_key(call_sid: str) -> str:
    return f"ended:{call_sid}"


class Calls:
    """Call records in the shared store."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, call_sid: str) -> CallRecord | None:
        data = self.store.get(call_key(call_sid))
        return CallRecord.from_dict(data) if data else None

    def claim(self, record: CallRecord) -> bool:
        """Start a call the gateway has never seen: False if it has a record of it, or saw it
        end (Twilio's signature has no timestamp, so a captured voice webhook can be replayed;
        it must not start the app a second time)."""
        return self.store.put_if_absent(call_key(record.call_sid), record.to_dict(), CALL_TTL,
                                        unless=_ended_key(record.call_sid))

    def save(self, record: CallRecord) -> None:
        ttl = ENDED_CALL_TTL if record.ended else CALL_TTL
        self.store.put(call_key(record.call_sid), record.to_dict(), ttl)

    def reserve_record_action(self, call_sid: str, key: str, number: int) -> bool:
        """The call ended while its `<Record>` KEY had not reported: its action takes place
        `number` in the call's outbox, before the hangup request (Plivo's order). Atomic; False
        if the action came meanwhile."""
        won: list[bool] = []

        def reserve(current: dict | None) -> dict | None:
            won.clear()
            settings = (current or {}).get("records", {}).get(key)
            if settings is None or settings.get("answered"):
                return current
            won.append(True)
            records = {**current["records"], key: {**settings, "action_number": number}}
            return {**current, "records": records}

        self.store.update(call_key(call_sid), reserve, ENDED_CALL_TTL)
        return bool(won)

    def claim_record_action(self, call_sid: str, key: str) -> int | None:
        """The `<Record>` KEY reported (Twilio's action): atomically marked answered; returns
        the outbox place reserved for its action when the call's end came first."""
        reserved: list[int] = []

        def claim(current: dict | None) -> dict | None:
            reserved.clear()
            settings = (current or {}).get("records", {}).get(key)
            if settings is None:
                return current
            if settings.get("action_number") is not None:
                reserved.append(int(settings["action_number"]))
            records = {**current["records"], key: {**settings, "answered": True}}
            return {**current, "records": records}

        self.store.update(call_key(call_sid), claim, CALL_TTL)
        return reserved[0] if reserved else None

    def mark_ended(self, call_sid: str) -> CallRecord | None:
        """Atomically flag the call as ended; returns it until its hangup request is queued
        (`mark_hangup_queued`), None after. An end processed half-way (the store failing
        between the flag and the hangup request: the spool replays the event) is processed
        again instead of being taken for Twilio's duplicate."""
        first: list[bool] = []

        def end(current: dict | None) -> dict | None:
            first.clear()
            if current is None or current.get("hangup_queued"):
                return current
            first.append(True)
            return {**current, "ended": True}

        data = self.store.update(call_key(call_sid), end, ENDED_CALL_TTL)
        if data and first:
            self.store.put(_ended_key(call_sid), {"ended_at": time.time()}, ENDED_MARK_TTL)
            return CallRecord.from_dict(data)
        return None

    def mark_hangup_queued(self, call_sid: str) -> None:
        def queued(current: dict | None) -> dict | None:
            return {**current, "hangup_queued": True} if current else None
        self.store.update(call_key(call_sid), queued, ENDED_CALL_TTL)
