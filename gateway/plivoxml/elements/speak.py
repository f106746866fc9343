"""`<Speak>`: text to speech, with Plivo's voices (WOMAN, MAN, Polly.*), language, loop and SSML.

The body is kept as a small tree: plain text and `Ssml` nodes for the SSML tags Plivo accepts
inside Speak (break, cont, emphasis, lang, p, phoneme, prosody, s, say-as, sub, w).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ..attributes import AttributeType, Integer
from ..model import Element

SSML_TAGS = ("break", "cont", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as",
             "sub", "w")


@dataclass(frozen=True)
class Voice(AttributeType):
    describe = "WOMAN, MAN or an Amazon Polly voice such as Polly.Joanna"

    def parse(self, text: str) -> str:
        if text in ("WOMAN", "MAN") or re.fullmatch(r"Polly\.[A-Za-z]+(-Neural|-Generative)?",
                                                    text):
            return text
        raise ValueError(f"{text!r} is not a Plivo voice: must be {self.describe}")


@dataclass(frozen=True)
class Language(AttributeType):
    describe = "a language code such as en-US"

    def parse(self, text: str) -> str:
        if re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,4})?", text):
            return text
        raise ValueError(f"{text!r} is not a language code such as en-US")


@dataclass(frozen=True)
class Ssml:
    """One SSML node inside Speak: its tag, attributes (in document order) and content."""

    tag: str
    attributes: tuple[tuple[str, str], ...] = ()
    children: tuple[str | Ssml, ...] = ()


@dataclass(frozen=True)
class Speak(Element):
    TAG: ClassVar[str] = "Speak"
    BODY: ClassVar[str] = "ssml"
    CHILDREN: ClassVar[tuple[str, ...]] = SSML_TAGS
    ATTRIBUTES: ClassVar[dict] = {
        "voice": Voice(),
        "language": Language(),
        "loop": Integer(minimum=0),
    }

    body: tuple[str | Ssml, ...]
    voice: str
    language: str
    loop: int

    @property
    def text(self) -> str:
        """The words alone, SSML markup dropped."""
        def flat(parts: tuple[str | Ssml, ...]) -> str:
            return "".join(p if isinstance(p, str) else flat(p.children) for p in parts)
        return " ".join(flat(self.body).split())
