"""Conference lifecycle end to end: Twilio simulator <-> gateway <-> customer app, real HTTP.

What the customer app receives, request by request, is what Plivo would have sent: the answer
fetch, ConferenceAction callbacks, the action URL (redirect true/false), the hangup URL. One
gateway (SQLite) serves most tests; the state-heavy ones also run on Redis.
"""

from __future__ import annotations

import pytest

from gateway.examples import SEED_EXAMPLES
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.stack import Stack

SEED_ACCOUNT = "MA00000000000000000007"
NAMES = ["ex1", "ex2p", "ex2m", "ex3", "ex5c", "ex5o", "ex6", "ex7", "acct-a", "acct-b",
         "crowd", "redirect-true", "redirect-false", "rec-mp3", "rec-wav", "alone", "full",
         "sounds"]
NUMBERS = {name: f"+1415555{i + 1:04d}" for i, name in enumerate(NAMES)}
ACCOUNTS = {"acct-a": "MA0000000000000000000A", "acct-b": "MA0000000000000000000B"}


def apps_for(app: CustomerApp) -> list[dict]:
    return [app_config(app.url(f"/answer/{name}"), name=name, numbers=(NUMBERS[name],),
                       account=ACCOUNTS.get(name, SEED_ACCOUNT), hangup_url=app.url("/hangup"))
            for name in NAMES]


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        customer_app.route("/cb", body="")
        customer_app.route("/hangup", body="")
        customer_app.route("/music", "<Response><Play>http://127.0.0.1:9/hold.mp3</Play>"
                                     "</Response>")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("stack"), apps=apps_for(app)) as running:
        yield running


@pytest.fixture(scope="module")
def redis_stack(app, tmp_path_factory, redis_server):
    url = redis_server.url(db=3)
    with Stack(tmp_path_factory.mktemp("redis-stack"), apps=apps_for(app),
               store_url=url) as running:
        yield running


def seed(number: int, role: str, app: CustomerApp) -> str:
    example = next(e for e in SEED_EXAMPLES if e.number == number).with_base_url(app.base_url)
    xml = dict(example.documents)[role]
    return xml.replace(app.base_url + "/waitmusic/", app.url("/music")).replace(
        app.base_url + "/confevents/", app.url("/cb"))


def caller(name: str, number_of: str, at: float = 0.0, **extra) -> dict:
    return {"name": name, "from": f"+1202555{abs(hash(name)) % 10000:04d}",
            "to": NUMBERS[number_of], "at": at, **extra}


def requests_of(app: CustomerApp, call_uuid: str) -> list[str]:
    """What the app received for one call, in order: answer, callbacks, hangup..."""
    out = []
    for r in app.requests:
        if r.params.get("CallUUID") != call_uuid:
            continue
        assert r.signatures_valid, (r.path, r.signature_error)
        label = r.path.rsplit("/", 1)[-1] if r.path.startswith("/answer/") else r.path
        action = r.params.get("ConferenceAction")
        out.append(f"{label}:{action}" if action else label)
    return out


def call_uuids(app: CustomerApp, answer_name: str) -> list[str]:
    return [r.params["CallUUID"] for r in app.requests_to(f"/answer/{answer_name}")]


def joins(transcript) -> list:
    return transcript.events(type="conference", event="participant-join")


def wait_for_hangups(app: CustomerApp, uuids: list[str], timeout: float = 15.0) -> None:
    app.wait_for(lambda reqs: {r.params.get("CallUUID") for r in reqs if r.path == "/hangup"}
                 >= set(uuids), timeout=timeout)


# -- the seed's examples --------------------------------------------------------------------------
def test_example_1_two_callers_one_room_no_callbacks(stack, app):
    app.route("/answer/ex1", seed(1, "caller", app))
    t = stack.run({"duration": 8.0, "call": [caller("alice", "ex1", hangup_at=3.0),
                                              caller("bob", "ex1", 0.5, hangup_at=3.5)]})
    assert t.ok, t.errors
    rooms = {e["conference_sid"] for e in joins(t)}
    assert len(joins(t)) == 2 and len(rooms) == 1
    assert all(kind != "beep" for kind, _ in t.heard("alice") + t.heard("bob"))
    uuids = call_uuids(app, "ex1")
    wait_for_hangups(app, uuids)
    assert [requests_of(app, u) for u in uuids] == [["ex1", "/hangup"], ["ex1", "/hangup"]]


def test_example_2_moderated_room_with_wait_sound(stack, app):
    app.route("/answer/ex2p", seed(2, "participant", app))
    app.route("/answer/ex2m", seed(2, "moderator", app))
    t = stack.run({"duration": 9.0, "call": [caller("guest", "ex2p"),
                                              caller("mod", "ex2m", 2.0, hangup_at=4.0)]})
    assert t.ok, t.errors
    waits = [detail for kind, detail in t.heard("guest") if kind == "wait"]
    assert waits and all("hold.mp3" in detail for detail in waits)  # looped, never silence
    ended = t.events(type="conference", event="conference-end")
    assert ended and "end-conference-on-exit" in ended[0]["ReasonConferenceEnded"]
    guest, mod = call_uuids(app, "ex2p")[0], call_uuids(app, "ex2m")[0]
    wait_for_hangups(app, [guest, mod])
    assert requests_of(app, guest) == ["ex2p", "/music", "/hangup"]
    assert requests_of(app, mod) == ["ex2m", "/hangup"]


def test_example_3_members_join_muted(stack, app):
    app.route("/answer/ex3", seed(3, "caller", app))
    t = stack.run({"duration": 6.0, "call": [caller("m1", "ex3", hangup_at=2.5),
                                              caller("m2", "ex3", 0.3, hangup_at=2.5)]})
    assert t.ok, t.errors
    sent = [e["params"] for e in t.events(type="sent", kind="conference-event")
            if e["params"]["StatusCallbackEvent"] == "participant-join"]
    assert [p["Muted"] for p in sent] == ["true", "true"]


def test_example_5_hold_then_operator_ends_it(stack, app):
    app.route("/answer/ex5c", seed(5, "customer", app))
    app.route("/answer/ex5o", seed(5, "operator", app))
    t = stack.run({"duration": 9.0, "call": [caller("customer", "ex5c"),
                                              caller("operator", "ex5o", 2.0, hangup_at=4.0)]})
    assert t.ok, t.errors
    assert any(kind == "wait" and "hold.mp3" in detail for kind, detail in t.heard("customer"))
    assert t.call_end("customer")["t"] < 6.0  # the operator leaving ended the room
    customer = call_uuids(app, "ex5c")[0]
    wait_for_hangups(app, [customer])
    assert requests_of(app, customer) == ["ex5c", "/music", "/hangup"]


def test_example_6_hangup_on_star_then_redirect(stack, app):
    app.route("/answer/ex6", seed(6, "caller", app).replace(app.base_url + "/nextstep/",
                                                              app.url("/nextstep")))
    app.route("/nextstep", "<Response><Speak>Next step</Speak></Response>")
    t = stack.run({"duration": 8.0, "call": [caller("star", "ex6", keys=[{"at": 2.0,
                                                                           "digits": "*"}])]})
    assert t.ok, t.errors
    assert ("say", "Next step") in t.heard("star")
    uuid = call_uuids(app, "ex6")[0]
    wait_for_hangups(app, [uuid])
    assert requests_of(app, uuid) == ["ex6", "/nextstep", "/hangup"]
    assert app.requests_to("/nextstep")[-1].params["Event"] == "Redirect"


def test_example_7_callback_url_gets_enter_digits_and_exit(stack, app):
    app.route("/answer/ex7", seed(7, "caller", app))
    t = stack.run({"duration": 6.0, "call": [caller("cb1", "ex7", hangup_at=2.0,
                                                    keys=[{"at": 1.0, "digits": "99"}])]})
    assert t.ok, t.errors
    uuid = call_uuids(app, "ex7")[0]
    wait_for_hangups(app, [uuid])
    # digitsMatch="#0,99,000": the member's 9 9 is heard on the side stream.
    assert requests_of(app, uuid) == ["ex7", "/cb:enter", "/cb:digits", "/cb:exit", "/hangup"]
    enter, digits, exit_ = [r for r in app.requests_to("/cb") if r.params["CallUUID"] == uuid]
    assert digits.params["ConferenceDigitsMatch"] == "99"
    assert enter.params["ConferenceName"] == "MyRoom"
    assert enter.params["ConferenceMemberID"] == exit_.params["ConferenceMemberID"] == "1"
    assert exit_.params["CallStatus"] == "completed"


# -- rooms, members, actions ----------------------------------------------------------------------
def test_two_accounts_with_the_same_room_get_two_rooms(stack, app):
    for name in ("acct-a", "acct-b"):
        app.route(f"/answer/{name}", "<Response><Conference>Shared</Conference></Response>")
    t = stack.run({"duration": 5.0, "call": [caller("a", "acct-a", hangup_at=2.0),
                                              caller("b", "acct-b", 0.2, hangup_at=2.0)]})
    assert t.ok, t.errors
    names = {e["conference"] for e in joins(t)}
    assert len(names) == 2
    assert all("MA0000000000000000000A" in n or "MA0000000000000000000B" in n for n in names)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_fifty_callers_get_member_ids_one_to_fifty(request, app, backend):
    running = request.getfixturevalue("stack" if backend == "sqlite" else "redis_stack")
    app.route("/answer/crowd", f'<Response><Conference callbackUrl="{app.url("/cb")}">'
                               f"Crowd {backend}</Conference></Response>")
    before = len(app.requests_to("/answer/crowd"))
    calls = [caller(f"c{i:02d}-{backend}", "crowd", 0.0, hangup_at=5.0) for i in range(50)]
    t = running.run({"duration": 12.0, "call": calls})
    assert t.ok, t.errors
    uuids = set(call_uuids(app, "crowd")[before:])
    assert len(uuids) == 50
    enters = app.wait_for(lambda reqs: [r for r in reqs if r.path == "/cb" and r.params.get(
        "ConferenceAction") == "enter" and r.params["CallUUID"] in uuids] if len(
        [r for r in reqs if r.path == "/cb" and r.params.get("ConferenceAction") == "enter"
         and r.params["CallUUID"] in uuids]) == 50 else None, timeout=30)
    assert sorted(int(r.params["ConferenceMemberID"]) for r in enters) == list(range(1, 51))
    assert len({r.params["ConferenceUUID"] for r in enters}) == 1


@pytest.mark.parametrize("redirect", ["true", "false"])
def test_action_url_with_redirect_true_or_false(stack, app, redirect):
    name = f"redirect-{redirect}"
    app.route(f"/answer/{name}", f'<Response><Conference hangupOnStar="true" action="'
                                 f'{app.url("/action/" + redirect)}" redirect="{redirect}">'
                                 f"Act {redirect}</Conference><Speak>Original next</Speak>"
                                 "</Response>")
    app.route(f"/action/{redirect}", "<Response><Speak>From the action</Speak></Response>")
    t = stack.run({"duration": 7.0, "call": [caller(f"act-{redirect}", name,
                                                    keys=[{"at": 1.5, "digits": "*"}])]})
    assert t.ok, t.errors
    heard = t.heard(f"act-{redirect}")
    uuid = call_uuids(app, name)[0]
    wait_for_hangups(app, [uuid])
    action = app.requests_to(f"/action/{redirect}")[-1]
    assert action.params["ConferenceName"] == f"Act {redirect}"
    assert action.params["ConferenceMemberID"] == "1" and action.params["ConferenceUUID"]
    if redirect == "true":
        assert ("say", "From the action") in heard and ("say", "Original next") not in heard
    else:
        assert ("say", "Original next") in heard and ("say", "From the action") not in heard


def test_caller_hanging_up_in_the_room_gets_no_action_request(stack, app):
    app.route("/answer/redirect-true", f'<Response><Conference action="'
                                       f'{app.url("/action/hungup")}">Gone</Conference>'
                                       "</Response>")
    app.route("/action/hungup", "<Response/>")
    t = stack.run({"duration": 5.0, "call": [caller("gone", "redirect-true", hangup_at=2.0)]})
    assert t.ok, t.errors
    uuid = call_uuids(app, "redirect-true")[-1]
    wait_for_hangups(app, [uuid])
    assert app.count("/action/hungup") == 0


@pytest.mark.parametrize("file_format", ["mp3", "wav"])
def test_recording_reports_record_url_in_the_asked_format(stack, app, file_format):
    name = f"rec-{file_format}"
    app.route(f"/answer/{name}", f'<Response><Conference record="true" recordFileFormat="'
                                 f'{file_format}" callbackUrl="{app.url("/cb")}" action="'
                                 f'{app.url("/recorded")}" hangupOnStar="true">Rec '
                                 f"{file_format}</Conference></Response>")
    app.route("/recorded", "<Response><Hangup/></Response>")
    t = stack.run({"duration": 9.0, "call": [
        caller(f"r1-{file_format}", name, keys=[{"at": 3.0, "digits": "*"}]),
        caller(f"r2-{file_format}", name, 0.3, hangup_at=3.5)]})
    assert t.ok, t.errors
    record = app.wait_for(lambda reqs: [r for r in reqs if r.path == "/cb" and r.params.get(
        "ConferenceAction") == "record" and r.params["ConferenceName"] == f"Rec {file_format}"],
        timeout=20)[0]
    p = record.params
    assert p["RecordUrl"].endswith(f".{file_format}")
    assert int(p["RecordingDuration"]) >= 1
    assert int(p["RecordingDurationMs"]) == 1000 * int(p["RecordingDuration"])
    assert int(p["RecordingEndMs"]) - int(p["RecordingStartMs"]) == int(p["RecordingDurationMs"])
    assert "ConferenceMemberID" not in p and "CallUUID" not in p
    action = app.requests_to("/recorded")[-1]
    assert action.params["RecordUrl"].endswith(f".{file_format}")


def test_stay_alone_false_ends_the_room_when_one_is_left(stack, app):
    app.route("/answer/alone", '<Response><Conference stayAlone="false">Pair</Conference>'
                               "<Speak>Room over</Speak></Response>")
    t = stack.run({"duration": 8.0, "call": [caller("left", "alone", hangup_at=2.0),
                                              caller("stays", "alone", 0.3)]})
    assert t.ok, t.errors
    assert ("say", "Room over") in t.heard("stays")
    assert t.call_end("stays")["t"] < 6.0
    assert any(e.get("path", "").endswith(".json") for e in t.events(type="rest"))


def test_full_room_skips_conference_and_its_action(stack, app):
    app.route("/answer/full", f'<Response><Conference maxMembers="2" action="'
                              f'{app.url("/action/full")}">Tiny</Conference>'
                              "<Speak>Room was full</Speak></Response>")
    app.route("/action/full", "<Response/>")
    t = stack.run({"duration": 6.0, "call": [caller("f1", "full", hangup_at=3.0),
                                              caller("f2", "full", 0.2, hangup_at=3.0),
                                              caller("f3", "full", 0.8)]})
    assert t.ok, t.errors
    assert ("say", "Room was full") in t.heard("f3")
    assert ("say", "Room was full") not in t.heard("f1")
    assert app.count("/action/full") == 0


def test_enter_sound_url_is_announced_to_the_room(stack, app):
    app.route("/answer/sounds", f'<Response><Conference enterSound="{app.url("/chime")}">'
                                "Chimes</Conference></Response>")
    app.route("/chime", "<Response><Speak>Someone joined</Speak></Response>")
    t = stack.run({"duration": 6.0, "call": [caller("s1", "sounds", hangup_at=4.0),
                                              caller("s2", "sounds", 1.0, hangup_at=4.0)]})
    assert t.ok, t.errors
    assert any(kind == "announcement" for kind, _ in t.heard("s1"))
    assert app.count("/chime") >= 1
