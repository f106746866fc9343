"""Plivo XML: a hardened parser and the typed model it produces (pure: no I/O, no clock).

    parse_document(text) -> Document   # raises PlivoXMLError(line, element, attribute, reason)
"""

from .elements import (
    DTMF,
    Conference,
    Dial,
    GetDigits,
    GetInput,
    Hangup,
    Play,
    PreAnswer,
    Record,
    Redirect,
    Speak,
    Ssml,
    Wait,
)
from .errors import PlivoXMLError
from .model import Document, Element, Note, UnsupportedElement
from .parser import MAX_BYTES, parse_document

__all__ = [
    "DTMF", "MAX_BYTES", "Conference", "Dial", "Document", "Element", "GetDigits", "GetInput",
    "Hangup", "Note", "Play", "PlivoXMLError", "PreAnswer", "Record", "Redirect", "Speak", "Ssml",
    "UnsupportedElement", "Wait", "parse_document",
]
