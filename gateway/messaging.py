"""`<Message>` at call time: the SMS sent through Twilio, its delivery reports sent as Plivo's.

The translation leaves a `MessageQueued` effect; `queue_message` keeps what the reports need in
the shared store (`message:<key>`) and books the `send_message` job, so the call's TwiML is not
held up by Twilio's API. The job sends one SMS per destination from the mapping's `sms_from`
(else the number the call reached), remembering each MessageSid so that a retried job never
sends a destination twice. Twilio's StatusCallback (`/twilio/message/status?msg=<key>`) becomes
Plivo's delivery report at the element's `callbackUrl`, through the durable, ordered outbox:

    Twilio MessageStatus                 Plivo Status
    accepted, queued, scheduled,         queued
    sending
    sent                                 sent
    delivered, read                      delivered
    undelivered                          undelivered
    failed, canceled                     failed

with MessageUUID (a UUID derived from the MessageSid), From/To as Plivo writes numbers, Type
`sms`, Units (Twilio's NumSegments when it sends one, else 1), ErrorCode (Twilio's code) for
failed/undelivered, Sequence (1, 2, ... per message), MessageTime. A message Twilio refuses
outright (a bad number) is reported `failed` with Twilio's error code, and logged.
"""

from __future__ import annotations

import logging
import time
import uuid

from twilio.base.exceptions import TwilioRestException

from .app_side.params import call_uuid, plivo_number
from .deliveries import enqueue_next
from .jobs import handler, schedule
from .mappings import normalize_number

log = logging.getLogger("gateway.messaging")

MESSAGE_TTL = 7 * 24 * 3600.0
_MESSAGE_NAMESPACE = uuid.UUID("0b5c8f0e-61a4-4c55-8a3e-2f0d6f7b9a21")

PLIVO_STATUS = {
    "accepted": "queued", "queued": "queued", "scheduled": "queued", "sending": "queued",
    "sent": "sent", "delivered": "delivered", "read": "delivered",
    "undelivered": "undelivered", "failed": "failed", "canceled": "failed",
}


def message_uuid(message_sid: str) -> str:
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, message_sid))


def record_key(call_sid: str, key: str) -> str:
    return f"message:{call_sid}:{key}"


def queue_message(store, call, app, effect) -> None:
    """Keep the message's settings and book its sending (called as the TwiML is returned)."""
    sender = app.sms_from or normalize_number(str(call.params.get("To", "")))
    if effect.src and normalize_number(effect.src) != sender:
        log.info("call %s: <Message> src %s is sent from %s (Twilio sends only from the "
                 "account's numbers: the mapping's sms_from, else the called number)",
                 call.call_sid, effect.src, sender)
    key = record_key(call.call_sid, effect.key)
    store.put(key, {"app": app.name, "call_uuid": call_uuid(call.call_sid), "from": sender,
                    "to": list(effect.destinations), "text": effect.text,
                    "callback_url": effect.callback_url,
                    "callback_method": effect.callback_method, "sent": {}}, MESSAGE_TTL)
    schedule("send_message", {"key": key}, store=store)


@handler("send_message")
def send_message(runtime, key: str) -> None:
    record = runtime.store.get(key)
    if record is None:
        log.error("message %s: its record has expired; nothing sent", key)
        return
    status_url = runtime.urls.message_status(key)
    for to in record["to"]:
        if to in record["sent"]:
            continue  # a retried job: this one went already
        try:
            sid = runtime.twilio.send_sms(record["from"], to, record["text"], status_url)
        except TwilioRestException as exc:
            if exc.status is not None and exc.status >= 500:
                raise  # Twilio's trouble: the job retries
            log.error("message %s to %s refused by Twilio (%s): %s", key, to, exc.code, exc.msg)
            sid = f"refused-{uuid.uuid4().hex}"
            _sent(runtime.store, key, to, sid)
            report(runtime, key, {"MessageSid": sid, "MessageStatus": "failed", "To": to,
                                  "From": record["from"], "ErrorCode": str(exc.code or "")})
            continue
        _sent(runtime.store, key, to, sid)
        log.info("message %s to %s sent: %s", key, to, sid)


def _sent(store, key: str, to: str, sid: str) -> None:
    def add(current: dict | None) -> dict | None:
        if current is not None:
            current["sent"][to] = sid
        return current
    store.update(key, add, MESSAGE_TTL)


def report(runtime, key: str, twilio: dict[str, str]) -> None:
    """One Twilio StatusCallback (or the gateway's own `failed`) -> Plivo's delivery report."""
    record = runtime.store.get(key)
    if record is None:
        log.warning("message status for %s: no record (expired or not the gateway's)", key)
        return
    status = PLIVO_STATUS.get(twilio.get("MessageStatus", ""))
    if status is None or not record.get("callback_url"):
        return
    sid = twilio.get("MessageSid", "")
    stream = f"message:{sid}"
    sequence = runtime.store.incr(f"message-sequence:{sid}", MESSAGE_TTL)
    params = {"MessageUUID": message_uuid(sid), "Status": status, "Type": "sms",
              "From": plivo_number(twilio.get("From") or record["from"]),
              "To": plivo_number(twilio.get("To", "")),
              "Units": twilio.get("NumSegments") or "1", "Sequence": str(sequence),
              "MessageTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    if status in ("failed", "undelivered"):
        params["ErrorCode"] = twilio.get("ErrorCode", "")
    enqueue_next(runtime.store, stream, {"url": record["callback_url"],
                                         "method": record["callback_method"],
                                         "params": params, "app": record["app"],
                                         "kind": "message-status"})
