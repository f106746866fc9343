"""Twilio-shaped identifiers and timestamps: SIDs (`CA…`, `CF…`, `RE…`, `MZ…`) and date formats.

A SID is a two-letter prefix and 32 lowercase hex digits. Twilio writes dates in REST bodies and
most callbacks as RFC 2822 (`Thu, 01 Jun 2017 20:48:32 +0000`); Media Streams status callbacks use
ISO 8601.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

SID_PATTERN = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


def new_sid(prefix: str) -> str:
    """A fresh SID such as `CA` + 32 hex digits."""
    if len(prefix) != 2 or not prefix.isupper():
        raise ValueError(f"a SID prefix is two capital letters, not {prefix!r}")
    return prefix + secrets.token_hex(16)


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None = None) -> str:
    """`Thu, 01 Jun 2017 20:48:32 +0000`, as Twilio writes `Timestamp` and `date_created`."""
    return format_datetime(moment or utc_now())


def iso8601(moment: datetime | None = None) -> str:
    """`2017-06-01T20:48:32.123Z`, as Media Streams status callbacks write `Timestamp`."""
    moment = moment or utc_now()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
