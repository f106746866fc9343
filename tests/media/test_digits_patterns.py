"""digitsMatch semantics: which key presses make which pattern (pure, on the stream's clock)."""

from __future__ import annotations

from gateway.media.digits_match import INTER_DIGIT_TIMEOUT_MS, DigitsMatch

PRESS_MS = 80
GAP_MS = 300


def typed(match: DigitsMatch, keys: str, at: int = 0, gap: int = GAP_MS) -> tuple[list[str], int]:
    """Press each key `gap` ms after the previous one ended; returns what fired and the end."""
    fired: list[str] = []
    for key in keys:
        fired += match.press(key, at, at + PRESS_MS)
        at += PRESS_MS + gap
    return fired, at


def test_pattern_fires_on_its_last_key_when_no_longer_pattern_starts_with_it():
    match = DigitsMatch(("#0", "99", "000"))
    assert typed(match, "99")[0] == ["99"]
    assert match.sequence == ""  # starts afresh


def test_keys_matching_nothing_fire_nothing_even_after_the_pause():
    match = DigitsMatch(("#0", "99", "000"))
    fired, end = typed(match, "1234")
    assert fired == [] and match.tick(end + INTER_DIGIT_TIMEOUT_MS) == []


def test_a_pattern_that_starts_a_longer_one_waits_for_the_pause():
    match = DigitsMatch(("00", "000"))
    fired, end = typed(match, "00")
    assert fired == []
    last_end = end - GAP_MS
    assert match.tick(last_end + INTER_DIGIT_TIMEOUT_MS - 1) == []
    assert match.tick(last_end + INTER_DIGIT_TIMEOUT_MS) == ["00"]


def test_the_longer_pattern_wins_when_typed_in_time():
    match = DigitsMatch(("00", "000"))
    assert typed(match, "000")[0] == ["000"]


def test_a_key_that_cannot_continue_fires_the_shorter_pattern_and_starts_afresh():
    match = DigitsMatch(("00", "000", "5#"))
    assert typed(match, "005#")[0] == ["00", "5#"]


def test_a_long_pause_splits_the_keys_into_two_sequences():
    match = DigitsMatch(("99",))
    fired, end = typed(match, "9")
    fired += typed(match, "9", at=end + INTER_DIGIT_TIMEOUT_MS)[0]
    assert fired == []


def test_mistyped_keys_are_dropped_but_a_live_ending_is_kept():
    assert typed(DigitsMatch(("#0", "99")), "9#0")[0] == ["#0"]
    assert typed(DigitsMatch(("#0", "99")), "199")[0] == ["99"]
    assert typed(DigitsMatch(("#0", "99")), "##0")[0] == ["#0"]


def test_each_match_starts_afresh():
    assert typed(DigitsMatch(("99",)), "9999")[0] == ["99", "99"]
    assert typed(DigitsMatch(("99",)), "999")[0] == ["99"]


def test_whitespace_around_patterns_is_ignored_and_letters_are_not_keys():
    match = DigitsMatch((" 12 ", "", "*"))
    assert match.patterns == ("12", "*")
    assert typed(match, "1A2")[0] == ["12"]  # A is not in the alphabet: it neither helps nor breaks


def test_a_complete_pattern_still_waiting_fires_when_the_stream_ends():
    match = DigitsMatch(("00", "000"))
    typed(match, "00")
    assert match.flush() == ["00"]
    assert match.flush() == []


def test_no_patterns_means_nothing_ever_fires():
    assert typed(DigitsMatch(()), "99")[0] == []
