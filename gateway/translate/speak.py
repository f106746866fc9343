"""`<Speak>` -> `<Say>`: Plivo's voices to Twilio's, language, loop, and SSML node by node.

Plivo's WOMAN and MAN are neural/standard voices chosen by language; Twilio's legacy `woman`/
`man` only speak a handful of languages, so they become the Amazon Polly voice of that language
and gender (table below); Plivo's own `Polly.*` voices pass through unchanged (Twilio has the same
names). Languages without a table row keep Twilio's `woman`/`man`.
"""

from __future__ import annotations

from twilio.twiml import TwiML
from twilio.twiml.voice_response import (
    Say,
    SsmlBreak,
    SsmlEmphasis,
    SsmlLang,
    SsmlP,
    SsmlPhoneme,
    SsmlProsody,
    SsmlS,
    SsmlSayAs,
    SsmlSub,
    SsmlW,
)

from ..plivoxml.elements import Speak, Ssml
from .builder import TwimlBuilder
from .outcome import Flow

# language -> (WOMAN, MAN) as Amazon Polly voices available on Twilio.
POLLY_VOICES: dict[str, tuple[str, str]] = {
    "en-US": ("Polly.Joanna", "Polly.Matthew"),
    "en-GB": ("Polly.Amy", "Polly.Brian"),
    "en-AU": ("Polly.Nicole", "Polly.Russell"),
    "en-IN": ("Polly.Aditi", "Polly.Raveena"),
    "es-ES": ("Polly.Conchita", "Polly.Enrique"),
    "es-US": ("Polly.Penelope", "Polly.Miguel"),
    "fr-FR": ("Polly.Celine", "Polly.Mathieu"),
    "fr-CA": ("Polly.Chantal", "Polly.Chantal"),
    "de-DE": ("Polly.Marlene", "Polly.Hans"),
    "it-IT": ("Polly.Carla", "Polly.Giorgio"),
    "ja-JP": ("Polly.Mizuki", "Polly.Takumi"),
    "pt-BR": ("Polly.Vitoria", "Polly.Ricardo"),
    "pt-PT": ("Polly.Ines", "Polly.Cristiano"),
    "nl-NL": ("Polly.Lotte", "Polly.Ruben"),
    "ru-RU": ("Polly.Tatyana", "Polly.Maxim"),
    "pl-PL": ("Polly.Ewa", "Polly.Jacek"),
    "da-DK": ("Polly.Naja", "Polly.Mads"),
    "sv-SE": ("Polly.Astrid", "Polly.Astrid"),
    "nb-NO": ("Polly.Liv", "Polly.Liv"),
    "tr-TR": ("Polly.Filiz", "Polly.Filiz"),
    "ro-RO": ("Polly.Carmen", "Polly.Carmen"),
    "cy-GB": ("Polly.Gwyneth", "Polly.Gwyneth"),
    "is-IS": ("Polly.Dora", "Polly.Karl"),
    "ko-KR": ("Polly.Seoyeon", "Polly.Seoyeon"),
    "cmn-CN": ("Polly.Zhiyu", "Polly.Zhiyu"),
    "arb": ("Polly.Zeina", "Polly.Zeina"),
    "hi-IN": ("Polly.Aditi", "Polly.Aditi"),
}

SSML_CLASSES: dict[str, type[TwiML]] = {
    "break": SsmlBreak, "emphasis": SsmlEmphasis, "lang": SsmlLang, "p": SsmlP,
    "phoneme": SsmlPhoneme, "prosody": SsmlProsody, "s": SsmlS, "say-as": SsmlSayAs,
    "sub": SsmlSub, "w": SsmlW,
}


def twilio_voice(voice: str, language: str) -> str:
    if voice.startswith("Polly."):
        return voice
    pair = POLLY_VOICES.get(language)
    if pair:
        return pair[0] if voice == "WOMAN" else pair[1]
    return voice.lower()


def _without_cont(parts: tuple[str | Ssml, ...], dropped: list[str]) -> list[str | Ssml]:
    """Inline `<cont>` nodes (no SSML equivalent on Twilio): their content stays, in place."""
    out: list[str | Ssml] = []
    for part in parts:
        if isinstance(part, Ssml) and part.tag not in SSML_CLASSES:
            dropped.append(part.tag)
            out.extend(_without_cont(part.children, dropped))
        else:
            out.append(part)
    return out


def _nest_content(parent: TwiML, parts: tuple[str | Ssml, ...], dropped: list[str]) -> None:
    text = ""  # adjacent strings must be merged: twilio's builder keeps one text per position
    for part in _without_cont(parts, dropped):
        if isinstance(part, str):
            text += part
            continue
        if text:
            parent.nest(text)
            text = ""
        cls, attributes = SSML_CLASSES[part.tag], dict(part.attributes)
        # twilio's SSML classes take their words first, except <break>; words come as children.
        child = parent.nest(cls(**attributes) if cls is SsmlBreak else cls(None, **attributes))
        _nest_content(child, part.children, dropped)
    if text:
        parent.nest(text)


def translate_speak(speak: Speak, builder: TwimlBuilder) -> Flow:
    voice = twilio_voice(speak.voice, speak.language)
    say = Say(voice=voice, language=speak.language, loop=speak.loop)
    flattened: list[str] = []
    _nest_content(say, speak.body, flattened)
    builder.response.append(say)
    builder.verbs += 1
    if flattened:
        builder.note("Speak", "translated", "SSML <cont> has no Twilio equivalent: its words "
                     "are spoken without it", line=speak.line)
    if speak.loop == 0:
        builder.note("Speak", "native", "loop=0: repeated until the call moves on "
                     "(Twilio's loop=0)", line=speak.line, attribute="loop")
    return Flow.CONTINUE
