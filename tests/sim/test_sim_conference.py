"""The conference engine over real HTTP: rooms, waiting, events, beeps, Dial exits, recordings."""

from __future__ import annotations

import re

from tests.sim.runs import Run, Scenario, concurrently, scenario
from tests.sim.support import FakeGateway, Received, call

ALICE, BOB, CAROL, DAVE = "+14155550101", "+14155550102", "+14155550103", "+14155550104"
ALL_EVENTS = "start end join leave mute hold modify speaker announcement"
RFC2822 = re.compile(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def room(name: str = "room", *, dial: str = "", after: str = "", **attrs: str) -> str:
    """<Dial><Conference> TwiML; events go to /events unless the caller says otherwise."""
    attrs.setdefault("statusCallback", "/events")
    attrs.setdefault("statusCallbackEvent", ALL_EVENTS)
    rendered = " ".join(f'{k}="{v}"' for k, v in attrs.items() if v is not None)
    return f"<Dial {dial}><Conference {rendered}>{name}</Conference></Dial>{after}"


def by_caller(gateway: FakeGateway, documents: dict[str, str]) -> None:
    """The voice URL answers each caller (by From) with its own TwiML."""
    def answer(received: Received) -> str:
        return f"<Response>{documents[received.params['From']]}</Response>"
    gateway.routes["/twilio/voice"] = answer


def events(gateway: FakeGateway, path: str = "/events") -> list[dict[str, str]]:
    return [r.params for r in gateway.requests_to(path)]


def names(gateway: FakeGateway, path: str = "/events") -> list[str]:
    return [p["StatusCallbackEvent"] for p in events(gateway, path)]


def of(gateway: FakeGateway, event: str, path: str = "/events") -> list[dict[str, str]]:
    return [p for p in events(gateway, path) if p["StatusCallbackEvent"] == event]


def sid_of(gateway: FakeGateway, caller: str) -> str:
    return next(r.params["CallSid"] for r in gateway.requests_to("/twilio/voice")
                if r.params["From"] == caller)


def two_callers(gateway: FakeGateway, twiml: str, *, alice_hangup: float = 1.5,
                bob_hangup: float = 2.0) -> Scenario:
    """Alice alone in the room at 0, Bob joining at 0.5 (events a step of 0.5 s apart, so that
    a busy machine does not swap them)."""
    gateway.twiml("/twilio/voice", twiml)
    return scenario([call("alice", hangup_at=alice_hangup),
                     call("bob", from_=BOB, at=0.5, hangup_at=bob_hangup)])


@concurrently
def test_a_lone_participant_waits_and_the_room_starts_with_the_second(
        gateway: FakeGateway) -> Run:
    transcript = yield two_callers(gateway, room())
    assert names(gateway)[:3] == ["participant-join", "participant-join", "conference-start"]
    assert ("wait", "default hold music") in transcript.heard("alice")
    assert not [h for h in transcript.heard("bob") if h[0] == "wait"]
    start = transcript.events(type="conference", event="conference-start")[0]
    bob_join = transcript.events(type="conference", event="participant-join", call="bob")[0]
    assert start["t"] >= bob_join["t"] >= 0.5
    assert transcript.ok


@concurrently
def test_participants_without_start_on_enter_wait_for_a_moderator(gateway: FakeGateway) -> Run:
    listener = room(startConferenceOnEnter="false", waitUrl="")
    by_caller(gateway, {ALICE: listener, BOB: listener, CAROL: room()})
    transcript = yield scenario([call("alice", hangup_at=2.0),
                                 call("bob", from_=BOB, at=0.4, hangup_at=2.0),
                                 call("carol", from_=CAROL, at=1.0, hangup_at=2.0)])
    assert names(gateway)[:4] == ["participant-join", "participant-join", "participant-join",
                                  "conference-start"]
    (start,) = transcript.events(type="conference", event="conference-start")
    assert start["t"] >= 1.0
    assert ("wait", "silence") in transcript.heard("bob")


@concurrently
def test_events_carry_increasing_sequence_numbers(gateway: FakeGateway) -> Run:
    yield two_callers(gateway, room(beep="false"))
    sent = events(gateway)
    assert [int(p["SequenceNumber"]) for p in sent] == list(range(1, len(sent) + 1))
    assert names(gateway) == ["participant-join", "participant-join", "conference-start",
                              "participant-leave", "participant-leave", "conference-end"]
    for p in sent:
        assert p["ConferenceSid"].startswith("CF") and len(p["ConferenceSid"]) == 34
        assert p["FriendlyName"] == "room" and p["AccountSid"].startswith("AC")
        assert RFC2822.match(p["Timestamp"])
    for p in sent:
        if p["StatusCallbackEvent"].startswith("participant-"):
            assert {"CallSid", "Muted", "Hold", "Coaching", "EndConferenceOnExit",
                    "StartConferenceOnEnter"} <= set(p)
            assert p["Muted"] == "false" and p["StartConferenceOnEnter"] == "true"
    leave = of(gateway, "participant-leave")[0]
    assert (leave["ParticipantCallStatus"], leave["ReasonParticipantLeft"]) == (
        "completed", "participant_hung_up")
    (end,) = of(gateway, "conference-end")
    assert end["ReasonConferenceEnded"] == "last-participant-left"
    assert end["CallSidEndingConference"] == sid_of(gateway, BOB)
    assert end["Reason"]


@concurrently
def test_second_participant_status_callback_is_ignored(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room(statusCallback="/events-a", statusCallbackEvent="join"),
                        BOB: room(statusCallback="/events-b", statusCallbackEvent=ALL_EVENTS)})
    yield scenario([call("alice", hangup_at=1.5), call("bob", from_=BOB, at=0.5,
                                                        hangup_at=1.5)])
    assert names(gateway, "/events-a") == ["participant-join", "participant-join"]
    assert gateway.requests_to("/events-b") == []


@concurrently
def test_no_status_callback_events_unless_subscribed(gateway: FakeGateway) -> Run:
    transcript = yield two_callers(gateway, room(statusCallbackEvent=None))
    assert gateway.requests_to("/events") == []
    assert transcript.events(type="conference")  # still in the transcript


@concurrently
def test_wait_url_plays_once_unless_it_ends_in_redirect(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room("once", waitUrl="/wait-once"),
                        CAROL: room("loops", waitUrl="/wait-loop")})
    gateway.twiml("/wait-once", "<Play>/a.mp3</Play>")
    gateway.twiml("/wait-loop", '<Play loop="1">/b.mp3</Play><Redirect/>')
    transcript = yield scenario([call("alice", hangup_at=2.5),
                                 call("carol", from_=CAROL, hangup_at=2.5)], play_seconds=0.2)
    assert transcript.heard("alice") == [("wait", f"play {gateway.url('/a.mp3')}")]
    loops = [h for h in transcript.heard("carol") if h == ("wait",
                                                          f"play {gateway.url('/b.mp3')}")]
    assert len(loops) >= 3
    assert len(gateway.requests_to("/wait-once")) == 1
    assert len(gateway.requests_to("/wait-loop")) >= 3
    assert transcript.ok


@concurrently
def test_wait_url_request_is_signed_and_uses_wait_method(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(waitUrl="/wait?room=1", waitMethod="GET"))
    gateway.twiml("/wait", "<Say>Please wait</Say>")
    transcript = yield scenario([call("alice", hangup_at=1.2)])
    (wait,) = gateway.requests_to("/wait")
    assert wait.method == "GET" and wait.signature_ok
    assert wait.params["room"] == "1" and wait.params["CallSid"] == sid_of(gateway, ALICE)
    assert transcript.heard("alice") == [("wait", "say Please wait")]


@concurrently
def test_wait_url_empty_is_silence_and_absent_is_twilios_music(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room("quiet", waitUrl=""), BOB: room("music")})
    transcript = yield scenario([call("alice", hangup_at=0.8),
                                 call("bob", from_=BOB, hangup_at=0.8)])
    assert transcript.heard("alice") == [("wait", "silence")]
    assert transcript.heard("bob") == [("wait", "default hold music")]


@concurrently
def test_wait_url_answering_audio_plays_the_file_once(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(waitUrl="/music.mp3"))
    gateway.routes["/music.mp3"] = (b"ID3", 200, "audio/mpeg")
    transcript = yield scenario([call("alice", hangup_at=1.0)], play_seconds=0.2)
    assert transcript.heard("alice") == [("wait", f"audio {gateway.url('/music.mp3')}")]
    assert len(gateway.requests_to("/music.mp3")) == 1


@concurrently
def test_wait_url_with_other_verbs_is_error_13238_and_silence(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(waitUrl="/wait"))
    gateway.twiml("/wait", "<Say>hi</Say><Hangup/>")
    transcript = yield scenario([call("alice", hangup_at=1.2)])
    (error,) = transcript.errors
    assert (error["code"], error["kind"]) == (13238, "wait")
    assert transcript.heard("alice") == []
    assert transcript.call_end("alice")["reason"] == "caller hung up"  # still in the room


@concurrently
def test_full_room_refuses_participant(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(maxParticipants="2", dial='action="/left"'))
    gateway.twiml("/left", "<Say>Room full</Say>")
    transcript = yield scenario([call("alice", hangup_at=2.0),
                                 call("bob", from_=BOB, at=0.4, hangup_at=2.0),
                                 call("carol", from_=CAROL, at=0.8, hangup_at=2.0)])
    (full,) = transcript.events(type="warning", code=16020)
    assert full["call"] == "carol"
    joined = [p["CallSid"] for p in of(gateway, "participant-join")]
    assert sid_of(gateway, CAROL) not in joined and len(joined) == 2
    (left,) = [r.params for r in gateway.requests_to("/left")
               if r.params["From"] == CAROL]
    assert (left["DialCallStatus"], left["DialBridged"]) == ("failed", "false")
    assert ("say", "Room full") in transcript.heard("carol")
    assert transcript.ok


@concurrently
def test_end_conference_on_exit_ends_the_room_for_everyone(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room(endConferenceOnExit="true"),
                        BOB: room(dial='action="/left"')})
    gateway.twiml("/left", "<Say>The host left</Say>")
    transcript = yield scenario([call("alice", hangup_at=1.2),
                                 call("bob", from_=BOB, at=0.4, hangup_at=3.0)])
    bob_leave = next(p for p in of(gateway, "participant-leave")
                 if p["CallSid"] == sid_of(gateway, BOB))
    assert (bob_leave["ReasonParticipantLeft"], bob_leave["ParticipantCallStatus"]) == (
        "moderator_ended_conference", "in-progress")
    (end,) = of(gateway, "conference-end")
    assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    assert end["CallSidEndingConference"] == sid_of(gateway, ALICE)
    (left,) = gateway.requests_to("/left")
    assert (left.params["DialCallStatus"], left.params["CallStatus"]) == ("answered",
                                                                          "in-progress")
    assert "DialCallSid" not in left.params and "DialCallDuration" not in left.params
    assert transcript.heard("bob")[-1] == ("say", "The host left")
    assert transcript.call_end("bob")["reason"] == "no more TwiML"


@concurrently
def test_beep_is_heard_by_the_others_not_by_the_joiner(gateway: FakeGateway) -> Run:
    transcript = yield two_callers(gateway, room(), alice_hangup=2.5, bob_hangup=1.5)
    assert ("beep", "enter") in transcript.heard("alice")
    assert ("beep", "exit") in transcript.heard("alice")
    assert not [h for h in transcript.heard("bob") if h[0] == "beep"]


@concurrently
def test_beep_on_enter_only_and_false(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room(beep="false"), BOB: room(beep="onEnter"),
                        CAROL: room(beep="false")})
    transcript = yield scenario([call("alice", hangup_at=2.5),
                                 call("bob", from_=BOB, at=0.4, hangup_at=1.4),
                                 call("carol", from_=CAROL, at=0.9, hangup_at=2.5)])
    assert [h for h in transcript.heard("alice") if h[0] == "beep"] == [("beep", "enter")]
    assert [h for h in transcript.heard("bob") if h[0] == "beep"] == []


@concurrently
def test_hangup_on_star_leaves_the_room_and_the_call_goes_on(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room(), BOB: room(dial='hangupOnStar="true" action="/left"',
                                                  after="<Say>Unreachable</Say>")})
    gateway.twiml("/left", "<Say>You left</Say>")
    transcript = yield scenario([call("alice", hangup_at=2.0),
                                 call("bob", from_=BOB, at=0.4,
                                      keys=[{"at": 1.0, "digits": "*"}])])
    bob = sid_of(gateway, BOB)
    leave = next(p for p in of(gateway, "participant-leave") if p["CallSid"] == bob)
    assert (leave["ReasonParticipantLeft"], leave["ParticipantCallStatus"]) == (
        "participant_hung_up", "in-progress")
    (left,) = gateway.requests_to("/left")
    assert (left.params["DialCallStatus"], left.params["DialBridged"]) == ("answered", "true")
    heard = transcript.heard("bob")
    assert heard[-1] == ("say", "You left") and ("say", "Unreachable") not in heard
    assert transcript.call_end("bob")["status"] == "completed"


@concurrently
def test_without_an_action_the_next_verb_runs(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(dial='hangupOnStar="true"', after="<Say>After</Say>"))
    transcript = yield scenario([call("alice", keys=[{"at": 0.5, "digits": "*"}])])
    assert transcript.heard("alice")[-1] == ("say", "After")


@concurrently
def test_stars_are_ignored_without_hangup_on_star(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(after="<Say>After</Say>"))
    transcript = yield scenario([call("alice", hangup_at=1.0,
                                      keys=[{"at": 0.5, "digits": "*"}])])
    assert ("say", "After") not in transcript.heard("alice")


@concurrently
def test_dial_action_is_requested_after_the_caller_hangs_up(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(dial='action="/left"'))
    gateway.twiml("/left", "<Say>Nobody hears this</Say>")
    transcript = yield scenario([call("alice", hangup_at=0.8)])
    (left,) = gateway.requests_to("/left")
    assert (left.params["CallStatus"], left.params["DialCallStatus"]) == ("completed",
                                                                          "completed")
    assert ("say", "Nobody hears this") not in transcript.heard("alice")
    # the status callback comes after the action request
    assert gateway.requests_to("/twilio/status")[0].at >= left.at


@concurrently
def test_time_limit_takes_the_participant_out(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(dial='timeLimit="1" action="/left"'))
    gateway.twiml("/left", "<Hangup/>")
    transcript = yield scenario([call("alice", hangup_at=3.0)])
    (left,) = gateway.requests_to("/left")
    assert left.params["DialCallStatus"] == "answered"
    leave = transcript.events(type="conference", event="participant-leave")[0]
    assert 0.9 <= leave["t"] <= 2.0


@concurrently
def test_speech_events_only_while_unmuted_in_a_started_room(gateway: FakeGateway) -> Run:
    by_caller(gateway, {ALICE: room(muted="true"), BOB: room(), DAVE: room("alone")})
    yield scenario([
        call("alice", hangup_at=2.0, speech=[{"from": 1.0, "to": 1.4}]),
        call("bob", from_=BOB, at=0.4, hangup_at=2.0, speech=[{"from": 1.0, "to": 1.4}]),
        call("dave", from_=DAVE, hangup_at=2.0, speech=[{"from": 0.5, "to": 0.9}])])
    bob = sid_of(gateway, BOB)
    speech = [(p["StatusCallbackEvent"], p["CallSid"]) for p in events(gateway)
              if "speech" in p["StatusCallbackEvent"]]
    assert speech == [("participant-speech-start", bob), ("participant-speech-stop", bob)]


@concurrently
def test_recording_starts_only_when_two_are_bridged(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(record="record-from-start",
                                        recordingStatusCallback="/rec",
                                        recordingStatusCallbackEvent="in-progress completed"))
    transcript = yield scenario([call("alice", hangup_at=2.5),
                                 call("bob", from_=BOB, at=0.8, hangup_at=2.5)])
    started, completed = (r.params for r in gateway.requests_to("/rec"))
    assert (started["RecordingStatus"], completed["RecordingStatus"]) == ("in-progress",
                                                                          "completed")
    recording = transcript.events(type="recording", status="in-progress")[0]
    assert recording["t"] >= 0.8
    assert completed["RecordingSid"] == started["RecordingSid"]
    assert completed["RecordingSid"].startswith("RE")
    assert 1 <= int(completed["RecordingDuration"]) <= 2
    assert (completed["RecordingSource"], completed["RecordingChannels"]) == ("Conference", "1")
    assert RFC2822.match(completed["RecordingStartTime"])
    assert completed["ConferenceSid"] == of(gateway, "conference-start")[0]["ConferenceSid"]
    assert completed["RecordingUrl"].endswith(
        f"/2010-04-01/Accounts/{completed['AccountSid']}/Recordings/{completed['RecordingSid']}")
    assert "CallSid" not in completed


@concurrently
def test_a_lone_participant_is_never_recorded(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(record="record-from-start",
                                        recordingStatusCallback="/rec"))
    transcript = yield scenario([call("alice", hangup_at=0.8)])
    assert gateway.requests_to("/rec") == []
    assert transcript.events(type="recording") == []


@concurrently
def test_a_room_that_ended_is_a_new_room_next_time(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room())
    yield scenario([call("alice", hangup_at=0.6), call("bob", from_=BOB, at=1.2,
                                                        hangup_at=1.6)])
    first, second = (p["ConferenceSid"] for p in of(gateway, "participant-join"))
    assert first != second


@concurrently
def test_a_duplicate_participant_label_skips_the_conference(gateway: FakeGateway) -> Run:
    labelled = room(participantLabel="agent", after="<Say>Label taken</Say>")
    by_caller(gateway, {ALICE: labelled, BOB: labelled})
    transcript = yield scenario([call("alice", hangup_at=1.5),
                                 call("bob", from_=BOB, at=0.5, hangup_at=1.5)])
    assert transcript.events(type="warning", code=16025)[0]["call"] == "bob"
    assert ("say", "Label taken") in transcript.heard("bob")
    (join,) = of(gateway, "participant-join")
    assert join["ParticipantLabel"] == "agent"


@concurrently
def test_conference_events_may_be_requested_with_get(gateway: FakeGateway) -> Run:
    yield two_callers(gateway, room(statusCallbackMethod="GET", statusCallbackEvent="join"))
    joins = gateway.requests_to("/events")
    assert [r.method for r in joins] == ["GET", "GET"]  # signed over the URL with its query
    assert joins[0].params["StatusCallbackEvent"] == "participant-join"
