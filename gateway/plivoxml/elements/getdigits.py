"""`<GetDigits>`: a keypad menu, with the prompts nested in it (Speak, Play, Wait).

Plivo's attributes and checks (hosted docs, "GetDigits"; the open-source engine caps numDigits at
99 and needs retries >= 1). Without `action` the keys are collected and nothing is requested.
Defaults in `attributes.DEFAULTS`; translation in `gateway.translate.getdigits`, what happens to
the caller's keys in `gateway.ivr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import BOOLEAN, FINISH_ON_KEY, METHOD, URL, Integer, KeySet
from ..model import Element

PROMPTS = ("Speak", "Play", "Wait")


@dataclass(frozen=True)
class GetDigits(Element):
    TAG: ClassVar[str] = "GetDigits"
    CHILDREN: ClassVar[tuple[str, ...]] = PROMPTS
    ATTRIBUTES: ClassVar[dict] = {
        "action": URL,
        "method": METHOD,
        "timeout": Integer(minimum=1),
        "digitTimeout": Integer(minimum=1),
        "finishOnKey": FINISH_ON_KEY,
        "numDigits": Integer(minimum=1, maximum=99),
        "retries": Integer(minimum=1),
        "redirect": BOOLEAN,
        "playBeep": BOOLEAN,
        "validDigits": KeySet(),
        "invalidDigitsSound": URL,
        "log": BOOLEAN,
    }

    children: tuple[Element, ...]
    action: str | None
    method: str
    timeout: int
    digit_timeout: int
    finish_on_key: str  # "" when no key submits
    num_digits: int
    retries: int
    redirect: bool
    play_beep: bool
    valid_digits: str
    invalid_digits_sound: str | None
    log: bool
