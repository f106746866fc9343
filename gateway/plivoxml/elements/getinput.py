"""`<GetInput>`: keys, speech or both, with the prompts nested in it (Speak, Play, Wait).

Plivo's attributes and ranges as hosted Plivo documents them ("GetInput"): executionTimeout 5-60,
digitEndTimeout and speechEndTimeout 2-10 or auto, numDigits 1-32, speechModel default/
command_and_search/phone_call, hints within 500 phrases and 10,000 characters; `action` is
required. Translation in `gateway.translate.getinput`; the caller's answer in `gateway.ivr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..attributes import (
    BOOLEAN,
    FINISH_ON_KEY,
    METHOD,
    URL,
    Enum,
    Hints,
    Integer,
    SecondsOrAuto,
)
from ..model import Element
from .getdigits import PROMPTS
from .speak import Language

INPUT_TYPES = ("dtmf", "speech", "dtmf speech")
SPEECH_MODELS = ("default", "command_and_search", "phone_call")


@dataclass(frozen=True)
class GetInput(Element):
    TAG: ClassVar[str] = "GetInput"
    CHILDREN: ClassVar[tuple[str, ...]] = PROMPTS
    ATTRIBUTES: ClassVar[dict] = {
        "action": URL,
        "method": METHOD,
        "inputType": Enum(INPUT_TYPES),
        "executionTimeout": Integer(minimum=5, maximum=60),
        "digitEndTimeout": SecondsOrAuto(),
        "speechEndTimeout": SecondsOrAuto(),
        "finishOnKey": FINISH_ON_KEY,
        "numDigits": Integer(minimum=1, maximum=32),
        "speechModel": Enum(SPEECH_MODELS),
        "hints": Hints(),
        "language": Language(),
        "interimSpeechResultsCallback": URL,
        "interimSpeechResultsCallbackMethod": METHOD,
        "log": BOOLEAN,
        "redirect": BOOLEAN,
        "profanityFilter": BOOLEAN,
    }

    children: tuple[Element, ...]
    action: str | None
    method: str
    input_type: str
    execution_timeout: int
    digit_end_timeout: int | None  # None: auto
    speech_end_timeout: int | None  # None: auto
    finish_on_key: str
    num_digits: int
    speech_model: str
    hints: tuple[str, ...]
    language: str
    interim_speech_results_callback: str | None
    interim_speech_results_callback_method: str
    log: bool
    redirect: bool
    profanity_filter: bool

    @property
    def dtmf(self) -> bool:
        return "dtmf" in self.input_type

    @property
    def speech(self) -> bool:
        return "speech" in self.input_type

    def problem(self) -> tuple[str | None, str] | None:
        if self.action is None:
            return "action", "<GetInput> needs an action URL (Plivo requires one)"
        return None
