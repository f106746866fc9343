"""Safe parsing and whole-document validation of Plivo XML, before anything runs.

lxml with entity resolution, DTD loading and network access off; a size cap and a depth cap; any
DOCTYPE refused. The root must be `<Response>`; every element must be one Plivo knows and sit
where Plivo allows it; every attribute value is checked as Plivo checks it, and Plivo's defaults
are applied from `attributes.DEFAULTS`. Unknown attributes are ignored, as Plivo ignores them,
and reported. The result is a typed `Document`; the first problem raises `PlivoXMLError` with
line, element, attribute and reason.
"""

from __future__ import annotations

import functools
import re
import threading

from lxml import etree

from .attributes import DEFAULTS
from .elements import NOT_YET, RESPONSE_CHILDREN, SSML_TAGS, SUPPORTED, Ssml
from .errors import PlivoXMLError
from .model import Document, Element, Note, UnsupportedElement

MAX_BYTES = 1 << 20
MAX_DEPTH = 16
# Twilio refuses TwiML over 64 kB (error 11750) and every element becomes at least one verb of
# 16 bytes or more, so a document with more elements than this can never run: parsing stops there
# instead of building a model Twilio would refuse (a 1 MB answer of <Wait/> cost 3 s of CPU).
MAX_ELEMENTS = 64 * 1024 // 16
XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")

_local = threading.local()


def _xml_parser() -> etree.XMLParser:
    # One parser per thread: lxml parser objects must not be shared between threads.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
            huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
        )
        _local.parser = parser
    return parser


def _collapse(text: str | None) -> str:
    return " ".join((text or "").split())


class _Walker:
    """Walks the lxml tree once, building typed elements and collecting notes."""

    def __init__(self) -> None:
        self.notes: list[Note] = []
        self.count = 0

    def element(self, node: etree._Element, parent: str, allowed: tuple[str, ...],
                depth: int) -> Element:
        tag = node.tag if isinstance(node.tag, str) else str(node.tag)
        line = node.sourceline
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise PlivoXMLError(f"more than {MAX_ELEMENTS} elements: the TwiML could not fit "
                                "in Twilio's 64 kB limit", line=line, element=tag)
        if depth > MAX_DEPTH:
            raise PlivoXMLError(f"elements nested deeper than {MAX_DEPTH} levels", line=line,
                                element=tag)
        if tag.startswith("{"):
            raise PlivoXMLError("namespaced elements are not Plivo XML", line=line, element=tag)
        if tag not in SUPPORTED and tag not in NOT_YET:
            raise PlivoXMLError("unknown element (not a Plivo XML element)", line=line,
                                element=tag)
        if tag not in allowed:
            raise PlivoXMLError(f"<{tag}> is not allowed inside <{parent}>", line=line,
                                element=tag)
        if tag in NOT_YET:
            return self.unsupported(node, tag, depth)
        return self.supported(node, SUPPORTED[tag], depth)

    def unsupported(self, node: etree._Element, tag: str, depth: int) -> Element:
        children = tuple(self.element(child, tag, NOT_YET[tag], depth + 1) for child in node)
        attributes = tuple((str(k), str(v)) for k, v in node.attrib.items())
        return UnsupportedElement(tag=tag, attributes=attributes, children=children,
                                  line=node.sourceline)

    def supported(self, node: etree._Element, cls: type[Element], depth: int) -> Element:
        tag, line = cls.TAG, node.sourceline
        values = dict(default_values(cls))
        for name, text in node.attrib.items():
            attribute_type = cls.ATTRIBUTES.get(name)
            if attribute_type is None:
                self.notes.append(Note(tag, "ignored", "unknown attribute, ignored as Plivo "
                                       "ignores it", line=line, attribute=str(name)))
                continue
            try:
                values[name] = attribute_type.parse(text)
            except ValueError as exc:
                raise PlivoXMLError(str(exc), line=line, element=tag, attribute=name) from None
        children: tuple[Element, ...] = ()
        if cls.BODY != "ssml":  # SSML children belong to the body
            children = tuple(self.element(c, tag, cls.CHILDREN, depth + 1) for c in node)
        body = self.body(node, cls, depth)
        element = cls.build(line=line, values=values, body=body, children=children)
        problem = element.problem()
        if problem is not None:
            attribute, reason = problem
            raise PlivoXMLError(reason, line=line, element=tag, attribute=attribute)
        return element

    def body(self, node: etree._Element, cls: type[Element], depth: int) -> object:
        tag, line = cls.TAG, node.sourceline
        if cls.BODY == "ssml":
            content = self.ssml_content(node, tag, depth)
            if not _collapse("".join(_flatten(content))):
                raise PlivoXMLError(f"<{tag}> needs text to speak", line=line, element=tag)
            return content
        text = _collapse(node.text)
        if cls.BODY == "none":
            if text:
                self.notes.append(Note(tag, "ignored", f"text {text[:40]!r} ignored: <{tag}> "
                                       "takes no text", line=line))
            return None
        if cls.BODY == "url":
            if not text:
                raise PlivoXMLError(f"<{tag}> needs a URL", line=line, element=tag)
            if not re.match(r"^https?://[^\s/]", text):
                raise PlivoXMLError(f"{text[:80]!r} is not an absolute http(s) URL", line=line,
                                    element=tag)
            return text
        if not text:
            raise PlivoXMLError(f"<{tag}> needs {cls.BODY_NAME} (its text)", line=line,
                                element=tag)
        return text

    def ssml_content(self, node: etree._Element, parent: str, depth: int
                     ) -> tuple[str | Ssml, ...]:
        parts: list[str | Ssml] = []
        if node.text:
            parts.append(node.text)
        for child in node:
            tag = child.tag if isinstance(child.tag, str) else str(child.tag)
            if tag not in SSML_TAGS:
                raise PlivoXMLError(f"<{tag}> is not allowed inside <{parent}> (only SSML tags: "
                                    + ", ".join(SSML_TAGS) + ")", line=child.sourceline,
                                    element=tag)
            if depth + 1 > MAX_DEPTH:
                raise PlivoXMLError(f"elements nested deeper than {MAX_DEPTH} levels",
                                    line=child.sourceline, element=tag)
            attributes = tuple((k.replace(XML_NS, "xml:"), v) for k, v in child.attrib.items())
            parts.append(Ssml(tag, attributes, self.ssml_content(child, tag, depth + 1)))
            if child.tail:
                parts.append(child.tail)
        return tuple(parts)


@functools.cache
def default_values(cls: type[Element]) -> dict[str, object]:
    """Plivo's defaults for an element, checked once through the same types as written values;
    None for attributes without a default. (Values are immutable, so sharing them is safe.)"""
    defaults = DEFAULTS.get(cls.TAG, {})
    return {name: attribute_type.parse(defaults[name]) if name in defaults else None
            for name, attribute_type in cls.ATTRIBUTES.items()}


def _flatten(parts: tuple[str | Ssml, ...]):
    for p in parts:
        if isinstance(p, str):
            yield p
        else:
            yield from _flatten(p.children)


CACHED_BYTES = 16 * 1024  # documents up to this size are remembered (most apps repeat theirs)


def parse_document(source: str | bytes, *, max_bytes: int = MAX_BYTES,
                   cache: bool = True) -> Document:
    """Parse and validate a whole Plivo XML document; raise PlivoXMLError on the first problem.

    Documents are immutable once parsed, and an app usually answers every call with the same
    few documents, so small ones are kept in a bounded cache (errors are never cached)."""
    if cache and max_bytes == MAX_BYTES and len(source) <= CACHED_BYTES:
        return _parse_cached(source)
    return _parse(source, max_bytes)


@functools.lru_cache(maxsize=256)
def _parse_cached(source: str | bytes) -> Document:
    return _parse(source, MAX_BYTES)


def _parse(source: str | bytes, max_bytes: int) -> Document:
    if isinstance(source, str):
        # Already decoded text: its declaration's encoding no longer applies.
        data = _DECLARATION.sub("", source, count=1).encode("utf-8")
    else:
        data = bytes(source)
    if len(data) > max_bytes:
        raise PlivoXMLError(f"document is {len(data)} bytes, more than the {max_bytes} allowed")
    if not data.strip():
        raise PlivoXMLError("empty document (expected <Response>)")
    match = _DOCTYPE.search(data)
    if match:
        line = data.count(b"\n", 0, match.start()) + 1
        raise PlivoXMLError("DOCTYPE and entity declarations are not allowed", line=line)
    try:
        root = etree.fromstring(data, _xml_parser())
    except etree.XMLSyntaxError as exc:
        raise PlivoXMLError(f"not well-formed XML: {exc.msg}", line=exc.lineno) from None
    if root.getroottree().docinfo.doctype:
        raise PlivoXMLError("DOCTYPE declarations are not allowed", line=1)
    if root.tag != "Response":
        raise PlivoXMLError(f"the root element must be <Response>, not <{root.tag}>",
                            line=root.sourceline, element=str(root.tag))
    walker = _Walker()
    for name in root.attrib:
        walker.notes.append(Note("Response", "ignored", "attribute ignored",
                                 line=root.sourceline, attribute=str(name)))
    if _collapse(root.text) or any(_collapse(c.tail) for c in root):
        walker.notes.append(Note("Response", "ignored", "text between elements ignored",
                                 line=root.sourceline))
    elements = tuple(walker.element(child, "Response", RESPONSE_CHILDREN, 1) for child in root)
    document = Document(elements=elements)
    for element in document.steps:  # PreAnswer's elements too
        if isinstance(element, UnsupportedElement):
            walker.notes.append(Note(element.tag, "not-yet", "not yet supported by the gateway: "
                                     "a call that reaches it hears an apology, not silence",
                                     line=element.line))
    return Document(elements=elements, notes=tuple(walker.notes))
