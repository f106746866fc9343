"""Twilio's documented delivery faults on demand, and many calls at once."""

from __future__ import annotations

from collections import Counter

from tests.sim.runs import Run, concurrently, scenario
from tests.sim.support import FakeGateway, Received, call, simulate
from tests.sim.test_sim_conference import events, room

BURST = [call(f"caller{i}", from_=f"+1415555020{i}", hangup_at=1.5) for i in range(5)]


@concurrently
def test_duplicate_events_sends_conference_callbacks_twice(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room())
    transcript = yield scenario(BURST, twilio={"duplicate_events": 1.0, "seed": 1})
    counts = Counter(p["SequenceNumber"] for p in events(gateway))
    assert counts and set(counts.values()) == {2}
    tokens = Counter(r.headers["I-Twilio-Idempotency-Token"]
                     for r in gateway.requests_to("/events"))
    assert set(tokens.values()) == {2}  # a duplicate looks like a retry of the same callback
    assert transcript.events(type="sent", kind="conference-event", duplicate=True)
    assert len(gateway.requests_to("/twilio/status")) == len(BURST)  # call status: once


@concurrently
def test_without_faults_events_arrive_once_and_in_order(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room())
    yield scenario(BURST)
    numbers = [int(p["SequenceNumber"]) for p in events(gateway)]
    assert numbers == list(range(1, len(numbers) + 1))


@concurrently
def test_reorder_events_delivers_out_of_sequence(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room())
    yield scenario(BURST, twilio={"reorder_events": True, "seed": 7})
    numbers = [int(p["SequenceNumber"]) for p in events(gateway)]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # each exactly once
    assert numbers != sorted(numbers)


def test_sixty_concurrent_calls_in_thirty_rooms(gateway: FakeGateway) -> None:
    def answer(received: Received) -> str:
        pair = int(received.params["From"][-2:]) // 2
        return f"<Response>{room(f'room-{pair}')}</Response>"
    gateway.routes["/twilio/voice"] = answer
    calls = [call(f"c{i:02d}", from_=f"+141555503{i:02d}", at=round(i * 0.01, 2),
                  hangup_at=4.0) for i in range(60)]
    transcript = simulate(gateway, calls, duration=10.0)
    assert transcript.events(type="run-end")[0]["reason"] == "every call ended"
    assert transcript.ok, transcript.errors[:3]
    assert len(transcript.events(type="call-end")) == 60
    assert len(transcript.events(type="conference", event="conference-start")) == 30
    assert len(gateway.requests_to("/twilio/status")) == 60
    assert all(r.signature_ok for r in gateway.received)
