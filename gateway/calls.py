"""The state of one call, as the gateway remembers it between Twilio's requests.

A call is keyed by Twilio's CallSid. It remembers which app it belongs to, the Plivo session
parameters every request to the app carries, and where it is in its Plivo documents: the XML of
the document being run and the index to resume at when Twilio hands control back (the
continuation), plus the step counter that numbers the stretches of TwiML it was given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .state import Store, without_defaults

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
        # A shallow copy (dataclasses.asdict deep-copies, which cost more than the rest of the
        # write), without the fields still at their default (`from_dict` restores them).
        return without_defaults(self)

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
        """Store the record as this request leaves it, without ever undoing the call's end.

        A caller may hang up while a slow app is still answering: Twilio's final status is
        processed (`mark_ended`, the hangup request queued) before the request that loaded
        this copy saves it. A plain overwrite would then clear `ended` and `hangup_queued`
        (a repeated final status would queue a second hangup request) and keep the record
        26 h instead of 1. So the write is refused once the end is marked, in the same
        statement (one round trip, as before, for every call that has not ended), and only
        then is the copy merged into what the end left (`_after_the_end`)."""
        key, ttl = call_key(record.call_sid), ENDED_CALL_TTL if record.ended else CALL_TTL
        if self.store.put(key, record.to_dict(), ttl, unless=_ended_key(record.call_sid)):
            return
        saved = record.to_dict()
        self.store.update(key, lambda current: _after_the_end(current, saved), ENDED_CALL_TTL)

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

    def claim_record_action(self, call_sid: str, key: str, *, ended: bool = False) -> int | None:
        """The `<Record>` KEY reported (Twilio's action): atomically marked answered; returns
        the outbox place reserved for its action when the call's end came first. `ended`: the
        caller saw the call ended, so its record keeps the ended call's shorter TTL."""
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

        self.store.update(call_key(call_sid), claim, ENDED_CALL_TTL if ended else CALL_TTL)
        return reserved[0] if reserved else None

    def mark_ended(self, call_sid: str) -> CallRecord | None:
        """Atomically flag the call as ended and mark its end; returns it until its hangup
        request is queued (`mark_hangup_queued`), None after. An end processed half-way (the
        store failing between the flag and the hangup request: the spool replays the event)
        is processed again instead of being taken for Twilio's duplicate.

        The flag and the `ended:` marker are written in one transaction, so no save falls
        between them: a save before it is read and flagged by it; a save after it finds the
        marker and merges into the flagged record (`save`). (Flag first and marker second,
        a save in between would overwrite the flag unchecked; marker first and flag second
        would be safe too.) An unknown call gets the marker alone: Twilio has said it is
        over, so a voice webhook for it served afterwards (a worker that stalled before its
        claim, or a replay of one lost with a killed worker) must not start the app, which
        would then never get a hangup request."""
        record, marker = call_key(call_sid), _ended_key(call_sid)
        ended_at = time.time()
        first: list[bool] = []

        def end(current: dict[str, dict | None]) -> dict[str, dict | None]:
            first.clear()
            call = current[record]
            if call is None:
                return {} if current[marker] else {marker: {"ended_at": ended_at}}
            if call.get("hangup_queued"):
                return {}
            first.append(True)
            return {record: {**call, "ended": True}, marker: {"ended_at": ended_at}}

        data = self.store.update_many({record: ENDED_CALL_TTL, marker: ENDED_MARK_TTL}, end)
        return CallRecord.from_dict(data[record]) if first else None

    def mark_hangup_queued(self, call_sid: str) -> None:
        def queued(current: dict | None) -> dict | None:
            return {**current, "hangup_queued": True} if current else None
        self.store.update(call_key(call_sid), queued, ENDED_CALL_TTL)


def _after_the_end(current: dict | None, saved: dict) -> dict | None:
    """A copy saved after the call's end was marked: its changes, with what the end wrote
    into the record kept (the flags, and each `<Record>`'s place kept before the hangup
    request and its "reported" mark). None, writing nothing, once the record has expired."""
    if current is None:
        return None
    records = {**current.get("records", {}), **saved.get("records", {})}
    for name, kept in current.get("records", {}).items():
        settings = dict(records[name])
        if kept.get("answered"):
            settings["answered"] = True
        if kept.get("action_number") is not None:
            settings["action_number"] = kept["action_number"]
        records[name] = settings
    return {**saved, "ended": True, "records": records,
            "hangup_queued": bool(current.get("hangup_queued") or saved.get("hangup_queued"))}
