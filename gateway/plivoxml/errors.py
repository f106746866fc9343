"""Typed errors of the Plivo XML core: each carries where (line, element, attribute) and why."""

from __future__ import annotations


class PlivoXMLError(ValueError):
    """A Plivo XML document that Plivo itself would refuse (or that is unsafe to read).

    Raised at the edge of the parser; turned into a spoken apology and one log line in exactly one
    place (the webhook layer), or into a non-zero exit by `gateway translate`.
    """

    def __init__(self, reason: str, *, line: int | None = None, element: str | None = None,
                 attribute: str | None = None):
        self.reason = reason
        self.line = line
        self.element = element
        self.attribute = attribute
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.element:
            where.append(f"<{self.element}{' ' + self.attribute if self.attribute else ''}>")
        return (", ".join(where) + ": " if where else "") + self.reason
