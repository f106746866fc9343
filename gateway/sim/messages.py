"""SMS the simulator accepts on its REST API (the Messages resource), with status callbacks.

https://www.twilio.com/docs/messaging/api/message-resource: `POST .../Messages.json` with `From`,
`To`, `Body` and an optional `StatusCallback` creates a message (201, status `queued`); `GET
.../Messages.json` lists them newest first (`messages` key: twilio-python's `messages.list()`
works) and `GET .../Messages/SM....json` fetches one. Checks, with Twilio's error codes:
`To` not a number: 400/21211; no `From`: 400/21603; no `Body`: 400/21602; a body over 1,600
characters: 400/21617 ("The concatenated message body exceeds the 1600 character limit").
Twilio's test numbers (https://www.twilio.com/docs/iam/test-credentials) pick the outcome:
To +15005550001 is refused as invalid (21211); To +15005550009 is "not SMS-capable" (21614);
any other number is sent, then delivered. Status callbacks
(https://www.twilio.com/docs/messaging/guides/track-outbound-message-status): `queued`, `sent`
(after 0.2 s), `delivered` (after 0.5 s), each with MessageSid, SmsSid, AccountSid, From, To,
MessageStatus, SmsStatus, ApiVersion, in order per message. Every message and callback is in
the transcript (`message`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .ids import new_sid, rfc2822, utc_now
from .webhooks import Request

if TYPE_CHECKING:
    from .engine import Switchboard

BODY_LIMIT = 1600
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
INVALID_NUMBER = "+15005550001"     # Twilio's test number: "invalid number"
NOT_SMS_CAPABLE = "+15005550009"    # Twilio's test number: "cannot receive SMS"
SENT_AFTER = 0.2
DELIVERED_AFTER = 0.5


class MessageRefused(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SimMessage:
    sid: str
    account_sid: str
    sender: str
    to: str
    body: str
    status_callback: str | None
    status: str = "queued"
    created: datetime = field(default_factory=utc_now)
    sent: datetime | None = None
    updated: datetime = field(default_factory=utc_now)

    @property
    def segments(self) -> int:
        return max(1, -(-len(self.body) // 153)) if len(self.body) > 160 else 1


def check(form: Any) -> tuple[str, str, str]:
    """(From, To, Body) of a create request, or MessageRefused with Twilio's code."""
    to, sender, body = form.get("To", "").strip(), form.get("From", "").strip(), form.get("Body")
    if not sender:
        raise MessageRefused(21603, "A 'From' phone number is required.")
    if not to or not E164.match(to) or to == INVALID_NUMBER:
        raise MessageRefused(21211, f"The 'To' number {to} is not a valid phone number.")
    if to == NOT_SMS_CAPABLE:
        raise MessageRefused(21614, f"'To' number {to} is not a valid mobile number")
    if not body:
        raise MessageRefused(21602, "Message body is required.")
    if len(body) > BODY_LIMIT:
        raise MessageRefused(21617, "The concatenated message body exceeds the 1600 character "
                             "limit.")
    return sender, to, body


def message_json(message: SimMessage) -> dict[str, Any]:
    uri = f"/2010-04-01/Accounts/{message.account_sid}/Messages/{message.sid}"
    return {
        "account_sid": message.account_sid, "api_version": "2010-04-01", "body": message.body,
        "date_created": rfc2822(message.created), "date_updated": rfc2822(message.updated),
        "date_sent": rfc2822(message.sent) if message.sent else None,
        "direction": "outbound-api", "error_code": None, "error_message": None,
        "from": message.sender, "messaging_service_sid": None, "num_media": "0",
        "num_segments": str(message.segments), "price": None, "price_unit": "USD",
        "sid": message.sid, "status": message.status, "to": message.to, "uri": f"{uri}.json",
        "subresource_uris": {"media": f"{uri}/Media.json"},
    }


def accept(board: Switchboard, account_sid: str, sender: str, to: str, body: str,
           status_callback: str | None, method: str) -> SimMessage:
    """Engine thread: keep the message and book its status changes."""
    message = SimMessage(new_sid("SM"), account_sid, sender, to, body, status_callback)
    board.messages[message.sid] = message
    board.transcript.record("message", sid=message.sid, to=to, sender=sender,
                            characters=len(body), status="queued")
    _callback(board, message, method)
    board.loop.after(SENT_AFTER, _advance, board, message, "sent", method)
    board.loop.after(DELIVERED_AFTER, _advance, board, message, "delivered", method)
    return message


def _advance(board: Switchboard, message: SimMessage, status: str, method: str) -> None:
    message.status = status
    message.updated = utc_now()
    if status == "sent":
        message.sent = message.updated
    board.transcript.record("message", sid=message.sid, to=message.to, status=status)
    _callback(board, message, method)


def _callback(board: Switchboard, message: SimMessage, method: str) -> None:
    if not message.status_callback:
        return
    params = {"MessageSid": message.sid, "SmsSid": message.sid,
              "AccountSid": message.account_sid, "From": message.sender, "To": message.to,
              "MessageStatus": message.status, "SmsStatus": message.status,
              "ApiVersion": "2010-04-01"}
    board.deliveries.deliver(message.sid, Request(message.status_callback, method, params,
                                                  "message-status", None,
                                                  {"status": message.status}))
