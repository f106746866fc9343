"""`<Dial>`, `<Number>` and `<User>`: forward the call to phone numbers and SIP users, all
rung at once (the first to answer is connected), with Plivo's attributes and checks.

Hosted Plivo's reference ("The Dial element", "The Number element", "The User element") is the
authority; the plivo-python SDK gives the attribute set. Defaults in `attributes.DEFAULTS`;
translation in `gateway.translate.dial`, the callbacks and the action in `gateway.dial`.

Checked here, before anything runs: a Number is a phone number (digits, an optional leading
`+`), a User is a plain `sip:user@host[:port]` URI (no parameters, headers or display name: a
`;`, `?` or `>` in it would inject SIP syntax), sipHeaders are Plivo's letters-and-digits pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..attributes import (
    BOOLEAN,
    METHOD,
    TEXT,
    URL,
    CallerId,
    ConfirmKey,
    DialMusic,
    DigitPatterns,
    Digits,
    Integer,
    SipHeaders,
)
from ..model import Element

PHONE_NUMBER = re.compile(r"\+?[1-9][0-9]{6,14}")
SIP_URI = re.compile(r"sips?:(?P<user>[A-Za-z0-9._~+-]+)@(?P<host>[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
CALLER_NAME_MAX = 50


@dataclass(frozen=True)
class Number(Element):
    TAG: ClassVar[str] = "Number"
    BODY: ClassVar[str] = "text"
    BODY_NAME: ClassVar[str] = "a phone number"
    ATTRIBUTES: ClassVar[dict] = {
        "sendDigits": Digits(),
        "sendOnPreanswer": BOOLEAN,
    }

    body: str
    send_digits: str
    send_on_preanswer: bool

    @property
    def e164(self) -> str:
        """The number as Twilio dials it: E.164 with its `+` (Plivo apps often omit it)."""
        return self.body if self.body.startswith("+") else "+" + self.body

    def problem(self) -> tuple[str | None, str] | None:
        if not PHONE_NUMBER.fullmatch(self.body):
            return None, (f"{self.body[:40]!r} is not a phone number: digits in E.164 form "
                          "(country code first, 7 to 15 digits, an optional leading +)")
        return None


@dataclass(frozen=True)
class User(Element):
    TAG: ClassVar[str] = "User"
    BODY: ClassVar[str] = "text"
    BODY_NAME: ClassVar[str] = "a SIP URI"
    ATTRIBUTES: ClassVar[dict] = {
        "sendDigits": Digits(),
        "sendOnPreanswer": BOOLEAN,
        "sipHeaders": SipHeaders(),
    }

    body: str
    send_digits: str
    send_on_preanswer: bool
    sip_headers: tuple[tuple[str, str], ...]

    @property
    def host(self) -> str:
        match = SIP_URI.fullmatch(self.body)
        return match.group("host").lower() if match else ""

    def problem(self) -> tuple[str | None, str] | None:
        if not SIP_URI.fullmatch(self.body):
            return None, (f"{self.body[:60]!r} is not a plain SIP URI (sip:user@host, no "
                          "parameters, headers or display name)")
        return None


@dataclass(frozen=True)
class Dial(Element):
    TAG: ClassVar[str] = "Dial"
    CHILDREN: ClassVar[tuple[str, ...]] = ("Number", "User")
    ATTRIBUTES: ClassVar[dict] = {
        "action": URL,
        "method": METHOD,
        "hangupOnStar": BOOLEAN,
        "timeLimit": Integer(minimum=0),
        "timeout": Integer(minimum=1),
        "callerId": CallerId(),
        "callerName": TEXT,
        "confirmSound": URL,
        "confirmKey": ConfirmKey(),
        "confirmTimeout": Integer(minimum=1),
        "dialMusic": DialMusic(),
        "callbackUrl": URL,
        "callbackMethod": METHOD,
        "redirect": BOOLEAN,
        "digitsMatch": DigitPatterns(),
        "digitsMatchBLeg": DigitPatterns(),
        "sipHeaders": SipHeaders(),
    }

    children: tuple[Element, ...]
    action: str | None
    method: str
    hangup_on_star: bool
    time_limit: int
    timeout: int | None
    caller_id: str | None
    caller_name: str | None
    confirm_sound: str | None
    confirm_key: str
    confirm_timeout: int
    dial_music: str
    callback_url: str | None
    callback_method: str
    redirect: bool
    digits_match: tuple[str, ...]
    digits_match_b_leg: tuple[str, ...]
    sip_headers: tuple[tuple[str, str], ...]

    @property
    def confirms(self) -> bool:
        """confirmSound and confirmKey together: the callee must press the key (Plivo needs
        both; one without the other does nothing)."""
        return bool(self.confirm_sound and self.confirm_key)

    def problem(self) -> tuple[str | None, str] | None:
        if not self.children:
            return None, "<Dial> needs at least one <Number> or <User> to dial"
        if self.caller_name is not None and len(self.caller_name) > CALLER_NAME_MAX:
            return "callerName", (f"{len(self.caller_name)} characters: Plivo allows at most "
                                  f"{CALLER_NAME_MAX}")
        return None
