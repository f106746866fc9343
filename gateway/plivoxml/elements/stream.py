"""`<Stream>`: fork the call's audio to the app's WebSocket server, one-way or both ways.

Attributes as hosted Plivo documents them (docs.plivo.com "Stream" XML, "Audio streaming"):
`bidirectional`, `audioTrack`, `streamTimeout`, `statusCallbackUrl`/`statusCallbackMethod`,
`contentType`, `extraHeaders`, `keepCallAlive`; the body is the app's `wss://` URL. Defaults in
`attributes.DEFAULTS`. Translation lives in `gateway.translate.stream`; the relay between
Twilio's stream protocol and Plivo's lives in `gateway.media.relay`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import urlsplit

from ..attributes import BOOLEAN, METHOD, URL, AttributeType, Enum, Integer
from ..model import Element

CONTENT_TYPES = ("audio/x-l16;rate=8000", "audio/x-l16;rate=16000", "audio/x-mulaw;rate=8000")
EXTRA_HEADERS_MAX = 512  # bytes, as Plivo documents


@dataclass(frozen=True)
class ExtraHeaders(AttributeType):
    """extraHeaders: `key=value` pairs separated by commas, letters and digits only, at most
    512 bytes (Plivo's rule); kept as the app wrote it, for the stream's `extra_headers`."""

    describe = "key=value pairs of letters and digits, comma-separated, at most 512 bytes"

    def parse(self, text: str) -> str:
        text = text.strip()
        if len(text.encode()) > EXTRA_HEADERS_MAX:
            raise ValueError(f"extraHeaders is {len(text.encode())} bytes: at most "
                             f"{EXTRA_HEADERS_MAX}")
        for pair in filter(None, (p.strip() for p in text.split(","))):
            if not re.fullmatch(r"[A-Za-z0-9]+=[A-Za-z0-9]*", pair):
                raise ValueError(f"{pair[:40]!r} is not a key=value pair of letters and digits")
        return text


@dataclass(frozen=True)
class Stream(Element):
    TAG: ClassVar[str] = "Stream"
    BODY: ClassVar[str] = "text"
    ATTRIBUTES: ClassVar[dict] = {
        "bidirectional": BOOLEAN,
        "audioTrack": Enum(("inbound", "outbound", "both")),
        "streamTimeout": Integer(minimum=1),
        "statusCallbackUrl": URL,
        "statusCallbackMethod": METHOD,
        "contentType": Enum(CONTENT_TYPES),
        "extraHeaders": ExtraHeaders(),
        "keepCallAlive": BOOLEAN,
    }

    body: str  # the app's WebSocket URL
    bidirectional: bool
    audio_track: str
    stream_timeout: int
    status_callback_url: str | None
    status_callback_method: str
    content_type: str
    extra_headers: str
    keep_call_alive: bool

    @property
    def url(self) -> str:
        return self.body

    @property
    def sample_rate(self) -> int:
        return int(self.content_type.rpartition("=")[2])

    @property
    def encoding(self) -> str:
        return self.content_type.partition(";")[0]

    def problem(self) -> tuple[str | None, str] | None:
        parts = urlsplit(self.body)
        if parts.scheme not in ("ws", "wss") or not parts.hostname or " " in self.body:
            return None, f"{self.body[:80]!r} is not a WebSocket URL (wss://host/path)"
        if self.bidirectional and self.audio_track != "inbound":
            # Plivo: "When bidirectional is true, audioTrack should not be outbound or both."
            return "audioTrack", (f"{self.audio_track!r} with bidirectional=\"true\": a "
                                  "bidirectional stream carries the inbound track only")
        return None
