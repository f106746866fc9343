"""The token a side stream carries in its `<Parameter>`s: who it is for, provable without the store.

Twilio forbids a query string in a stream URL, so the member a stream belongs to travels as
`customParameters` in the stream's `start` message, with an HMAC over it. The key is derived from
the Twilio auth token the gateway already holds (a separate purpose string, so a token is never a
valid Twilio signature and vice versa); any gateway process can check a token with no shared
state. The label names the call (CallSid) and its step, so a token is good for one stay in one
room only, and the server also checks it against the `start` message's callSid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PURPOSE = b"plivo-twilio-gateway media stream token v1"


def token_key(twilio_auth_token: str) -> bytes:
    return hmac.new(twilio_auth_token.encode(), PURPOSE, hashlib.sha256).digest()


def stream_token(key: bytes, label: str) -> str:
    digest = hmac.new(key, label.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_valid(key: bytes, label: str, token: str) -> bool:
    return hmac.compare_digest(stream_token(key, label).encode(), token.encode("utf-8",
                                                                                "replace"))
