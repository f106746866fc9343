"""`<MultiPartyCall>`: join (or start) a multi-party call with a role, every attribute of the
Plivo SDK's element, checked as the SDK and hosted Plivo check them (docs.plivo.com "The
MultiPartyCall element"). Defaults in `attributes.DEFAULTS`.

It runs as a conference of its own namespace (`gateway.translate.multipartycall`, which also
says what cannot run and why); the README's table gives the status of each attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import BOOLEAN, METHOD, URL, AttributeType, Enum, Integer, is_http_url
from ..model import Element

ROLES = ("agent", "supervisor", "customer", "ai-agent")
STATUS_EVENTS = ("mpc-state-changes", "participant-state-changes", "participant-speak-events",
                 "participant-digit-input-events", "add-participant-api-events")


@dataclass(frozen=True)
class Role(AttributeType):
    """role: agent, supervisor, customer or ai-agent, in any case (the SDK lower-cases it)."""

    describe = "one of " + ", ".join(ROLES) + " (any case)"

    def parse(self, text: str) -> str:
        role = text.strip().lower()
        if role not in ROLES:
            raise ValueError(f"{text!r} is not a role: must be {self.describe}")
        return role


@dataclass(frozen=True)
class MpcSound(AttributeType):
    """enterSound/exitSound: beep:1, beep:2, none, or a URL returning Play/Speak/Wait XML."""

    describe = "beep:1, beep:2, none or an absolute http(s) URL"

    def parse(self, text: str) -> str:
        text = text.strip()
        if text.lower() in ("beep:1", "beep:2", "none"):
            return text.lower()
        if is_http_url(text):
            return text
        raise ValueError(f"{text!r} is not a sound: must be {self.describe}")


@dataclass(frozen=True)
class StatusEvents(AttributeType):
    """statusCallbackEvents: comma-separated event groups the SDK knows."""

    describe = "comma-separated from " + ", ".join(STATUS_EVENTS)

    def parse(self, text: str) -> tuple[str, ...]:
        events = tuple(e.strip().lower() for e in text.split(",") if e.strip())
        for event in events:
            if event not in STATUS_EVENTS:
                raise ValueError(f"{event!r} is not a status callback event: {self.describe}")
        return events


@dataclass(frozen=True)
class MultiPartyCall(Element):
    TAG: ClassVar[str] = "MultiPartyCall"
    BODY: ClassVar[str] = "text"
    ATTRIBUTES: ClassVar[dict] = {
        "role": Role(),
        "maxDuration": Integer(300, 28800),
        "maxParticipants": Integer(2, 10),
        "recordMinMemberCount": Integer(1, 2),
        "waitMusicUrl": URL,
        "waitMusicMethod": METHOD,
        "waitTime": Integer(0, 1800),
        "agentHoldMusicUrl": URL,
        "agentHoldMusicMethod": METHOD,
        "customerHoldMusicUrl": URL,
        "customerHoldMusicMethod": METHOD,
        "record": BOOLEAN,
        "recordParticipantTrack": BOOLEAN,
        "recordFileFormat": Enum(("mp3", "wav")),
        "recordingCallbackUrl": URL,
        "recordingCallbackMethod": METHOD,
        "statusCallbackEvents": StatusEvents(),
        "statusCallbackUrl": URL,
        "statusCallbackMethod": METHOD,
        "stayAlone": BOOLEAN,
        "coachMode": BOOLEAN,
        "mute": BOOLEAN,
        "hold": BOOLEAN,
        "startMpcOnEnter": BOOLEAN,
        "endMpcOnExit": BOOLEAN,
        "enterSound": MpcSound(),
        "enterSoundMethod": METHOD,
        "exitSound": MpcSound(),
        "exitSoundMethod": METHOD,
        "onExitActionUrl": URL,
        "onExitActionMethod": METHOD,
        "relayDTMFInputs": BOOLEAN,
        "startRecordingAudio": URL,
        "startRecordingAudioMethod": METHOD,
        "stopRecordingAudio": URL,
        "stopRecordingAudioMethod": METHOD,
        "transcript": BOOLEAN,
        "transcriptionUrl": URL,
    }

    body: str  # the MPC's name
    role: str | None
    max_duration: int
    max_participants: int
    record_min_member_count: int
    wait_music_url: str | None
    wait_music_method: str
    wait_time: int | None
    agent_hold_music_url: str | None
    agent_hold_music_method: str
    customer_hold_music_url: str | None
    customer_hold_music_method: str
    record: bool
    record_participant_track: bool
    record_file_format: str
    recording_callback_url: str | None
    recording_callback_method: str
    status_callback_events: tuple[str, ...]
    status_callback_url: str | None
    status_callback_method: str
    stay_alone: bool
    coach_mode: bool
    mute: bool
    hold: bool
    start_mpc_on_enter: bool
    end_mpc_on_exit: bool
    enter_sound: str
    enter_sound_method: str
    exit_sound: str
    exit_sound_method: str
    on_exit_action_url: str | None
    on_exit_action_method: str
    relay_dtmf_inputs: bool
    start_recording_audio: str | None
    start_recording_audio_method: str
    stop_recording_audio: str | None
    stop_recording_audio_method: str
    transcript: bool
    transcription_url: str | None

    def problem(self) -> tuple[str | None, str] | None:
        if self.role is None:
            return "role", "a MultiPartyCall needs a role (agent, supervisor, customer, ai-agent)"
        return None
