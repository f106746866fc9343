"""digitsMatch: which of a member's key presses make a pattern (pure: keys and times in).

Plivo binds a `<Conference digitsMatch="#0,99,000">` member's keys and reports a pattern the
member typed. The rules, as a telephony engineer expects them of a digit binding:

- Keys pressed with less than `INTER_DIGIT_TIMEOUT_MS` between one key's end and the next key's
  start form one sequence; a longer pause ends the sequence.
- A pattern fires as soon as the sequence equals it and no longer pattern starts with it
  (`99` fires on the second 9). When a longer pattern does start with it (`00` beside `000`), it
  fires when the sequence ends: the pause runs out, or the next key cannot continue the longer
  pattern (`0 0 5` fires `00`, then `5` starts afresh).
- A sequence that can no longer become any pattern is dropped; the keys at its end that can still
  begin a pattern are kept (`9 # 0` still gives `#0`, `1 9 9` gives `99`), as a caller who
  mistypes and goes on typing expects.
- After a match the sequence starts afresh.

Times are milliseconds on the stream's own clock (media timestamps), never the wall clock, so the
same keys always give the same patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Long enough for ordinary typing (about 300-800 ms between keys), short enough that a pattern
# that is the start of a longer one (`00` beside `000`) is reported soon after the last key.
# The issue caps it at 2 s.
INTER_DIGIT_TIMEOUT_MS = 1500
KEYS = frozenset("0123456789*#")


@dataclass
class DigitsMatch:
    """One member's binding: feed it `press(key, start_ms, end_ms)` and `tick(now_ms)`."""

    patterns: tuple[str, ...]
    timeout_ms: int = INTER_DIGIT_TIMEOUT_MS
    sequence: str = ""
    last_end_ms: int | None = None
    _prefixes: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.patterns = tuple(p.strip() for p in self.patterns if p.strip())
        self._prefixes = frozenset(p[:n] for p in self.patterns for n in range(1, len(p) + 1))

    def press(self, key: str, start_ms: int, end_ms: int) -> list[str]:
        """One key; returns the patterns it completes (at most two: a sequence the key ends, and
        the sequence it makes itself)."""
        if key not in KEYS or not self.patterns:
            return []  # A-D are not in any pattern's alphabet
        fired = self.tick(start_ms)
        self.last_end_ms = end_ms
        extended = self.sequence + key
        if extended in self._prefixes:
            self.sequence = extended
        else:
            if self.sequence in self.patterns:  # `00` then a key that cannot make `000`
                fired.append(self.sequence)
                extended = key
            self.sequence = self._longest_live_suffix(extended)
        if self.sequence in self.patterns and not self._continues(self.sequence):
            fired.append(self.sequence)
            self.sequence = ""
        return fired

    def tick(self, now_ms: int) -> list[str]:
        """Time passes: a sequence whose pause ran out ends (and fires if it is a pattern)."""
        if not self.sequence or self.last_end_ms is None:
            return []
        if now_ms - self.last_end_ms < self.timeout_ms:
            return []
        ended, self.sequence = self.sequence, ""
        return [ended] if ended in self.patterns else []

    def flush(self) -> list[str]:
        """The stream ends: a complete pattern still waiting for its pause fires now."""
        ended, self.sequence = self.sequence, ""
        return [ended] if ended in self.patterns else []

    def _continues(self, sequence: str) -> bool:
        return any(len(p) > len(sequence) and p.startswith(sequence) for p in self.patterns)

    def _longest_live_suffix(self, keys: str) -> str:
        for start in range(len(keys)):
            if keys[start:] in self._prefixes:
                return keys[start:]
        return ""
