"""The end of a call: Twilio's final status callback -> Plivo's hangup_url request.

Sent in the background (durable, at least once) with Plivo's hangup parameters. As Plivo, an app
without a hangup_url is notified at its answer_url. Every call on record gets one, including a
call whose answer URL failed (the runner keeps its record for this). Twilio may report the
call's end before the member's leave event: the hangup request then waits (bounded) until every
room stay of the call has left and its callbacks were delivered, so the app sees exit before
hangup. An end whose processing the store interrupted (after the call was flagged ended, before
the request was queued) is processed again when the spool replays it: the request is queued once
it is in the outbox, not once the call is flagged.

A call the gateway rejected (`<Hangup reason="rejected|busy">` -> `<Reject>`) ends, on Twilio,
with CallStatus busy or no-answer ("depending on the verb's reason attribute",
twilio.com/docs/voice/twiml/reject); Plivo reports CALL_REJECTED or USER_BUSY, so the cause comes
from the reason the gateway wrote, not from Twilio's status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from . import deliveries
from .app_side.params import hangup_params
from .calls import Calls
from .mappings import Mappings
from .plivoxml.elements.hangup import REASONS as REJECT_CAUSES

log = logging.getLogger("gateway.calls")

FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
REJECTED_STATUSES = {"busy", "no-answer"}  # what Twilio reports for a call ended by <Reject>


def call_ended(twilio: Mapping[str, str], *, calls: Calls, mappings: Mappings, store) -> str:
    call_sid = twilio.get("CallSid", "")
    if twilio.get("CallStatus") not in FINAL_STATUSES:
        return "not-final"
    call = calls.mark_ended(call_sid)
    if call is None:
        existing = calls.get(call_sid)
        if existing is None:
            log.warning("call %s: status callback for an unknown call: nothing sent; a voice "
                        "webhook for it from now on is refused", call_sid)
            return "unknown"
        return "duplicate"
    app = mappings.app_named(call.app)
    if app is None:
        log.warning("call %s: app %r is gone from the mappings: no hangup request", call_sid,
                    call.app)
        return "unknown"
    params = hangup_params(twilio, answered_at=call.answered_at, started_at=call.started_at)
    if call.rejected in REJECT_CAUSES and twilio.get("CallStatus") in REJECTED_STATUSES:
        params["HangupCause"] = REJECT_CAUSES[call.rejected]
    params.update({k: v for k, v in call.params.items() if k not in params})
    stream = deliveries.call_stream(call_sid)
    for key in call.pending_record_actions():
        # Twilio reports a caller who hung up during <Record> before (or after) the Record's
        # action: the action keeps its place before the hangup request either way.
        number = deliveries.reserve_number(store, stream)
        if not calls.reserve_record_action(call_sid, key, number):
            deliveries.release_number(store, stream, number)
    deliveries.enqueue_next(store, stream, {
        "url": app.hangup_url or app.answer_url,
        "method": app.hangup_method if app.hangup_url else app.answer_method,
        "app": app.name, "kind": "hangup", "params": params,
        # Plivo's order for one call: every exit (and its action) before the hangup request.
        "after_members": list(call.member_labels)})
    calls.mark_hangup_queued(call_sid)  # from here on, the same end again is a duplicate
    return "hangup"
