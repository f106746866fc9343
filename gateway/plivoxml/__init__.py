"""Plivo XML: a hardened parser and the typed model it produces (pure: no I/O, no clock).

    parse_document(text) -> Document   # raises PlivoXMLError(line, element, attribute, reason)
"""

from .elements import Conference, Hangup, Play, Record, Redirect, Speak, Ssml, Wait
from .errors import PlivoXMLError
from .model import Document, Element, Note, UnsupportedElement
from .parser import MAX_BYTES, parse_document

__all__ = [
    "MAX_BYTES", "Conference", "Document", "Element", "Hangup", "Note", "Play", "PlivoXMLError",
    "Record", "Redirect", "Speak", "Ssml", "UnsupportedElement", "Wait", "parse_document",
]
