"""The typed model of a Plivo XML document: `Document`, the `Element` base and report `Note`s.

Every supported element is a frozen dataclass (one module each under `elements/`) that declares
its attributes with their types, what its text must be, and which children it may have. The
parser builds them; nothing here does I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import ClassVar, Literal

from .attributes import AttributeType

Body = Literal["none", "text", "url", "ssml"]
Status = Literal["native", "translated", "emulated", "ignored", "unsupported", "not-yet"]


@functools.cache
def snake_case(name: str) -> str:
    """`startConferenceOnEnter` -> `start_conference_on_enter`, `relayDTMF` -> `relay_dtmf`."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).replace("-", "_").lower()


@dataclass(frozen=True)
class Note:
    """One line of the translation report: what happens to an element or attribute, and why."""

    element: str
    status: Status
    message: str
    line: int | None = None
    attribute: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        attr = f" {self.attribute}" if self.attribute else ""
        return f"{where}<{self.element}{attr}> {self.status}: {self.message}"


@dataclass(frozen=True)
class Element:
    """Base of every parsed element. Subclasses set TAG, ATTRIBUTES, BODY and CHILDREN."""

    TAG: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[Mapping[str, AttributeType]] = {}
    BODY: ClassVar[Body] = "none"
    CHILDREN: ClassVar[tuple[str, ...]] = ()
    BODY_NAME: ClassVar[str] = "a name"  # what a "text" body is, for the error when it is empty

    line: int = field(default=0, kw_only=True, compare=False)

    @classmethod
    def field_for(cls, attribute: str) -> str:
        return snake_case(attribute)

    @classmethod
    def build(cls, *, line: int, values: Mapping[str, object], body: object,
              children: tuple[Element, ...]) -> Element:
        """Make the element from checked attribute values (Plivo names), its body and children."""
        kwargs = {snake_case(k): v for k, v in values.items()}
        takes = _takes(cls)
        if "body" in takes:
            kwargs["body"] = body
        if "children" in takes:
            kwargs["children"] = children
        return cls(line=line, **kwargs)

    def problem(self) -> tuple[str | None, str] | None:
        """A rule across attributes, body and children that Plivo enforces, as (attribute or
        None, reason); None when the element is valid. Elements with such rules override it."""
        return None


@functools.cache
def _takes(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))


@dataclass(frozen=True)
class UnsupportedElement(Element):
    """A Plivo SDK element the gateway does not translate yet: kept and reported; a call that
    reaches one is refused (`translate.ElementCannotRun`), never skipped in silence."""

    tag: str = ""
    attributes: tuple[tuple[str, str], ...] = ()
    children: tuple[Element, ...] = ()


@dataclass(frozen=True)
class Document:
    """A validated Plivo XML document: its top-level elements and the parser's notes.

    `steps` is the order the elements run in: each `<PreAnswer>` followed by the elements nested
    in it (Twilio answers a call before it plays anything, so what Plivo plays as early media
    runs in place, like any other element). Translation positions (`resume_at`) index `steps`.
    """

    elements: tuple[Element, ...]
    notes: tuple[Note, ...] = ()

    @functools.cached_property
    def steps(self) -> tuple[Element, ...]:
        out: list[Element] = []
        for element in self.elements:
            out.append(element)
            if element.TAG == "PreAnswer":
                out.extend(getattr(element, "children", ()))
        return tuple(out)
