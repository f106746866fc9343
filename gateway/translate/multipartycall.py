"""`<MultiPartyCall>` -> the nearest Twilio behaviour: a conference (pure: no I/O).

The MPC runs as a `<Conference>` of its own namespace (room `mpc:<name>`, so it never meets a
`<Conference>` of the same name), through the gateway's conference machinery
(`translate.conference`): `maxParticipants` -> the room's cap, `mute` -> a muted member, a
`supervisor` -> a muted member (listens to everyone; the coach's whisper to agents is Twilio's
`coaching` with the agent's CallSid, not built: reported), `startMpcOnEnter`/`endMpcOnExit`/
`stayAlone` -> the conference flags, `maxDuration` -> the room's time limit (from the room's
start, not the call's: reported), `waitMusicUrl` -> waitSound, `enterSound`/`exitSound` (none ->
no sound), `record`/`recordFileFormat`, `relayDTMFInputs` -> relayDTMF, `onExitActionUrl`/
`onExitActionMethod` -> the action (its parameters are `<Conference>`'s: reported).

What the conference cannot give, the gateway will not pretend: an element that sets any of
`statusCallbackUrl`, `recordingCallbackUrl` (the MPC's own events and recording parameters are
not emulated), `hold="true"` (joining on hold), `transcript="true"`, or `role="ai-agent"` cannot
run: the stretch fails with every reason, before anything of it is played. Attributes with no
effect here (hold music, `waitTime`, recording audio, per-participant tracks) are reported.
"""

from __future__ import annotations

import dataclasses

from ..plivoxml.elements import Conference, MultiPartyCall
from ..plivoxml.parser import default_values
from .builder import TwimlBuilder
from .conference import translate_conference
from .outcome import ElementCannotRun, Flow

ROOM_PREFIX = "mpc:"


def cannot_run_reasons(mpc: MultiPartyCall) -> list[str]:
    reasons = []
    if mpc.role == "ai-agent":
        reasons.append("role ai-agent (an AI agent on a WebSocket) has no Twilio conference form")
    if mpc.status_callback_url:
        reasons.append("statusCallbackUrl: the MPC's own events are not emulated")
    if mpc.recording_callback_url:
        reasons.append("recordingCallbackUrl: the MPC's recording parameters are not emulated")
    if mpc.hold:
        reasons.append("hold=\"true\": Twilio's TwiML cannot join a participant on hold")
    if mpc.transcript:
        reasons.append("transcript=\"true\": real-time transcription is not emulated")
    return reasons


def conference_for(mpc: MultiPartyCall) -> Conference:
    """The `<Conference>` the MPC runs as (its settings are what the member machinery keeps)."""
    values = dict(default_values(Conference))
    values.update({
        "muted": mpc.mute or mpc.role == "supervisor",
        "enterSound": "" if mpc.enter_sound == "none" else mpc.enter_sound,
        "exitSound": "" if mpc.exit_sound == "none" else mpc.exit_sound,
        "startConferenceOnEnter": mpc.start_mpc_on_enter,
        "endConferenceOnExit": mpc.end_mpc_on_exit,
        "stayAlone": mpc.stay_alone,
        "waitSound": mpc.wait_music_url,
        "maxMembers": mpc.max_participants,
        "record": mpc.record,
        "recordFileFormat": mpc.record_file_format,
        "timeLimit": mpc.max_duration,
        "action": mpc.on_exit_action_url,
        "method": mpc.on_exit_action_method,
        "relayDTMF": mpc.relay_dtmf_inputs,
    })
    element = Conference.build(line=mpc.line, values=values, body=ROOM_PREFIX + mpc.body,
                               children=())
    assert isinstance(element, Conference)
    return element


def translate_multipartycall(mpc: MultiPartyCall, builder: TwimlBuilder) -> Flow:
    reasons = cannot_run_reasons(mpc)
    if reasons:
        raise ElementCannotRun("MultiPartyCall", mpc.line, "; ".join(reasons))
    first_note = len(builder.notes)
    flow = translate_conference(conference_for(mpc), builder)
    builder.notes[first_note:] = _as_mpc_notes(mpc, builder.notes[first_note:])
    _report(mpc, builder)
    return flow


# The conference's report, said of the MPC's own attributes.
MPC_ATTRIBUTE = {"room": "(text)", "muted": "mute", "maxMembers": "maxParticipants",
                 "waitSound": "waitMusicUrl", "action": "onExitActionUrl",
                 "relayDTMF": "relayDTMFInputs", "timeLimit": "maxDuration"}


def _as_mpc_notes(mpc: MultiPartyCall, notes: list) -> list:
    out = []
    for note in notes:
        if note.attribute == "timeLimit":
            continue  # said below, with how it differs from Plivo's
        if note.attribute == "relayDTMF" and not mpc.relay_dtmf_inputs:
            continue  # Plivo's default for an MPC is what Twilio does
        out.append(dataclasses.replace(note, element="MultiPartyCall", attribute=MPC_ATTRIBUTE.get(
            note.attribute or "", note.attribute)))
    return out


def _report(mpc: MultiPartyCall, builder: TwimlBuilder) -> None:
    def note(status: str, attribute: str, message: str) -> None:
        builder.note("MultiPartyCall", status, message, line=mpc.line,  # type: ignore[arg-type]
                     attribute=attribute)

    note("emulated", "role", f"role {mpc.role}: a member of the conference "
         f"{ROOM_PREFIX}{mpc.body}" + (" (muted)" if mpc.mute else ""))
    if mpc.role == "supervisor":
        note("unsupported" if mpc.coach_mode else "translated", "coachMode",
             "the supervisor joins muted and hears everyone"
             + ("; whispering to agents (Twilio's coaching with the agent's CallSid) is not "
                "built" if mpc.coach_mode else ""))
    note("translated", "maxDuration", f"{mpc.max_duration} s from the room's start (Plivo counts "
         "from the call's start)")
    if mpc.wait_music_url and mpc.wait_music_method == "GET":
        note("translated", "waitMusicMethod", "fetched with POST, as <Conference waitSound>")
    if mpc.on_exit_action_url:
        note("translated", "onExitActionUrl", "requested with <Conference>'s action parameters")
    for attribute, value in (("agentHoldMusicUrl", mpc.agent_hold_music_url),
                             ("customerHoldMusicUrl", mpc.customer_hold_music_url),
                             ("startRecordingAudio", mpc.start_recording_audio),
                             ("stopRecordingAudio", mpc.stop_recording_audio)):
        if value:
            note("unsupported", attribute, "not emulated: nothing is played")
    if mpc.wait_time is not None:
        note("unsupported", "waitTime", "not emulated: members wait until the MPC starts")
    if mpc.record and mpc.record_participant_track:
        note("unsupported", "recordParticipantTrack", "Twilio records the room's mix only")
