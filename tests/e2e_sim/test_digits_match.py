"""digitsMatch end to end: simulator (keys as tones in the caller's audio) <-> gateway <-> app.

The simulator runs the gateway's `<Start><Stream>` the way Twilio does (signed handshake,
customParameters, 20 ms µ-law frames in real time), the gateway's side-stream server hears the
keys, and the customer app gets Plivo's `ConferenceAction=digits` callbacks.
"""

from __future__ import annotations

import pytest

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.stack import Stack

NUMBERS = {"digits": "+14155550301", "plain": "+14155550302", "star": "+14155550303"}


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        cb = customer_app.url("/cb")
        customer_app.route("/answer/digits", f'<Response><Conference callbackUrl="{cb}" '
                           'digitsMatch="#0,99,000">MyRoom</Conference></Response>')
        customer_app.route("/answer/plain", f'<Response><Conference callbackUrl="{cb}">MyRoom'
                           "</Conference></Response>")
        customer_app.route("/answer/star", f'<Response><Conference callbackUrl="{cb}" '
                           'digitsMatch="99" hangupOnStar="true">StarRoom</Conference>'
                           "<Speak>Left with star</Speak></Response>")
        customer_app.route("/cb", body="")
        customer_app.route("/hangup", body="")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    apps = [app_config(app.url(f"/answer/{name}"), name=name, numbers=(number,),
                       hangup_url=app.url("/hangup")) for name, number in NUMBERS.items()]
    with Stack(tmp_path_factory.mktemp("digits"), apps=apps) as running:
        yield running


def caller(name: str, app_name: str, **extra) -> dict:
    return {"name": name, "from": f"+1202555{abs(hash(name)) % 10000:04d}",
            "to": NUMBERS[app_name], **extra}


def callbacks(app: CustomerApp, call_uuid: str) -> list[str]:
    out = []
    for r in app.requests_to("/cb"):
        if r.params.get("CallUUID") == call_uuid:
            assert r.signatures_valid
            action = r.params["ConferenceAction"]
            out.append(f"digits:{r.params['ConferenceDigitsMatch']}" if action == "digits"
                       else action)
    return out


def uuid_of(app: CustomerApp, app_name: str, index: int = -1) -> str:
    return app.requests_to(f"/answer/{app_name}")[index].params["CallUUID"]


def wait_for_exits(app: CustomerApp, uuids: list[str]) -> None:
    app.wait_for(lambda _: all("exit" in callbacks(app, u) for u in uuids), timeout=15)


def test_pressing_9_9_sends_one_digits_callback_between_enter_and_exit(stack, app):
    t = stack.run({"duration": 6.0, "call": [
        caller("heidi", "digits", hangup_at=4.0, keys=[{"at": 2.0, "digits": "99"}])]})
    assert t.ok, t.errors
    (started,) = t.events(type="stream", event="started")
    assert set(started["custom_parameters"]) == {"member", "token"}
    heidi = uuid_of(app, "digits")
    wait_for_exits(app, [heidi])
    assert callbacks(app, heidi) == ["enter", "digits:99", "exit"]


def test_keys_matching_nothing_send_nothing_and_members_keys_never_mix(stack, app):
    t = stack.run({"duration": 7.0, "call": [
        caller("ivan", "digits", hangup_at=5.0, keys=[{"at": 2.0, "digits": "9"},
                                                       {"at": 3.0, "digits": "123"}]),
        caller("judy", "digits", at=0.2, hangup_at=5.0, keys=[{"at": 2.1, "digits": "9"}])]})
    assert t.ok, t.errors
    ivan, judy = uuid_of(app, "digits", -2), uuid_of(app, "digits", -1)
    wait_for_exits(app, [ivan, judy])
    # each pressed one 9 at about the same time: together they would have made 99
    assert callbacks(app, ivan) == ["enter", "exit"]
    assert callbacks(app, judy) == ["enter", "exit"]


def test_a_member_without_digits_match_opens_no_stream(stack, app):
    t = stack.run({"duration": 5.0, "call": [
        caller("kim", "plain", hangup_at=3.0, keys=[{"at": 1.5, "digits": "99"}])]})
    assert t.ok, t.errors
    assert t.events(type="stream") == []
    kim = uuid_of(app, "plain")
    wait_for_exits(app, [kim])
    assert callbacks(app, kim) == ["enter", "exit"]


def test_hangup_on_star_still_leaves_the_room_and_stops_the_stream(stack, app):
    t = stack.run({"duration": 7.0, "call": [
        caller("leo", "star", hangup_at=6.0, keys=[{"at": 1.5, "digits": "99"},
                                                    {"at": 3.0, "digits": "*"}])]})
    assert t.ok, t.errors
    assert ("say", "Left with star") in t.heard("leo")
    (after_room,) = t.events(type="received", kind="action")
    assert after_room["body"].index("<Stop><Stream") < after_room["body"].index("<Say")
    (stopped,) = t.events(type="stream", event="stopped")
    assert stopped["t"] < t.call_end("leo")["t"] - 0.5  # by <Stop><Stream>, not the hang-up
    leo = uuid_of(app, "star")
    wait_for_exits(app, [leo])
    assert callbacks(app, leo) == ["enter", "digits:99", "exit"]


@pytest.mark.parametrize(("stream_keys", "expected"), [
    ("messages", ["enter", "digits:99", "exit"]),  # dtmf messages, should Twilio send them
    ("removed", ["enter", "exit"]),                # a fork without the tones hears nothing
])
def test_either_way_twilio_might_carry_keys_on_a_fork(stack, app, stream_keys, expected):
    t = stack.run({"duration": 6.0, "twilio": {"stream_keys": stream_keys}, "call": [
        caller(f"mo-{stream_keys}", "digits", hangup_at=4.0,
               keys=[{"at": 2.0, "digits": "99"}])]})
    assert t.ok, t.errors
    member = uuid_of(app, "digits")
    wait_for_exits(app, [member])
    assert callbacks(app, member) == expected
