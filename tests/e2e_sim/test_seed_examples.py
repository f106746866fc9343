"""The seed's seven `<Conference>` examples, end to end through the Twilio simulator.

customer app (the examples' documents, as printed)  <-  gateway serve  <->  Twilio simulator,
all on loopback. Each test plays one short scenario and asserts on what each caller heard and on
the conference events Twilio reported, never on timing. One gateway serves every example: one
mapped app per (example, role), one Plivo account per example (examples 1 and 2 share room 9876
and must not meet).
"""

from __future__ import annotations

import pytest

from gateway.examples import SEED_EXAMPLES
from gateway.translate.rooms import twilio_room_name
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

WAIT_WORDS = "Please hold for the moderator."
NEXT_STEP = "Next step."


def account(example: int) -> str:
    return f"MA{example:018d}"


def number(example: int, role: str) -> str:
    roles = [r for r, _ in SEED_EXAMPLES[example - 1].documents]
    return f"+1415556{example:02d}{roles.index(role) + 1:02d}"


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        for example in SEED_EXAMPLES:
            for role, xml in example.with_base_url(customer_app.base_url).documents:
                customer_app.route(f"/answer/{example.number}/{role}", xml)
        customer_app.route("/waitmusic/", f"<Response><Play>{customer_app.url('/hold.wav')}"
                                          f"</Play><Speak>{WAIT_WORDS}</Speak></Response>")
        customer_app.route("/nextstep/", f"<Response><Speak>{NEXT_STEP}</Speak></Response>")
        customer_app.route("/confevents/", body="")
        customer_app.route("/hangup/", body="")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    apps = [app_config(app.url(f"/answer/{e.number}/{role}"), name=f"ex{e.number}-{role}",
                       account=account(e.number), numbers=(number(e.number, role),),
                       hangup_url=app.url("/hangup/"))
            for e in SEED_EXAMPLES for role, _ in e.documents]
    with Stack(tmp_path_factory.mktemp("seed"), apps=apps) as running:
        yield running


def call(name: str, example: int, role: str, at: float = 0.0, **extra) -> dict:
    return {"name": name, "from": f"+1202556{abs(hash(name)) % 10000:04d}",
            "to": number(example, role), "at": at, **extra}


def play(stack: Stack, app: CustomerApp, *calls: dict):
    """Run the calls (≤ 6 s); the run must be free of application errors and every request the
    app received for these callers must carry valid Plivo signatures."""
    before = len(app.requests)
    transcript = stack.run({"duration": 6.0, "call": list(calls)})
    # On failure, show each error with the failed exchanges of its call (url, reason).
    assert transcript.ok, [(e, [x for x in transcript.events(type="received", call=e.get("call"))
                                if "failure" in x]) for e in transcript.errors]
    assert not transcript.events(type="warning"), transcript.events(type="warning")
    for request in app.requests[before:]:
        assert request.signatures_valid, (request.path, request.signature_error)
    return transcript


def join(transcript, name: str) -> dict:
    joins = transcript.events(type="conference", event="participant-join", call=name)
    assert len(joins) == 1, joins
    return joins[0]


def leave(transcript, name: str) -> dict:
    leaves = transcript.events(type="conference", event="participant-leave", call=name)
    assert len(leaves) == 1, leaves
    return leaves[0]


def room_events(transcript, event: str, sid: str) -> list[dict]:
    return [e for e in transcript.events(type="conference", event=event)
            if e["conference_sid"] == sid]


def heard_before(transcript, name: str, t: float) -> list[tuple[str, str]]:
    return [(e["kind"], e["detail"]) for e in transcript.events(type="heard", call=name)
            if e["t"] <= t]


def joined_muted(transcript, name: str) -> bool:
    sid = transcript.events(type="call-start", call=name)[0]["call_sid"]
    joins = [e["params"] for e in transcript.events(type="sent", kind="conference-event")
             if e["params"].get("StatusCallbackEvent") == "participant-join"
             and e["params"].get("CallSid") == sid]
    assert len(joins) == 1
    return joins[0]["Muted"] == "true"


def test_example_1_two_callers_meet_without_beep_or_hold_music(stack, app):
    t = play(stack, app, call("alice", 1, "caller", hangup_at=2.5),
             call("bob", 1, "caller", 0.8, hangup_at=2.5))
    alice, bob = join(t, "alice"), join(t, "bob")
    assert alice["conference"] == bob["conference"] == twilio_room_name(account(1), "9876")
    assert room_events(t, "conference-start", alice["conference_sid"])[0]["t"] >= bob["t"]
    heard = t.heard("alice") + t.heard("bob")
    assert ("beep", "enter") not in heard and all(kind != "beep" for kind, _ in heard)
    assert [d for kind, d in heard if kind == "wait"] == ["silence"]  # alice, alone at first


def test_example_2_participant_hears_wait_sound_until_moderator_ends_the_room(stack, app):
    t = play(stack, app, call("guest", 2, "participant"),
             call("mod", 2, "moderator", 2.5, hangup_at=4.0))
    guest, mod = join(t, "guest"), join(t, "mod")
    assert guest["conference"] == twilio_room_name(account(2), "9876")
    assert mod["conference_sid"] == guest["conference_sid"]
    waited = heard_before(t, "guest", mod["t"])
    assert ("wait", f"play {app.url('/hold.wav')}") in waited
    assert ("wait", f"say {WAIT_WORDS}") in waited
    # Twilio fetched the wait document from the gateway, which fetched the app's waitSound.
    assert {e["url"].split("?")[0] for e in t.events(type="sent", kind="wait")} == {
        stack.gateway.url + "/twilio/conference/wait"}
    uuid = app.requests_to("/answer/2/participant")[-1].params["CallUUID"]
    assert [r.params["CallUUID"] for r in app.requests_to("/waitmusic/")][-1] == uuid
    # The moderator starts the room; the moderator leaving ends it for everyone.
    starts = room_events(t, "conference-start", mod["conference_sid"])
    assert len(starts) == 1 and starts[0]["t"] >= mod["t"]
    ended = room_events(t, "conference-end", mod["conference_sid"])
    assert ended[0]["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"
    assert leave(t, "guest")["ReasonParticipantLeft"] == "moderator_ended_conference"
    assert t.call_end("guest")["status"] == "completed"
    assert not t.events(type="hangup", call="guest")  # she never hung up herself


def test_example_3_members_join_muted(stack, app):
    t = play(stack, app, call("m1", 3, "caller", hangup_at=2.0),
             call("m2", 3, "caller", 0.5, hangup_at=2.0, speech=[{"from": 1.0, "to": 1.5}]))
    assert join(t, "m1")["conference"] == twilio_room_name(account(3), "SimpleRoom")
    assert join(t, "m2")["conference_sid"] == join(t, "m1")["conference_sid"]
    assert joined_muted(t, "m1") and joined_muted(t, "m2")


def test_example_4_malformed_room_still_bridges_the_callers(stack, app):
    # As printed, the stray '>' ends the start tag: endConferenceOnExit becomes room text.
    room = 'endConferenceOnExit="true">NoMusicNoBeepRoom'
    t = play(stack, app, call("first", 4, "caller", hangup_at=2.5),
             call("second", 4, "caller", 1.0, hangup_at=3.5))
    first, second = join(t, "first"), join(t, "second")
    assert first["conference"] == second["conference"] == twilio_room_name(account(4), room)
    assert room_events(t, "conference-start", first["conference_sid"])
    assert ("wait", f"play {app.url('/hold.wav')}") in heard_before(t, "first", second["t"])
    assert all(kind != "beep" for kind, _ in t.heard("first") + t.heard("second"))
    # No endConferenceOnExit: the first caller leaving leaves the second in the room.
    assert leave(t, "second")["ReasonParticipantLeft"] == "participant_hung_up"
    ended = room_events(t, "conference-end", first["conference_sid"])
    assert ended[0]["ReasonConferenceEnded"] == "last-participant-left"


def test_example_5_hold_music_until_the_operator_whose_leaving_ends_the_room(stack, app):
    t = play(stack, app, call("customer", 5, "customer"),
             call("operator", 5, "operator", 2.5, hangup_at=4.0))
    customer, operator = join(t, "customer"), join(t, "operator")
    assert customer["conference"] == twilio_room_name(account(5), "Customer Waiting Room")
    assert operator["conference_sid"] == customer["conference_sid"]
    on_hold = heard_before(t, "customer", operator["t"])
    assert ("wait", f"play {app.url('/hold.wav')}") in on_hold
    assert all(kind != "beep" for kind, _ in t.heard("customer") + t.heard("operator"))
    assert room_events(t, "conference-start", customer["conference_sid"])[0]["t"] >= operator["t"]
    assert leave(t, "customer")["ReasonParticipantLeft"] == "moderator_ended_conference"
    assert not t.events(type="hangup", call="customer")


def test_example_6_star_leaves_the_room_then_the_redirect_is_heard(stack, app):
    t = play(stack, app, call("star", 6, "caller", keys=[{"at": 1.5, "digits": "*"}]))
    joined = join(t, "star")
    assert joined["conference"] == twilio_room_name(account(6), "plivo")
    left = leave(t, "star")
    assert left["t"] >= t.events(type="key", call="star")[0]["t"]
    after = [(e["kind"], e["detail"]) for e in t.events(type="heard", call="star")
             if e["t"] >= left["t"]]
    assert after == [("say", NEXT_STEP)]
    assert app.requests_to("/nextstep/")[-1].params["Event"] == "Redirect"
    assert t.call_end("star")["reason"] == "no more TwiML"


def test_example_7_the_caller_joins_my_room(stack, app):
    t = play(stack, app, call("cb", 7, "caller", hangup_at=2.5,
                              keys=[{"at": 1.0, "digits": "99"}]))
    assert join(t, "cb")["conference"] == twilio_room_name(account(7), "MyRoom")
    assert leave(t, "cb")["ReasonParticipantLeft"] == "participant_hung_up"
    uuid = app.requests_to("/answer/7/caller")[-1].params["CallUUID"]
    enter = app.wait_for(lambda reqs: [r for r in reqs if r.path == "/confevents/"
                                       and r.params.get("CallUUID") == uuid
                                       and r.params.get("ConferenceAction") == "enter"],
                         timeout=10)[0]
    assert enter.params["ConferenceName"] == "MyRoom"
