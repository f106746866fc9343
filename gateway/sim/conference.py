"""Conference rooms as Twilio keeps them: members, room-wide settings, events and recordings.

Rules (https://www.twilio.com/docs/voice/twiml/conference and /docs/voice/conference):
- Rooms are named per account; a room that ended is gone, and the same name makes a new room.
- Room-wide settings (statusCallback, statusCallbackEvent, statusCallbackMethod, record and its
  recordingStatusCallback*, maxParticipants) come from the FIRST participant; later values are
  ignored.
- "Conferences will not start until at least two participants join", and one of them has
  startConferenceOnEnter=true. Until then members wait, hearing the waitUrl.
- `record="record-from-start"` starts when the conference starts (two members bridged) and stops
  when it ends.

This module holds the state and builds each callback's parameters; `engine.py` drives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .ids import new_sid, rfc2822, utc_now
from .twiml import Conference

if TYPE_CHECKING:
    from .engine import Call

# StatusCallbackEvent sent -> the statusCallbackEvent value that subscribes to it
EVENT_GROUP = {
    "conference-start": "start",
    "conference-end": "end",
    "participant-join": "join",
    "participant-leave": "leave",
    "participant-mute": "mute",
    "participant-unmute": "mute",
    "participant-hold": "hold",
    "participant-unhold": "hold",
    "participant-modify": "modify",
    "participant-speech-start": "speaker",
    "participant-speech-stop": "speaker",
    "announcement-end": "announcement",
    "announcement-fail": "announcement",
}


def twilio_bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass
class Participant:
    call: Call
    room: Room
    noun: Conference
    muted: bool
    start_conference_on_enter: bool
    end_conference_on_exit: bool
    beep: str  # true | false | onEnter | onExit
    wait_url: str | None
    wait_method: str
    label: str | None
    coaching: bool = False
    call_sid_to_coach: str | None = None
    hold: bool = False
    hold_url: str | None = None
    hold_method: str = "GET"
    speaking: bool = False  # whether a speech-start was reported and not yet its stop
    bridged: bool = False  # was in the room while it was started
    joined: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)

    @property
    def call_sid(self) -> str:
        return self.call.sid

    @property
    def beeps_on_enter(self) -> bool:
        return self.beep in ("true", "onEnter")

    @property
    def beeps_on_exit(self) -> bool:
        return self.beep in ("true", "onExit")

    def event_params(self) -> dict[str, str]:
        params = {
            "CallSid": self.call.sid,
            "Muted": twilio_bool(self.muted),
            "Hold": twilio_bool(self.hold),
            "Coaching": twilio_bool(self.coaching),
            "EndConferenceOnExit": twilio_bool(self.end_conference_on_exit),
            "StartConferenceOnEnter": twilio_bool(self.start_conference_on_enter),
        }
        if self.label is not None:
            params["ParticipantLabel"] = self.label
        return params


@dataclass
class Recording:
    """A conference's recording (`room`), or a call's (`call`: `<Record>`, whose source is
    RecordVerb, or the REST call recordings, StartCallRecordingAPI). `speech`: what the caller
    said, as (seconds into the recording, text), so that the file holds real speech."""

    sid: str
    room: Room | None
    started_at: float  # engine clock
    start_time: datetime
    status: str = "in-progress"
    duration: int | None = None
    ended: datetime | None = None
    call: Call | None = None
    source: str = "Conference"
    speech: tuple[tuple[float, float, str], ...] = ()

    @property
    def account_sid(self) -> str:
        return self.room.account_sid if self.room is not None else (
            self.call.account_sid if self.call is not None else "")

    def callback_params(self, api_base: str) -> dict[str, str]:
        params = {
            "AccountSid": self.account_sid,
            "RecordingSid": self.sid,
            "RecordingUrl": f"{api_base}{recording_path(self.account_sid, self.sid)}",
            "RecordingStatus": self.status,
            "RecordingChannels": "1",
            "RecordingStartTime": rfc2822(self.start_time),
            "RecordingSource": self.source,
        }
        if self.room is not None:
            params["ConferenceSid"] = self.room.sid
        if self.call is not None:
            params["CallSid"] = self.call.sid
        if self.duration is not None:
            params["RecordingDuration"] = str(self.duration)
        return params


def recording_path(account_sid: str, recording_sid: str) -> str:
    """The Recording resource URI without extension, as RecordingUrl gives it."""
    return f"/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}"


@dataclass
class Room:
    account_sid: str
    friendly_name: str
    settings: Conference  # the first participant's noun: room-wide settings live here
    sid: str = field(default_factory=lambda: new_sid("CF"))
    status: str = "init"  # init | in-progress | completed (Twilio's Conference status)
    participants: dict[str, Participant] = field(default_factory=dict)  # by CallSid, join order
    sequence: int = 0
    started: bool = False
    ending: bool = False
    recording: Recording | None = None
    created: datetime = field(default_factory=utc_now)
    updated: datetime = field(default_factory=utc_now)
    reason_conference_ended: str | None = None
    call_sid_ending_conference: str | None = None

    @property
    def max_participants(self) -> int:
        return self.settings.max_participants

    def find(self, call_sid_or_label: str) -> Participant | None:
        if call_sid_or_label in self.participants:
            return self.participants[call_sid_or_label]
        for participant in self.participants.values():
            if participant.label == call_sid_or_label:
                return participant
        return None

    def should_start(self) -> bool:
        """At least two members, one of them with startConferenceOnEnter=true."""
        return (not self.started and len(self.participants) >= 2
                and any(p.start_conference_on_enter for p in self.participants.values()))

    def subscribed(self, event: str) -> bool:
        return (self.settings.status_callback is not None
                and EVENT_GROUP[event] in self.settings.status_callback_event)

    def event_params(self, event: str) -> dict[str, str]:
        """The parameters every conference event carries; SequenceNumber counts sent events."""
        self.sequence += 1
        return {
            "ConferenceSid": self.sid,
            "FriendlyName": self.friendly_name,
            "AccountSid": self.account_sid,
            "SequenceNumber": str(self.sequence),
            "Timestamp": rfc2822(),
            "StatusCallbackEvent": event,
        }
