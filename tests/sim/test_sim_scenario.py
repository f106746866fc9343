"""Scenario files: the issue's format, and every way a file can be wrong (pure: no servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.sim import (
    KeyPress,
    ScenarioInvalid,
    Speech,
    TwilioFaults,
    load_scenario,
    scenario_from_dict,
)

ISSUE_EXAMPLE = """
duration = 20.0            # seconds; the run ends by then
[[call]]
name = "alice"             # the label used in the output
from = "+14155550101"
to = "+14155550100"        # a number routed by the gateway's mappings
at = 0.0                   # when the call comes in
hangup_at = 12.0           # optional: the caller hangs up
keys = [{ at = 3.0, digits = "99" }]     # key presses
speech = [{ from = 4.0, to = 6.0 }]      # when this caller talks
"""

MAPPING = """
[[app]]
name = "support"
account = "MA0000000000000001"
numbers = ["+14155550100"]
answer_url = "http://127.0.0.1:9/answer"
auth_token_env = "SIM_TEST_UNSET_TOKEN"
allowed_hosts = ["127.0.0.1"]
"""


def good(**call: Any) -> dict[str, Any]:
    base = {"name": "alice", "from": "+14155550101", "to": "+14155550100"}
    return {"duration": 5.0, "call": [{**base, **call}]}


def problems(data: Any, **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ScenarioInvalid) as caught:
        scenario_from_dict(data, **kw)
    return [(e.key, e.reason) for e in caught.value.errors]


def test_the_issue_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "alice.toml"
    path.write_text(ISSUE_EXAMPLE)
    scenario = load_scenario(path)
    assert scenario.duration == 20.0 and scenario.source == str(path)
    (alice,) = scenario.calls
    assert (alice.name, alice.from_, alice.to, alice.at, alice.hangup_at) == (
        "alice", "+14155550101", "+14155550100", 0.0, 12.0)
    assert alice.keys == (KeyPress(3.0, "99"),)
    assert alice.speech == (Speech(4.0, 6.0),)
    assert scenario.twilio == TwilioFaults()


def test_the_twilio_fault_table_is_read() -> None:
    data = {**good(), "twilio": {"duplicate_events": 0.25, "reorder_events": True, "seed": 7,
                                 "stream_keys": "messages"}}
    assert scenario_from_dict(data).twilio == TwilioFaults(0.25, True, 7, "messages")


def test_scenario_rejects_unknown_key() -> None:
    assert problems({**good(), "durration": 3}) == [
        ("durration", "unknown key (allowed: call, callee, duration, twilio)")]
    keys = [k for k, _ in problems(good(hangup=3.0))]
    assert keys == ["call[0].hangup"]
    keys = [k for k, _ in problems(good(keys=[{"at": 1.0, "digit": "1"}]))]
    assert "call[0].keys[0].digit" in keys
    keys = [k for k, _ in problems({**good(), "twilio": {"drop_events": 0.5}})]
    assert keys == ["twilio.drop_events"]


def test_every_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('duration = "long"\n[[call]]\nname = "a"\n')
    with pytest.raises(ScenarioInvalid) as caught:
        load_scenario(path)
    errors = caught.value.errors
    assert {e.file for e in errors} == {str(path)}
    assert {e.key for e in errors} >= {"duration", "call[0].from", "call[0].to"}
    assert str(path) in str(caught.value)


def test_not_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("duration = = 3")
    with pytest.raises(ScenarioInvalid) as caught:
        load_scenario(path)
    assert "not valid TOML" in caught.value.errors[0].reason


@pytest.mark.parametrize(("call", "key"), [
    ({"at": "soon"}, "call[0].at"),
    ({"at": True}, "call[0].at"),
    ({"hangup_at": -1}, "call[0].hangup_at"),
    ({"from": "4155550101"}, "call[0].from"),
    ({"to": "+1 415 555 0100"}, "call[0].to"),
    ({"name": "has space"}, "call[0].name"),
    ({"keys": "12"}, "call[0].keys"),
    ({"keys": [{"at": 1.0, "digits": "12x"}]}, "call[0].keys[0].digits"),
    ({"speech": [{"from": 2.0}]}, "call[0].speech[0].to"),
])
def test_wrong_types_are_rejected_with_the_key(call: dict[str, Any], key: str) -> None:
    assert key in [k for k, _ in problems(good(**call))]


def test_hangup_before_the_call_comes_in_is_rejected() -> None:
    assert problems(good(at=2.0, hangup_at=1.0)) == [
        ("call[0].hangup_at", "1.0 is not after the call's at 2.0")]


def test_times_out_of_order_are_rejected() -> None:
    keys = [{"at": 2.0, "digits": "1"}, {"at": 1.0, "digits": "2"}]
    assert problems(good(keys=keys)) == [
        ("call[0].keys[1].at", "times out of order: 1.0 is not after 2.0")]
    speech = [{"from": 1.0, "to": 3.0}, {"from": 2.0, "to": 4.0}]
    (key, reason), = problems(good(speech=speech))
    assert key == "call[0].speech[1].from" and "out of order" in reason
    (key, _), = problems(good(speech=[{"from": 3.0, "to": 2.0}]))
    assert key == "call[0].speech[0].to"


def test_keys_after_hangup_or_before_arrival_are_rejected() -> None:
    (key, _), = problems(good(at=1.0, keys=[{"at": 0.5, "digits": "1"}]))
    assert key == "call[0].keys[0].at"
    (key, _), = problems(good(hangup_at=2.0, keys=[{"at": 2.5, "digits": "1"}]))
    assert key == "call[0].keys[0].at"


def test_words_a_caller_says_are_checked() -> None:
    scenario = scenario_from_dict(good(say=[{"at": 1.0, "text": "sales"},
                                            {"at": 3.0, "text": "support please"}]))
    assert [(u.at, u.text) for u in scenario.calls[0].says] == [(1.0, "sales"),
                                                                (3.0, "support please")]
    assert problems(good(say=[{"at": 1.0, "text": ""}])) == [
        ("call[0].say[0].text", "must be words to say (1 to 10000 characters)")]
    (key, _), = problems(good(say=[{"at": 1.0, "text": "x" * 10_001}]))
    assert key == "call[0].say[0].text"
    (key, reason), = problems(good(say=[{"at": 2.0, "text": "a"}, {"at": 1.0, "text": "b"}]))
    assert key == "call[0].say[1].at" and "out of order" in reason
    (key, _), = problems(good(hangup_at=2.0, say=[{"at": 2.5, "text": "late"}]))
    assert key == "call[0].say[0].at"
    keys = [key for key, _ in problems(good(say=[{"at": 1.0, "words": "x"}]))]
    assert keys == ["call[0].say[0].words", "call[0].say[0].text"]  # unknown key, no text


def test_a_call_after_the_duration_is_rejected() -> None:
    (key, _), = problems(good(at=9.0))
    assert key == "call[0].at"


def test_duplicate_names_are_rejected() -> None:
    data = good()
    data["call"].append(dict(data["call"][0]))
    assert problems(data) == [("call[1].name", "duplicate name 'alice'")]


def test_a_scenario_needs_calls_and_a_duration() -> None:
    assert {k for k, _ in problems({})} == {"duration", "call"}


def test_fault_values_are_checked() -> None:
    data = {**good(), "twilio": {"duplicate_events": 2, "reorder_events": "yes", "seed": 1.5,
                                 "stream_keys": "muted"}}
    assert {k for k, _ in problems(data)} == {"twilio.duplicate_events", "twilio.reorder_events",
                                              "twilio.seed", "twilio.stream_keys"}


def test_a_call_to_an_unmapped_number_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "apps.toml").write_text(MAPPING)
    data = good()
    data["call"].append({"name": "bob", "from": "+14155550102", "to": "+14155550199"})
    assert problems(data, mappings=tmp_path) == [
        ("call[1].to", f"+14155550199 is not routed by the gateway's mappings ({tmp_path})")]


def test_mapped_numbers_pass_the_routing_check(tmp_path: Path) -> None:
    (tmp_path / "apps.toml").write_text(MAPPING)
    assert scenario_from_dict(good(), mappings=tmp_path).calls[0].to == "+14155550100"


def test_broken_mappings_are_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "apps.toml").write_text("[[app]]\nname = 3\n")
    keys = {k for k, _ in problems(good(), mappings=tmp_path)}
    assert keys == {"mappings"}


SHIPPED = sorted((Path(__file__).parents[2] / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_scenarios_load_and_route_with_the_example_mappings(path: Path) -> None:
    mappings = Path(__file__).parents[2] / "mappings" / "example.toml"
    scenario = load_scenario(path, mappings=mappings)
    assert scenario.calls and scenario.duration > max(c.at for c in scenario.calls)


def test_there_are_shipped_scenarios() -> None:
    assert len(SHIPPED) >= 3


CALLEES = """
duration = 20.0
[[call]]
name = "alice"
from = "+14155550101"
to = "+14155550100"
[[callee]]
number = "+14155550199"
answers_after = 2.0
hangup_after = 30.0
keys = [{ at = 1.0, digits = "5" }]
say = [{ at = 1.5, text = "yes" }]
[[callee]]
number = "sip:bob@sip.example.com"
busy = true
[[callee]]
number = "+442071234567"
no_answer = true
[[callee]]
number = "+14155550198"
fails = true
"""


def test_callees_are_the_other_end_of_a_dial(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(CALLEES)
    answering, busy, silent, failing = load_scenario(path).callees
    assert (answering.number, answering.outcome, answering.answers_after,
            answering.hangup_after) == ("+14155550199", "answers", 2.0, 30.0)
    assert answering.keys == (KeyPress(1.0, "5"),) and answering.says[0].text == "yes"
    assert [(c.number, c.outcome) for c in (busy, silent, failing)] == [
        ("sip:bob@sip.example.com", "busy"), ("+442071234567", "no-answer"),
        ("+14155550198", "fails")]


@pytest.mark.parametrize(("callee", "key", "reason"), [
    ({"number": "4155550199", "busy": True}, "callee[0].number", "is not an E.164 number"),
    ({"number": "sip:bob@a.example.com;x=y", "busy": True}, "callee[0].number", "sip: URI"),
    ({"number": "+14155550199"}, "callee[0]", "needs exactly one of answers_after"),
    ({"number": "+14155550199", "busy": True, "fails": True}, "callee[0]",
     "(found busy, fails)"),
    ({"number": "+14155550199", "busy": False}, "callee[0].busy", "must be true"),
    ({"number": "+14155550199", "busy": True, "hangup_after": 2.0}, "callee[0]",
     "need answers_after"),
    ({"number": "+14155550199", "answers_after": 1.0, "keys": [{"at": 1.0, "digits": "x"}]},
     "callee[0].keys[0].digits", "is not digits"),
])
def test_a_bad_callee_is_refused_with_its_key(callee: dict, key: str, reason: str) -> None:
    found = problems({**good(), "callee": [callee]})
    assert any(k == key and reason in r for k, r in found), found


def test_a_number_is_played_by_one_callee_only() -> None:
    twice = {"number": "+14155550199", "busy": True}
    assert ("callee[1].number", "duplicate number '+14155550199'") in problems(
        {**good(), "callee": [twice, twice]})


def test_declined_dial_plays_either_status_twilio_may_report() -> None:
    assert scenario_from_dict({**good(), "twilio": {"declined_dial": "completed"}}
                              ).twilio.declined_dial == "completed"
    assert scenario_from_dict(good()).twilio.declined_dial == "no-answer"
    assert problems({**good(), "twilio": {"declined_dial": "busy"}}) == [
        ("twilio.declined_dial", "'busy' is not one of no-answer, completed")]
