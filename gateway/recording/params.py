"""Twilio's recording parameters -> the ones hosted Plivo sends for `<Record>` (pure).

Action URL (docs.plivo.com "The Record element", "Parameters sent to the action URL"):
`RecordUrl` (the file, in the requested fileFormat), `RecordingID`, `RecordingDuration` (s),
`RecordingDurationMs`, `RecordingStartMs`, `RecordingEndMs` (epoch ms) and `Digits` (the key that
ended the recording), with the call's parameters. The callbackUrl ("when the recorded file is
ready") gets the same recording parameters. A recording that failed, was absent or empty keeps
every name, with empty values and zero durations: the app always gets Plivo's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..conference.callbacks import record_url, recording_times

HANGUP_DIGITS = "hangup"  # Twilio's Digits when the caller hung up during the recording


def seconds_of(value: str | None) -> int:
    """Twilio's RecordingDuration as whole seconds (0 when absent or not a number)."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def empty_recording() -> dict[str, str]:
    return {"RecordUrl": "", "RecordingID": "", "RecordingDuration": "0",
            "RecordingDurationMs": "0", "RecordingStartMs": "", "RecordingEndMs": ""}


def action_recording(twilio: Mapping[str, str], file_format: str, now_ms: int
                     ) -> dict[str, str]:
    """The recording part of the action request, from Twilio's Record action parameters.

    Twilio's action carries no start time: the recording ended when Twilio asked (now_ms) and
    started its duration before."""
    digits = twilio.get("Digits", "")
    params = {"Digits": "" if digits == HANGUP_DIGITS else digits}
    if not twilio.get("RecordingUrl"):
        return {**empty_recording(), **params}
    seconds = seconds_of(twilio.get("RecordingDuration"))
    return {
        "RecordUrl": record_url(twilio, file_format),
        "RecordingID": twilio.get("RecordingSid", ""),
        "RecordingDuration": str(seconds),
        "RecordingDurationMs": str(seconds * 1000),
        "RecordingStartMs": str(now_ms - seconds * 1000),
        "RecordingEndMs": str(now_ms),
        **params,
    }


def session_recording(recording: Mapping[str, str], file_format: str, now_ms: int
                      ) -> dict[str, str]:
    """A recordSession's action parameters, sent when it starts: its file's URL and ID; what
    is not known yet is -1 (the open-source engine's value for a background recording)."""
    return {"RecordUrl": record_url(recording, file_format),
            "RecordingID": recording.get("RecordingSid", ""), "RecordingDuration": "-1",
            "RecordingDurationMs": "-1", "RecordingStartMs": str(now_ms),
            "RecordingEndMs": "-1"}


def callback_recording(status: Mapping[str, str], file_format: str) -> dict[str, str]:
    """The callbackUrl's recording parameters, from Twilio's recording status callback."""
    if status.get("RecordingStatus") != "completed" or not status.get("RecordingUrl"):
        return {**empty_recording(), "RecordingID": status.get("RecordingSid", "")}
    return {"RecordUrl": record_url(status, file_format),
            "RecordingID": status.get("RecordingSid", ""), **recording_times(dict(status))}


def failure_reason(status: Mapping[str, str]) -> str:
    """Why a recording has no file, for the transcription's `error` parameter ('' if it has)."""
    state = status.get("RecordingStatus", "")
    if state == "completed" and status.get("RecordingUrl"):
        return "" if seconds_of(status.get("RecordingDuration")) > 0 else "Recording is empty"
    if state == "absent":
        return "Recording is empty"
    code = status.get("ErrorCode")
    return f"Recording failed (Twilio {state or 'status missing'}" + (
        f", error {code})" if code else ")")
