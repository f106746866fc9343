"""Twilio's webhook parameters -> the parameters hosted Plivo sends the app. Pure.

The name and value tables are data at the top of the module; the functions only apply them.
What hosted Plivo sends (docs: "XML request", "Call status", "Event", "Application" pages):

* every request: CallUUID, From, To (numbers without '+'), CallStatus, Direction, CallerName;
  ForwardedFrom when the call was forwarded; ALegUUID on a dialed (outbound) leg;
* the answer request: Event=StartApp (a <Redirect> target: Event=Redirect);
* hangup_url: the above with CallStatus=completed, Event=Hangup, HangupCause, Duration,
  BillDuration, StartTime, AnswerTime, EndTime ('YYYY-MM-DD HH:MM:SS', UTC here).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

# Fixed namespaces: the same Twilio SID always gives the same Plivo UUID, on every gateway
# machine, across restarts. Never change them: apps store these UUIDs.
_CALL_NAMESPACE = uuid.UUID("5c0e8a52-6f3b-4d7e-9a41-3b8f2d1c7e60")
_CONFERENCE_NAMESPACE = uuid.UUID("a7d4f1e9-2b6c-4c58-8e03-91f6b2d4c5a8")

EVENT_START_APP = "StartApp"
EVENT_REDIRECT = "Redirect"
EVENT_HANGUP = "Hangup"

# Twilio CallStatus -> Plivo CallStatus. Plivo's values: ringing, in-progress, completed, busy,
# no-answer, cancel, timeout (and failed on outbound hang-ups, per the Application docs).
CALL_STATUS: dict[str, str] = {
    "queued": "ringing",
    "initiated": "ringing",
    "ringing": "ringing",
    "in-progress": "in-progress",
    "completed": "completed",
    "busy": "busy",
    "failed": "failed",
    "no-answer": "no-answer",
    "canceled": "cancel",
}

# Twilio Direction -> Plivo Direction.
DIRECTION: dict[str, str] = {
    "inbound": "inbound",
    "outbound-api": "outbound",
    "outbound-dial": "outbound",
}

# Twilio's final CallStatus -> Plivo's HangupCause (FreeSWITCH cause names, as Plivo sends them).
HANGUP_CAUSE: dict[str, str] = {
    "completed": "NORMAL_CLEARING",
    "busy": "USER_BUSY",
    "no-answer": "NO_ANSWER",
    "canceled": "ORIGINATOR_CANCEL",
    "failed": "NORMAL_TEMPORARY_FAILURE",
}

# A failed call says more through its SIP response code when Twilio sends one.
SIP_FAILURE_CAUSE: dict[str, str] = {
    "403": "CALL_REJECTED",
    "404": "UNALLOCATED_NUMBER",
    "408": "RECOVERY_ON_TIMER_EXPIRE",
    "480": "NO_USER_RESPONSE",
    "484": "INVALID_NUMBER_FORMAT",
    "486": "USER_BUSY",
    "487": "ORIGINATOR_CANCEL",
    "503": "NORMAL_TEMPORARY_FAILURE",
    "603": "CALL_REJECTED",
}

# Twilio parameter -> Plivo parameter, copied through plivo_number() when present.
NUMBER_PARAMS: dict[str, str] = {"ForwardedFrom": "ForwardedFrom"}

PLIVO_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_E164 = re.compile(r"^\+[0-9]+$")


# Asked several times per request of the same call (log context, parameters): remembered.
@lru_cache(maxsize=4096)
def call_uuid(call_sid: str) -> str:
    """The CallUUID the app sees for a Twilio CallSid: stable, a UUID as Plivo's are."""
    return uuid5_text(_CALL_NAMESPACE, call_sid)


@lru_cache(maxsize=1024)
def conference_uuid(conference_sid: str) -> str:
    """The ConferenceUUID the app sees for a Twilio ConferenceSid."""
    return uuid5_text(_CONFERENCE_NAMESPACE, conference_sid)


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` (RFC 4122: SHA-1 of the namespace and the name, with
    the version and variant bits set), without building a UUID object: every new call asks."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def plivo_number(e164: str) -> str:
    """A party as Plivo writes it: E.164 without '+' ("+14155550100" -> "14155550100").
    SIP URIs, Twilio client ids and withheld ids ("anonymous") pass through unchanged."""
    value = e164.strip()
    return value[1:] if _E164.match(value) else value


def call_params(twilio: Mapping[str, str], *, call_status: str | None = None,
                event: str | None = None) -> dict[str, str]:
    """Plivo's session parameters from a Twilio voice webhook's (or status callback's) params.
    `call_status` (a Plivo value) overrides the mapped CallStatus; `event` adds Event (use
    EVENT_START_APP on the answer request, EVENT_REDIRECT on a <Redirect> fetch)."""
    status = call_status or CALL_STATUS.get(twilio.get("CallStatus", ""), "in-progress")
    params = {
        "CallUUID": call_uuid(twilio["CallSid"]),
        "From": plivo_number(twilio.get("From", "")),
        "To": plivo_number(twilio.get("To", "")),
        "Direction": DIRECTION.get(twilio.get("Direction", ""), "inbound"),
        "CallStatus": status,
        "CallerName": twilio.get("CallerName", ""),
    }
    for twilio_name, plivo_name in NUMBER_PARAMS.items():
        if twilio.get(twilio_name):
            params[plivo_name] = plivo_number(twilio[twilio_name])
    parent = twilio.get("ParentCallSid")
    if parent and params["Direction"] == "outbound":
        params["ALegUUID"] = call_uuid(parent)
    if event:
        params["Event"] = event
    return params


def hangup_cause(twilio_status_callback: Mapping[str, str]) -> str:
    """Plivo's HangupCause for Twilio's final call status (and SIP code, when a call failed)."""
    status = twilio_status_callback.get("CallStatus", "completed")
    if status == "failed":
        sip = twilio_status_callback.get("SipResponseCode", "")
        if sip in SIP_FAILURE_CAUSE:
            return SIP_FAILURE_CAUSE[sip]
    return HANGUP_CAUSE.get(status, "NORMAL_CLEARING")


def hangup_params(twilio_status_callback: Mapping[str, str], *, answered_at: float | None = None,
                  started_at: float | None = None, ended_at: float | None = None) -> dict[str, str]:
    """Plivo's hangup_url parameters from Twilio's final call status callback.

    Times are epoch seconds. EndTime is Twilio's `Timestamp` (else `ended_at`, else now);
    Duration is Twilio's `CallDuration`; AnswerTime is `answered_at` when the gateway saw the
    answer, else EndTime - Duration for an answered call, else ''; StartTime is `started_at`
    (when the first webhook arrived), else the answer time, else EndTime."""
    cb = twilio_status_callback
    end = _twilio_timestamp(cb.get("Timestamp")) or ended_at or time.time()
    duration = _seconds(cb.get("CallDuration"))
    # Twilio reports 'completed' only for a call that was answered; every other final status
    # (busy, no-answer, canceled, failed) means it never was.
    if cb.get("CallStatus", "completed") == "completed":
        answer = answered_at if answered_at is not None else end - duration
        if not duration and answered_at is not None:
            duration = max(0, math.ceil(end - answered_at))
    else:
        answer, duration = None, 0
    start = started_at if started_at is not None else (answer if answer is not None else end)
    params = call_params(cb, call_status="completed", event=EVENT_HANGUP)
    params.update({
        "HangupCause": hangup_cause(cb),
        "Duration": str(duration),
        # Plivo bills by its own interval; without a Plivo rate card the billed time is the call's.
        "BillDuration": str(duration),
        "StartTime": _plivo_time(start),
        "AnswerTime": _plivo_time(answer) if answer is not None else "",
        "EndTime": _plivo_time(end),
    })
    return params


def _seconds(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _twilio_timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()  # RFC 2822, e.g. 'Thu, 1 Jun 2017 ...'
    except (TypeError, ValueError):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None


def _plivo_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(PLIVO_TIME_FORMAT)
