"""Plivo's `<Dial>` parameters from Twilio's (pure).

The action (hosted Plivo, "Parameters sent to action URL"): DialStatus (completed, busy, failed,
timeout, no-answer), DialRingStatus (did it ring), DialHangupCause, DialALegUUID, DialBLegUUID
(empty when nobody answered), and DialBLegDuration, from Twilio's Dial action (DialCallStatus,
DialCallSid, DialCallDuration). The callbackUrl (DialAction answer / connected / hangup):
DialALegUUID, DialBLegUUID, DialBLegStatus, DialBLegTo, DialBLegFrom, and on hangup
DialBLegHangupCause, DialBLegDuration and DialBLegBillDuration, from each leg's status callback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..app_side.params import HANGUP_CAUSE, call_uuid, plivo_number

# Twilio's DialCallStatus -> Plivo's DialStatus. `answered` is what Twilio reports when the
# caller ended a bridged call with hangupOnStar: the forward completed, as Plivo says.
DIAL_STATUS = {"completed": "completed", "answered": "completed", "busy": "busy",
               "no-answer": "no-answer", "failed": "failed", "canceled": "no-answer"}
RANG = {"completed", "answered", "no-answer", "canceled"}  # the far end rang (or answered)


def action_params(twilio: Mapping[str, str], a_leg_uuid: str) -> dict[str, str]:
    status = twilio.get("DialCallStatus", "failed")
    answered = status in ("completed", "answered")
    b_leg = twilio.get("DialCallSid", "")
    return {
        "DialStatus": DIAL_STATUS.get(status, "failed"),
        "DialRingStatus": "true" if status in RANG else "false",
        "DialHangupCause": HANGUP_CAUSE.get("completed" if answered else status,
                                            "NORMAL_CLEARING"),
        "DialALegUUID": a_leg_uuid,
        "DialBLegUUID": call_uuid(b_leg) if answered and b_leg else "",
        "DialBLegDuration": twilio.get("DialCallDuration", "0") if answered else "0",
    }


def leg_params(leg: Mapping[str, str], a_leg_uuid: str) -> dict[str, str]:
    """What every DialAction callback says about the dialled leg (Twilio's status callback of
    the child call: its own CallSid, To and From)."""
    return {
        "DialALegUUID": a_leg_uuid,
        "DialBLegUUID": call_uuid(leg.get("CallSid", "")),
        "DialBLegTo": plivo_number(leg.get("To") or leg.get("Called") or ""),
        "DialBLegFrom": plivo_number(leg.get("From") or leg.get("Caller") or ""),
    }


def answer_params(leg: Mapping[str, str], a_leg_uuid: str, action: str) -> dict[str, str]:
    """DialAction=answer (the callee picked up) or connected (bridged to the caller)."""
    return {"DialAction": action, "DialBLegStatus": action, **leg_params(leg, a_leg_uuid)}


def hangup_params(leg: Mapping[str, str], a_leg_uuid: str) -> dict[str, str]:
    seconds = int(leg.get("CallDuration") or 0)
    return {
        "DialAction": "hangup", "DialBLegStatus": "hangup",
        **leg_params(leg, a_leg_uuid),
        "DialBLegHangupCause": HANGUP_CAUSE.get(leg.get("CallStatus", ""), "NORMAL_CLEARING"),
        "DialBLegDuration": str(seconds),
        # Plivo bills by the minute: the billed duration is the duration rounded up to 60 s.
        "DialBLegBillDuration": str(60 * math.ceil(seconds / 60)),
    }
