"""Problems found in an input file (routing files, simulator scenarios): where, and why.

Every check reports all it finds, not just the first, each with its file and key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileProblem:
    """One problem in one file, at one key."""

    file: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.reason}"


class ProblemsFound(Exception):
    """Raised when a file cannot be used; carries every problem found in it."""

    def __init__(self, errors: list[FileProblem]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
