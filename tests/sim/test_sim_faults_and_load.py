"""Twilio's documented delivery faults on demand, and many calls at once."""

from __future__ import annotations

import time
from collections import Counter

from tests.sim.support import FakeGateway, Received, call, simulate
from tests.sim.test_sim_conference import events, room

BURST = [call(f"caller{i}", from_=f"+1415555020{i}", hangup_at=0.8) for i in range(5)]


def test_duplicate_events_sends_conference_callbacks_twice(gateway: FakeGateway) -> None:
    gateway.twiml("/twilio/voice", room())
    transcript = simulate(gateway, BURST, twilio={"duplicate_events": 1.0, "seed": 1})
    counts = Counter(p["SequenceNumber"] for p in events(gateway))
    assert counts and set(counts.values()) == {2}
    assert transcript.events(type="sent", kind="conference-event", duplicate=True)
    assert len(gateway.requests_to("/twilio/status")) == len(BURST)  # call status: once


def test_without_faults_events_arrive_once_and_in_order(gateway: FakeGateway) -> None:
    gateway.twiml("/twilio/voice", room())
    simulate(gateway, BURST)
    numbers = [int(p["SequenceNumber"]) for p in events(gateway)]
    assert numbers == list(range(1, len(numbers) + 1))


def test_reorder_events_delivers_out_of_sequence(gateway: FakeGateway) -> None:
    gateway.twiml("/twilio/voice", room())
    simulate(gateway, BURST, twilio={"reorder_events": True, "seed": 7})
    numbers = [int(p["SequenceNumber"]) for p in events(gateway)]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # each exactly once
    assert numbers != sorted(numbers)


def test_sixty_concurrent_calls_in_thirty_rooms(gateway: FakeGateway) -> None:
    def answer(received: Received) -> str:
        pair = int(received.params["From"][-2:]) // 2
        return f"<Response><Say>Hi</Say>{room(f'room-{pair}')}</Response>"
    gateway.routes["/twilio/voice"] = answer
    calls = [call(f"c{i:02d}", from_=f"+141555503{i:02d}", at=round(i * 0.01, 2),
                  hangup_at=2.0) for i in range(60)]
    started = time.monotonic()
    transcript = simulate(gateway, calls, duration=8.0)
    assert time.monotonic() - started < 7.0
    assert transcript.ok, transcript.errors[:3]
    assert len(transcript.events(type="call-end")) == 60
    assert len(transcript.events(type="conference", event="conference-start")) == 30
    assert len(gateway.requests_to("/twilio/status")) == 60
    assert all(r.signature_ok for r in gateway.received)
