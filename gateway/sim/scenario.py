"""Scenario files: who calls which number when, what they press and say, and Twilio's faults.

```toml
duration = 20.0                      # seconds; the run ends by then
[twilio]                             # optional: faults Twilio is documented to exhibit
duplicate_events = 0.1               # probability of a conference/recording callback sent twice
reorder_events = true                # a conference's callbacks may arrive out of order
seed = 7                             # makes the faults reproducible
stream_keys = "tones"                # what a <Start><Stream> carries of key presses (below)
declined_dial = "no-answer"          # DialCallStatus when a callee's whisper hangs up (below)
[[call]]
name = "alice"                       # the label used in the transcript
from = "+14155550101"
to = "+14155550100"
at = 0.0                             # when the call comes in
hangup_at = 12.0                     # optional: the caller hangs up
keys = [{ at = 3.0, digits = "99" }] # key presses
speech = [{ from = 4.0, to = 6.0 }]  # when this caller talks; an optional `text` is what
                                     # they say (spoken into a <Record>ing's file)
say = [{ at = 3.0, text = "sales" }] # words a <Gather input="speech"> recognises
[[callee]]                           # the other end of a <Dial>: a number or SIP user
number = "+14155550199"              # E.164, or a sip: URI (sip:alice@sip.example.com)
answers_after = 2.0                  # one of: answers_after (seconds of ringing), busy = true,
                                     # no_answer = true (rings until the Dial's timeout),
                                     # fails = true (the call cannot be placed)
hangup_after = 30.0                  # optional: hangs up this long after answering
keys = [{ at = 1.0, digits = "5" }]  # optional: keys it presses, seconds after answering
say = [{ at = 1.0, text = "yes" }]   # optional: words it says, seconds after answering
```

A dialled number or SIP user with no `[[callee]]` rings until the Dial's timeout.

`stream_keys`: Twilio's docs do not say whether a forked stream's audio keeps the caller's key
tones ("DTMF isn't supported with unidirectional streams"); "tones" (the default) keeps them in
the inbound audio, "removed" leaves them out (the stream hears no keys), "messages" leaves them
out and sends a `dtmf` message per key instead, as bidirectional streams do.

`declined_dial`: Twilio's docs do not say which DialCallStatus the caller's `<Dial>` gets when
the only callee's whisper `url` hangs up (declines): "no-answer" (the default) or "completed"
(with that leg's DialCallSid and a duration of 0).

`load_scenario(path)` and `scenario_from_dict(data)` validate everything and raise
`ScenarioInvalid` carrying every problem as (file, key, reason); with `mappings=` they also check
that each called number is routed by the gateway's mappings.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..mappings import E164
from ..problems import FileProblem, ProblemsFound

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DIGITS = re.compile(r"^[0-9*#A-Da-d]+$")

TOP_KEYS = {"duration", "twilio", "call", "callee"}
TWILIO_KEYS = {"duplicate_events", "reorder_events", "seed", "stream_keys", "declined_dial"}
DECLINED_DIAL = ("no-answer", "completed")
STREAM_KEYS = ("tones", "removed", "messages")
CALL_KEYS = {"name", "from", "to", "at", "hangup_at", "keys", "speech", "say"}
CALLEE_KEYS = {"number", "answers_after", "busy", "no_answer", "fails", "hangup_after", "keys",
               "say"}
CALLEE_OUTCOMES = ("answers_after", "busy", "no_answer", "fails")
SIP_URI = re.compile(r"^sips?:[A-Za-z0-9._~+-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
KEY_KEYS = {"at", "digits"}
SPEECH_KEYS = {"from", "to", "text"}
SAY_KEYS = {"at", "text"}
MAX_SAY = 10_000  # characters in one utterance


@dataclass(frozen=True)
class KeyPress:
    at: float
    digits: str


@dataclass(frozen=True)
class Speech:
    start: float
    end: float
    text: str = ""  # the words, if the scenario gives them (a recording's file holds them)


@dataclass(frozen=True)
class Utterance:
    at: float
    text: str


@dataclass(frozen=True)
class CallSpec:
    name: str
    from_: str
    to: str
    at: float = 0.0
    hangup_at: float | None = None
    keys: tuple[KeyPress, ...] = ()
    speech: tuple[Speech, ...] = ()
    says: tuple[Utterance, ...] = ()


@dataclass(frozen=True)
class CalleeSpec:
    """The other end of a `<Dial>`: how it answers (`outcome`: answers, busy, no-answer,
    fails), and what it does once it answered (times are seconds after answering)."""

    number: str
    outcome: str
    answers_after: float = 0.0
    hangup_after: float | None = None
    keys: tuple[KeyPress, ...] = ()
    says: tuple[Utterance, ...] = ()


@dataclass(frozen=True)
class TwilioFaults:
    duplicate_events: float = 0.0
    reorder_events: bool = False
    seed: int | None = None
    stream_keys: str = "tones"
    declined_dial: str = "no-answer"


@dataclass(frozen=True)
class Scenario:
    duration: float
    calls: tuple[CallSpec, ...]
    twilio: TwilioFaults = field(default_factory=TwilioFaults)
    source: str = "<scenario>"
    callees: tuple[CalleeSpec, ...] = ()


ScenarioError = FileProblem  # one problem in one scenario file, at one key


class ScenarioInvalid(ProblemsFound):
    """Every problem found in one scenario, not just the first."""


class _Checker:
    def __init__(self, source: str):
        self.source = source
        self.errors: list[ScenarioError] = []

    def error(self, key: str, reason: str) -> None:
        self.errors.append(ScenarioError(self.source, key, reason))

    def table(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(key, f"must be a table, not {type(value).__name__}")
            return None
        for extra in sorted(set(value) - allowed):
            self.error(f"{key}.{extra}" if key else extra,
                       f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def number(self, table: dict[str, Any], key: str, where: str, *, required: bool = True,
               minimum: float = 0.0) -> float | None:
        if key not in table:
            if required:
                self.error(f"{where}{key}", "is required")
            return None
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(f"{where}{key}", f"must be a number of seconds, not {value!r}")
            return None
        if value < minimum or value != value or value in (float("inf"), float("-inf")):
            self.error(f"{where}{key}", f"must be a finite number >= {minimum}")
            return None
        return float(value)

    def string(self, table: dict[str, Any], key: str, where: str, pattern: re.Pattern[str],
               explain: str) -> str | None:
        if key not in table:
            self.error(f"{where}{key}", "is required")
            return None
        value = table[key]
        if not isinstance(value, str) or not pattern.match(value):
            self.error(f"{where}{key}", f"{value!r} is not {explain}")
            return None
        return value

    def array(self, table: dict[str, Any], key: str, where: str) -> list[Any]:
        value = table.get(key, [])
        if not isinstance(value, list):
            self.error(f"{where}{key}", "must be an array of tables")
            return []
        return value


def _check_call(check: _Checker, raw: Any, index: int, duration: float | None
                ) -> CallSpec | None:
    where = f"call[{index}]."
    table = check.table(raw, f"call[{index}]", CALL_KEYS)
    if table is None:
        return None
    name = check.string(table, "name", where, NAME, "a name of 1-64 letters, digits, _ . -")
    from_ = check.string(table, "from", where, E164, "an E.164 number such as +14155550101")
    to = check.string(table, "to", where, E164, "an E.164 number such as +14155550100")
    at = check.number(table, "at", where, required=False)
    at = 0.0 if at is None else at
    hangup_at = check.number(table, "hangup_at", where, required=False)
    if duration is not None and at >= duration:
        check.error(f"{where}at", f"{at} is not before the scenario's duration {duration}")
    if hangup_at is not None and hangup_at <= at:
        check.error(f"{where}hangup_at", f"{hangup_at} is not after the call's at {at}")

    keys = _check_keys(check, table, where, at, hangup_at)

    speech: list[Speech] = []
    for s, raw_speech in enumerate(check.array(table, "speech", where)):
        sw = f"{where}speech[{s}]"
        entry = check.table(raw_speech, sw, SPEECH_KEYS)
        if entry is None:
            continue
        start = check.number(entry, "from", sw + ".")
        end = check.number(entry, "to", sw + ".")
        if start is None or end is None:
            continue
        if end <= start:
            check.error(f"{sw}.to", f"{end} is not after from {start}")
        elif start < at:
            check.error(f"{sw}.from", f"{start} is before the call comes in at {at}")
        elif speech and start < speech[-1].end:
            check.error(f"{sw}.from", f"times out of order: {start} is before the previous "
                        f"interval ends at {speech[-1].end}")
        elif not isinstance(entry.get("text", ""), str) or len(entry.get("text", "")) > 1000:
            check.error(f"{sw}.text", "must be a string of at most 1000 characters")
        else:
            speech.append(Speech(start, end, entry.get("text", "")))

    says = _check_says(check, table, where, at, hangup_at)

    if name is None or from_ is None or to is None:
        return None
    return CallSpec(name, from_, to, at, hangup_at, tuple(keys), tuple(speech), tuple(says))


def _check_keys(check: _Checker, table: dict[str, Any], where: str, at: float,
                hangup_at: float | None) -> list[KeyPress]:
    keys: list[KeyPress] = []
    for k, raw_key in enumerate(check.array(table, "keys", where)):
        kw = f"{where}keys[{k}]"
        entry = check.table(raw_key, kw, KEY_KEYS)
        if entry is None:
            continue
        key_at = check.number(entry, "at", kw + ".")
        digits = check.string(entry, "digits", kw + ".", DIGITS, "digits from 0-9 * # A-D")
        if key_at is None or digits is None:
            continue
        if key_at < at:
            check.error(f"{kw}.at", f"{key_at} is before the call comes in at {at}")
        elif keys and key_at <= keys[-1].at:
            check.error(f"{kw}.at", f"times out of order: {key_at} is not after {keys[-1].at}")
        elif hangup_at is not None and key_at >= hangup_at:
            check.error(f"{kw}.at", f"{key_at} is not before hangup_at {hangup_at}")
        keys.append(KeyPress(key_at, digits))
    return keys


def _check_says(check: _Checker, table: dict[str, Any], where: str, at: float,
                hangup_at: float | None) -> list[Utterance]:
    says: list[Utterance] = []
    for u, raw_say in enumerate(check.array(table, "say", where)):
        uw = f"{where}say[{u}]"
        entry = check.table(raw_say, uw, SAY_KEYS)
        if entry is None:
            continue
        say_at = check.number(entry, "at", uw + ".")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_SAY:
            check.error(f"{uw}.text", f"must be words to say (1 to {MAX_SAY} characters)")
            continue
        if say_at is None:
            continue
        if say_at < at:
            check.error(f"{uw}.at", f"{say_at} is before the call comes in at {at}")
        elif says and say_at <= says[-1].at:
            check.error(f"{uw}.at", f"times out of order: {say_at} is not after {says[-1].at}")
        elif hangup_at is not None and say_at >= hangup_at:
            check.error(f"{uw}.at", f"{say_at} is not before hangup_at {hangup_at}")
        else:
            says.append(Utterance(say_at, text))
    return says


def _check_callee(check: _Checker, raw: Any, index: int) -> CalleeSpec | None:
    where = f"callee[{index}]."
    table = check.table(raw, f"callee[{index}]", CALLEE_KEYS)
    if table is None:
        return None
    number = table.get("number")
    if not isinstance(number, str) or not (E164.match(number) or SIP_URI.match(number)):
        check.error(f"{where}number", f"{number!r} is not an E.164 number (+14155550199) or a "
                    "sip: URI (sip:alice@sip.example.com)")
        number = None
    outcomes = [key for key in CALLEE_OUTCOMES if key in table]
    if len(outcomes) != 1:
        check.error(where.rstrip("."), "needs exactly one of answers_after, busy = true, "
                    "no_answer = true, fails = true" + (f" (found {', '.join(outcomes)})"
                                                        if outcomes else ""))
        return None
    outcome, answers_after = outcomes[0], 0.0
    if outcome == "answers_after":
        seconds = check.number(table, "answers_after", where)
        if seconds is None:
            return None
        answers_after = seconds
    elif table[outcome] is not True:
        check.error(f"{where}{outcome}", f"{table[outcome]!r} must be true (or leave it out)")
        return None
    hangup_after = check.number(table, "hangup_after", where, required=False, minimum=0.001)
    if outcome != "answers_after" and ("hangup_after" in table or "keys" in table
                                       or "say" in table):
        check.error(where.rstrip("."), "hangup_after, keys and say need answers_after: this "
                    "callee never answers")
    keys = _check_keys(check, table, where, 0.0, hangup_after)
    says = _check_says(check, table, where, 0.0, hangup_after)
    if number is None:
        return None
    return CalleeSpec(number, outcome.replace("answers_after", "answers").replace("_", "-"),
                      answers_after, hangup_after, tuple(keys), tuple(says))


def scenario_from_dict(data: Any, *, source: str = "<scenario>",
                       mappings: str | os.PathLike[str] | None = None) -> Scenario:
    """Validate a parsed scenario; raise ScenarioInvalid with every problem found."""
    check = _Checker(source)
    top = check.table(data, "", TOP_KEYS)
    if top is None:
        raise ScenarioInvalid(check.errors)
    duration = check.number(top, "duration", "", minimum=0.001)

    faults = TwilioFaults()
    if "twilio" in top:
        table = check.table(top["twilio"], "twilio", TWILIO_KEYS)
        if table is not None:
            dup = table.get("duplicate_events", 0.0)
            if isinstance(dup, bool) or not isinstance(dup, int | float) or not 0 <= dup <= 1:
                check.error("twilio.duplicate_events", f"{dup!r} is not a probability 0..1")
                dup = 0.0
            reorder = table.get("reorder_events", False)
            if not isinstance(reorder, bool):
                check.error("twilio.reorder_events", f"{reorder!r} is not true or false")
                reorder = False
            seed = table.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                check.error("twilio.seed", f"{seed!r} is not an integer")
                seed = None
            stream_keys = table.get("stream_keys", "tones")
            if stream_keys not in STREAM_KEYS:
                check.error("twilio.stream_keys", f"{stream_keys!r} is not one of "
                            + ", ".join(STREAM_KEYS))
                stream_keys = "tones"
            declined = table.get("declined_dial", "no-answer")
            if declined not in DECLINED_DIAL:
                check.error("twilio.declined_dial", f"{declined!r} is not one of "
                            + ", ".join(DECLINED_DIAL))
                declined = "no-answer"
            faults = TwilioFaults(float(dup), reorder, seed, stream_keys, declined)

    calls: list[CallSpec] = []
    raw_calls = top.get("call")
    if raw_calls is None:
        check.error("call", "a scenario needs at least one [[call]]")
    elif not isinstance(raw_calls, list):
        check.error("call", "must be an array of tables ([[call]])")
    else:
        for index, raw in enumerate(raw_calls):
            spec = _check_call(check, raw, index, duration)
            if spec is not None:
                calls.append(spec)
        seen: dict[str, int] = {}
        for index, spec in enumerate(calls):
            if spec.name in seen:
                check.error(f"call[{index}].name", f"duplicate name {spec.name!r}")
            seen.setdefault(spec.name, index)

    callees: list[CalleeSpec] = []
    raw_callees = top.get("callee", [])
    if not isinstance(raw_callees, list):
        check.error("callee", "must be an array of tables ([[callee]])")
        raw_callees = []
    for index, raw in enumerate(raw_callees):
        callee = _check_callee(check, raw, index)
        if callee is None:
            continue
        if any(c.number == callee.number for c in callees):
            check.error(f"callee[{index}].number", f"duplicate number {callee.number!r}")
            continue
        callees.append(callee)

    if mappings is not None:
        _check_routes(check, calls, mappings)
    if check.errors:
        raise ScenarioInvalid(check.errors)
    assert duration is not None
    return Scenario(duration, tuple(calls), faults, source, tuple(callees))


class _EveryVariableSet(dict[str, str]):
    def get(self, key: str, default: Any = None) -> Any:
        return os.environ.get(key) or "set"


def _check_routes(check: _Checker, calls: list[CallSpec],
                  mappings: str | os.PathLike[str]) -> None:
    from ..mappings import MappingsInvalid, load_mappings

    try:
        # Only routing matters here: the simulator never signs as the app, so the Plivo tokens
        # the mappings name need not be in this process's environment.
        routes = load_mappings(mappings, environ=_EveryVariableSet())
    except MappingsInvalid as exc:
        for error in exc.errors:
            check.error("mappings", str(error))
        return
    for index, spec in enumerate(calls):
        if routes.app_for_number(spec.to) is None:
            check.error(f"call[{index}].to",
                        f"{spec.to} is not routed by the gateway's mappings ({mappings})")


def load_scenario(path: str | os.PathLike[str], *,
                  mappings: str | os.PathLike[str] | None = None) -> Scenario:
    """Read and validate a scenario TOML file."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioInvalid([ScenarioError(source, "", f"cannot read: {exc.strerror}")]
                              ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioInvalid([ScenarioError(source, "", f"not valid TOML: {exc}")]) from None
    return scenario_from_dict(data, source=source, mappings=mappings)
