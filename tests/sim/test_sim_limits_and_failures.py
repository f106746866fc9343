"""Conference limits as Twilio's docs state them, and answers a server marks as a failed call."""

from __future__ import annotations

import pytest
from flask import Response

from gateway.sim.errors import TwimlError
from gateway.sim.transcript import CALL_FAILED_HEADER
from gateway.sim.twiml import parse_twiml
from tests.sim.runs import Run, concurrently, scenario
from tests.sim.support import FakeGateway, call

DOC = "http://127.0.0.1:9000/twilio/voice"
BOB = "+14155550102"


def conference(**attrs: str):
    rendered = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return parse_twiml(f"<Response><Dial><Conference {rendered}>r</Conference></Dial>"
                       "</Response>", DOC).verbs[0].target


def test_max_participants_is_a_positive_integer_up_to_250() -> None:
    # "positive integer <= 250": twilio.com/docs/voice/twiml/conference#maxparticipants
    assert conference(maxParticipants="1").max_participants == 1
    assert conference(maxParticipants="250").max_participants == 250
    for bad in ("0", "251"):
        with pytest.raises(TwimlError) as refused:
            conference(maxParticipants=bad)
        assert refused.value.code == 16002


def test_region_is_one_of_the_regions_the_conference_page_lists() -> None:
    # us1 ie1 de1 sg1 br1 au1 jp1: twilio.com/docs/voice/twiml/conference#region
    assert conference(region="ie1").region == "ie1"
    with pytest.raises(TwimlError) as refused:
        conference(region="us2")
    assert refused.value.code == 16002


@concurrently
def test_a_room_of_one_takes_its_member_and_refuses_the_next(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Dial><Conference maxParticipants="1">solo</Conference>'
                                   "</Dial><Say>Room full</Say>")
    transcript = yield scenario([call("alice", hangup_at=1.5),
                                 call("bob", from_=BOB, at=0.5, hangup_at=1.5)])
    # alone in the room: it never starts, she hears the wait music until she hangs up
    assert transcript.heard("alice") == [("wait", "default hold music")]
    (full,) = transcript.events(type="warning", code=16020)
    assert full["call"] == "bob" and ("say", "Room full") in transcript.heard("bob")


@concurrently
def test_an_answer_marked_as_a_failed_call_fails_the_run(gateway: FakeGateway) -> Run:
    sorry = '<?xml version="1.0"?><Response><Say>Sorry</Say><Hangup/></Response>'
    gateway.routes["/twilio/voice"] = lambda _received: Response(
        sorry, content_type="text/xml", headers={CALL_FAILED_HEADER: "app-failed"})
    transcript = yield scenario([call("alice")])
    assert not transcript.ok and transcript.errors == []
    (failed,) = transcript.failed_calls
    assert (failed["call"], failed["reason"], failed["kind"]) == ("alice", "app-failed", "voice")
    assert transcript.heard("alice") == [("say", "Sorry")]  # Twilio plays it all the same
