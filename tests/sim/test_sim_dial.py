"""The other end of a <Dial>: callees from the scenario, rung at once, their whisper, their
status callbacks, and what the caller's Dial action says (docs/simulator.md, "Dial: the other
end")."""

from __future__ import annotations

from tests.sim.runs import Run, concurrently, scenario
from tests.sim.support import FakeGateway, call

ANNA, BEN, CARL = "+14155550191", "+14155550192", "+14155550193"
EVERY_EVENT = 'statusCallbackEvent="initiated ringing answered completed"'


def dial(gateway: FakeGateway, nouns: str, **attributes: str) -> str:
    attrs = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    return f'<Dial action="{gateway.url("/dialed")}" {attrs}>{nouns}</Dial>'


@concurrently
def test_every_number_rings_at_once_and_the_first_to_answer_is_connected(
        gateway: FakeGateway) -> Run:
    events = f'statusCallback="{gateway.url("/leg")}" {EVERY_EVENT}'
    gateway.twiml("/twilio/voice", dial(gateway, f"<Number {events}>{ANNA}</Number>"
                                                 f"<Number {events}>{BEN}</Number>"))
    gateway.twiml("/dialed", "<Say>Bye</Say>")
    transcript = yield scenario([call("alice")], duration=6.0, callees=[
        {"number": ANNA, "no_answer": True},
        {"number": BEN, "answers_after": 0.5, "hangup_after": 1.0}])
    ends = {e["call"]: e["status"] for e in transcript.events(type="call-end")}
    assert ends[f"alice>{ANNA}"] == "canceled" and ends[f"alice>{BEN}"] == "completed"
    (action,) = gateway.requests_to("/dialed")
    ben = [r.params for r in gateway.requests_to("/leg") if r.params["To"] == BEN]
    assert [p["CallStatus"] for p in ben] == ["initiated", "ringing", "in-progress", "completed"]
    assert [p["SequenceNumber"] for p in ben] == ["0", "1", "2", "3"]
    assert ben[0]["Direction"] == "outbound-dial" and ben[0]["From"] == "+14155550101"
    voice = gateway.requests_to("/twilio/voice")[0].params
    assert {p["ParentCallSid"] for p in ben} == {voice["CallSid"]}
    assert action.params["DialCallStatus"] == "completed"
    assert action.params["DialCallSid"] == ben[0]["CallSid"]
    assert action.params["DialCallDuration"] == ben[-1]["CallDuration"] == "1"
    assert ("say", "Bye") in transcript.heard("alice")


@concurrently
def test_busy_failed_and_unknown_numbers_end_the_dial_without_a_connection(
        gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", dial(gateway, f"<Number>{ANNA}</Number>"))
    gateway.twiml("/dialed", dial(gateway, f"<Number>{CARL}</Number>").replace("/dialed",
                                                                               "/second"))
    gateway.twiml("/second", f'{dial(gateway, "<Number>+14155550199</Number>", timeout="1")}'
                  .replace("/dialed", "/third"))
    gateway.twiml("/third", "<Hangup/>")
    transcript = yield scenario([call("alice")], duration=6.0, callees=[
        {"number": ANNA, "busy": True}, {"number": CARL, "fails": True}])
    assert gateway.requests_to("/dialed")[0].params["DialCallStatus"] == "busy"
    assert gateway.requests_to("/second")[0].params["DialCallStatus"] == "failed"
    # No [[callee]]: it rings until the timeout, then no-answer.
    assert gateway.requests_to("/third")[0].params["DialCallStatus"] == "no-answer"
    assert transcript.call_end("alice>+14155550199")["status"] == "no-answer"


@concurrently
def test_the_whisper_runs_on_the_callee_and_its_gather_hears_the_callees_keys(
        gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", dial(gateway, f'<Number url="{gateway.url("/whisper")}">'
                                                 f"{ANNA}</Number>"))
    gateway.twiml("/whisper", f'<Gather numDigits="1" action="{gateway.url("/pressed")}">'
                  "<Say>Press 1</Say></Gather><Hangup/>")
    gateway.twiml("/pressed", "")  # an empty document: the parties are connected
    gateway.twiml("/dialed", "<Hangup/>")
    transcript = yield scenario([call("alice")], duration=6.0, callees=[
        {"number": ANNA, "answers_after": 0.3, "hangup_after": 2.0,
         "keys": [{"at": 0.5, "digits": "1"}]}])
    whisper = gateway.requests_to("/whisper")[0].params
    assert (whisper["Direction"], whisper["To"]) == ("outbound-dial", ANNA)
    assert gateway.requests_to("/pressed")[0].params["Digits"] == "1"
    assert ("say", "Press 1") in transcript.heard(f"alice>{ANNA}")
    assert gateway.requests_to("/dialed")[0].params["DialCallStatus"] == "completed"


@concurrently
def test_a_whisper_that_hangs_up_declines_the_call_both_ways(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", dial(gateway, f'<Number url="{gateway.url("/no")}">'
                                                 f"{ANNA}</Number>"))
    gateway.twiml("/no", "<Hangup/>")
    gateway.twiml("/dialed", "<Hangup/>")
    yield scenario([call("alice")], duration=4.0, twilio={"declined_dial": "completed"},
                   callees=[{"number": ANNA, "answers_after": 0.2}])
    (action,) = gateway.requests_to("/dialed")
    assert (action.params["DialCallStatus"], action.params["DialCallDuration"]) == (
        "completed", "0")


@concurrently
def test_more_than_ten_nouns_is_error_13215(gateway: FakeGateway) -> Run:
    nouns = "".join(f"<Number>+1415555{n:04d}</Number>" for n in range(11))
    gateway.twiml("/twilio/voice", f"<Dial>{nouns}</Dial>")
    transcript = yield scenario([call("alice")], duration=3.0)
    assert [e["code"] for e in transcript.errors] == [13215]
