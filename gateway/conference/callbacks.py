"""The parameters of Plivo's conference requests (pure): callbacks and the action URL.

Names and values as hosted Plivo sends them (see the seed's tables): `ConferenceAction`
enter/exit/floor/digits/record, `ConferenceName` (the room as the app wrote it),
`ConferenceUUID` (stable, from Twilio's ConferenceSid), `ConferenceMemberID`, `CallUUID` and the
call's session parameters; `record` carries the recording's URL and times instead of the member.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from ..app_side.params import conference_uuid
from .members import Member


def _member_ids(member: Member) -> dict[str, str]:
    return {
        "ConferenceName": member.room,
        "ConferenceUUID": conference_uuid(member.conference_sid) if member.conference_sid
        else "",
        "ConferenceMemberID": str(member.member_id) if member.member_id is not None else "",
    }


def member_callback(member: Member, action: str, *, call_status: str = "in-progress"
                    ) -> dict[str, str]:
    """enter / exit / floor / digits: the member's ids and the call's parameters."""
    return {**member.call_params, "CallStatus": call_status, "ConferenceAction": action,
            **_member_ids(member)}


def record_url(recording: dict, file_format: str) -> str:
    """Twilio serves a recording as .mp3 or .wav by appending the extension to its URL."""
    return f"{recording['RecordingUrl']}.{file_format}"


def recording_times(recording: dict) -> dict[str, str]:
    seconds = int(recording.get("RecordingDuration") or 0)
    start_ms = ""
    end_ms = ""
    if recording.get("RecordingStartTime"):
        try:
            start = int(parsedate_to_datetime(recording["RecordingStartTime"]).timestamp()
                        * 1000)
            start_ms, end_ms = str(start), str(start + seconds * 1000)
        except (TypeError, ValueError):
            pass
    return {"RecordingDuration": str(seconds), "RecordingDurationMs": str(seconds * 1000),
            "RecordingStartMs": start_ms, "RecordingEndMs": end_ms}


def record_callback(room_name: str, conference_sid: str, recording: dict,
                    file_format: str) -> dict[str, str]:
    """ConferenceAction=record: no member, no call (as Plivo documents)."""
    return {"ConferenceAction": "record", "ConferenceName": room_name,
            "ConferenceUUID": conference_uuid(conference_sid),
            "RecordUrl": record_url(recording, file_format),
            "RecordingID": recording.get("RecordingSid", ""),
            **recording_times(recording)}


def action_params(member: Member, recording: dict | None) -> dict[str, str]:
    """The action URL's request when the member leaves the room."""
    params = {**member.call_params, "CallStatus": "in-progress", **_member_ids(member)}
    if member.settings.get("record") and recording:
        params["RecordUrl"] = record_url(recording, member.settings["record_file_format"])
        params["RecordingID"] = recording.get("RecordingSid", "")
    return params
