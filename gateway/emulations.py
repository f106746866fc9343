"""Jobs that emulate what Twilio lacks, through its REST API: end a room, hang up, announce."""

from __future__ import annotations

import logging

from .jobs import handler

log = logging.getLogger("gateway.emulations")


@handler("end_conference")
def end_conference(runtime, conference_sid: str) -> None:
    if not runtime.twilio.end_conference(conference_sid):
        log.info("conference %s had already ended", conference_sid)


@handler("hangup_call")
def hangup_call(runtime, call_sid: str) -> None:
    if not runtime.twilio.hang_up(call_sid):
        log.info("call %s had already ended", call_sid)


@handler("announce")
def announce(runtime, conference_sid: str, url: str) -> None:
    if not runtime.twilio.announce(conference_sid, url):
        log.info("conference %s ended before its announcement", conference_sid)
