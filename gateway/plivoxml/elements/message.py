"""`<Message>`: send an SMS during the call (docs.plivo.com "The Message element").

Attributes: `src` (the sender), `dst` (one number, or several separated by `<`), `type` (Plivo's
reference allows `sms`; the SDK also writes `mms` and `whatsapp`, which parse and are refused at
call time with the reason), `callbackUrl`/`callbackMethod` (delivery reports). The text is the
body. Defaults in `attributes.DEFAULTS`; translation in `gateway.translate.message`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..attributes import METHOD, TEXT, URL, AttributeType, Enum
from ..model import Element

TWILIO_BODY_LIMIT = 1600   # characters: Twilio refuses a longer body (error 21617)
MAX_DESTINATIONS = 50      # the gateway's bound on one element's bulk send
NUMBER = re.compile(r"\+?[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class Destinations(AttributeType):
    """dst: numbers (Plivo writes them without '+') separated by `<`; E.164 each."""

    describe = "numbers like 14155550100, several separated by <"

    def parse(self, text: str) -> tuple[str, ...]:
        numbers = tuple(n.strip() for n in text.split("<") if n.strip())
        for number in numbers:
            if not NUMBER.fullmatch(number):
                raise ValueError(f"{number[:30]!r} is not a phone number (E.164, like "
                                 "14155550100)")
        if len(numbers) > MAX_DESTINATIONS:
            raise ValueError(f"{len(numbers)} destinations: at most {MAX_DESTINATIONS}")
        return tuple("+" + n.lstrip("+") for n in numbers)


@dataclass(frozen=True)
class Message(Element):
    TAG: ClassVar[str] = "Message"
    BODY: ClassVar[str] = "text"
    ATTRIBUTES: ClassVar[dict] = {
        "src": TEXT,
        "dst": Destinations(),
        "type": Enum(("sms", "mms", "whatsapp")),
        "callbackUrl": URL,
        "callbackMethod": METHOD,
    }

    body: str
    src: str | None
    dst: tuple[str, ...] | None
    type: str
    callback_url: str | None
    callback_method: str

    @property
    def text(self) -> str:
        return self.body

    def problem(self) -> tuple[str | None, str] | None:
        if len(self.body) > TWILIO_BODY_LIMIT:
            return None, (f"the message text is {len(self.body):,} characters: Twilio sends at "
                          f"most {TWILIO_BODY_LIMIT:,}; nothing was sent")
        return None
