"""Conference room names on Twilio: scoped by the Plivo account, opaque, fixed length.

Plivo scopes rooms by account; Twilio scopes them by its own account, which every mapped app
shares. So the Twilio FriendlyName is derived from (account, room): two accounts with the same
room never meet, and any room text (spaces, quotes, `>`, Unicode, hundreds of characters) gives a
short name Twilio accepts. The name is a digest, so it carries no personal data into Twilio's
logs (Twilio's documentation asks for that); the gateway keeps the original room text in its
state and reports it back to the app as Plivo would.
"""

from __future__ import annotations

import base64
import functools
import hashlib

PREFIX = "plivo"


@functools.lru_cache(maxsize=4096)
def twilio_room_name(account: str, room: str) -> str:
    """`plivo-<account>-<26 base32 chars of sha256(account, room)>`: at most 97 characters."""
    digest = hashlib.sha256(f"{account}\n{room}".encode()).digest()
    code = base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:26]
    return f"{PREFIX}-{account}-{code}"
