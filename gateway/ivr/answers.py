"""What the caller gave a menu, judged as Plivo would, and the parameters the app receives. Pure.

Twilio reports a Gather with `Digits` (keys, finishOnKey excluded), or `SpeechResult` and
`Confidence`. Plivo's GetDigits sends `Digits`; GetInput sends `InputType`, `Digits`, `Speech`,
`SpeechConfidenceScore` and `BilledAmount` (hosted docs, "GetInput": "parameters sent to the action
URL"); interim results carry `StableSpeech`, `UnstableSpeech`, `Stability`, `SequenceNumber`.

Whatever arrives is treated as untrusted text: keys other than 0-9 * # make the answer invalid
(never forwarded), keys beyond numDigits are dropped (Plivo keeps only numDigits), and speech is
stripped of control characters and cut to `MAX_SPEECH` characters, so that what reaches the app
is always a sensible, signable form value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..plivoxml import GetDigits, GetInput

MAX_SPEECH = 2000  # characters of recognised speech forwarded (Plivo's own limit is not stated)
BILLED_AMOUNT = "0.00000"  # Twilio bills speech recognition itself; Plivo's charge is none here
_KEYS = re.compile(r"[0-9*#]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

Verdict = Literal["valid", "invalid", "none"]


@dataclass(frozen=True)
class MenuAnswer:
    """verdict: valid (request the action), invalid (keys outside validDigits, or not keys at
    all), none (nothing pressed or said). params: what the action receives, for a valid one.
    reason: why an answer is invalid, for the log (never the keys themselves)."""

    verdict: Verdict
    params: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def clean_speech(text: str) -> str:
    """Speech as a single line of printable text, at most MAX_SPEECH characters."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text[:MAX_SPEECH]


def _keys(twilio: Mapping[str, str], num_digits: int) -> str | None:
    """The keys pressed, at most num_digits of them; None when Digits is not keys at all."""
    digits = twilio.get("Digits", "").strip()
    if not _KEYS.fullmatch(digits):
        return None
    return digits[:num_digits]


def judge_digits(menu: GetDigits, twilio: Mapping[str, str]) -> MenuAnswer:
    keys = _keys(twilio, menu.num_digits)
    if keys is None:
        return MenuAnswer("invalid", reason="Digits is not made of the keys 0-9, * and #")
    if not keys:
        return MenuAnswer("none")
    if any(k not in menu.valid_digits for k in keys):
        return MenuAnswer("invalid", reason="a key outside validDigits")
    return MenuAnswer("valid", {"Digits": keys})


def judge_input(menu: GetInput, twilio: Mapping[str, str]) -> MenuAnswer:
    speech = clean_speech(twilio.get("SpeechResult", "")) if menu.speech else ""
    if speech:
        return MenuAnswer("valid", {
            "InputType": "speech", "Digits": "", "Speech": speech,
            "SpeechConfidenceScore": confidence(twilio.get("Confidence", "")),
            "BilledAmount": BILLED_AMOUNT})
    keys = _keys(twilio, menu.num_digits) if menu.dtmf else ""
    if keys is None:
        return MenuAnswer("invalid", reason="Digits is not made of the keys 0-9, * and #")
    if not keys:
        return MenuAnswer("none")
    return MenuAnswer("valid", {"InputType": "dtmf", "Digits": keys, "Speech": "",
                                "SpeechConfidenceScore": "", "BilledAmount": BILLED_AMOUNT})


def judge(menu: GetDigits | GetInput, twilio: Mapping[str, str]) -> MenuAnswer:
    return judge_digits(menu, twilio) if isinstance(menu, GetDigits) else judge_input(menu,
                                                                                       twilio)


def confidence(text: str) -> str:
    """Twilio's Confidence (0.0-1.0) as Plivo's SpeechConfidenceScore; '' when unusable."""
    try:
        value = float(text)
    except ValueError:
        return ""
    if not 0.0 <= value <= 1.0:
        return ""
    return f"{value:.6g}"


def interim_params(twilio: Mapping[str, str]) -> dict[str, str]:
    """Twilio's partial result -> Plivo's interimSpeechResultsCallback parameters."""
    stability = twilio.get("Stability", "")
    return {
        "StableSpeech": clean_speech(twilio.get("StableSpeechResult", "")),
        "UnstableSpeech": clean_speech(twilio.get("UnstableSpeechResult", "")),
        "Stability": confidence(stability) if stability else "",
        "SequenceNumber": twilio.get("SequenceNumber", "") if twilio.get(
            "SequenceNumber", "").isdigit() else "",
    }
