"""The side-stream server, as Twilio reaches it: real WebSocket frames to `gateway serve`.

Each test admits a member to a room the way Twilio does (the voice webhook returns the
`<Start><Stream>`, then the participant-join event), opens the member's stream with Twilio's
messages, plays the caller's keys as in-band tones (or `dtmf` messages) and looks at what the
customer app receives: `ConferenceAction=digits` with `ConferenceDigitsMatch`.
"""

from __future__ import annotations

import socket
import time

import pytest

from gateway.app_side.params import call_uuid
from gateway.sim.audio import Tone
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, GatewayServer, app_config
from tests.support.media_client import (
    Admitted,
    TwilioStream,
    admit,
    conference_event,
    masked_text,
    raw_websocket,
    signature,
)

ROOM = ('<Response><Conference callbackUrl="{cb}" digitsMatch="#0,99,000">room</Conference>'
        "</Response>")


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        customer_app.route("/answer", ROOM.format(cb=customer_app.url("/cb")))
        customer_app.route("/cb", body="")
        yield customer_app


@pytest.fixture(scope="module")
def gateway(app, tmp_path_factory):
    with GatewayServer(tmp_path_factory.mktemp("media"),
                       apps=[app_config(app.url("/answer"))]) as running:
        yield running


def digits_of(app: CustomerApp, member: Admitted) -> list[str]:
    return [r.params["ConferenceDigitsMatch"] for r in app.requests_to("/cb")
            if r.params.get("ConferenceAction") == "digits"
            and r.params.get("CallUUID") == call_uuid(member.call_sid)]


def callbacks_of(app: CustomerApp, member: Admitted) -> list[str]:
    return [r.params["ConferenceAction"] for r in app.requests_to("/cb")
            if r.params.get("CallUUID") == call_uuid(member.call_sid)]


def wait_digits(app: CustomerApp, member: Admitted, count: int, timeout: float = 8.0) -> None:
    app.wait_for(lambda _: len(digits_of(app, member)) >= count, timeout=timeout)


def settle(seconds: float = 1.5) -> None:
    """Long enough for a callback that should not come (delivery takes well under a second)."""
    time.sleep(seconds)


def opened(gateway: GatewayServer, member: Admitted, **kwargs) -> TwilioStream:
    stream = TwilioStream(gateway.media_url, member, **kwargs).connect()
    stream.start()
    return stream


# -- what it is for ------------------------------------------------------------------------------
def test_pressing_9_9_sends_exactly_one_digits_callback(gateway, app):
    member = admit(gateway)
    assert member.url == gateway.media_url
    stream = opened(gateway, member, keys=[(0.3, "99")])
    stream.play(2.5)
    stream.stop()
    assert stream.close_code() == 1000
    wait_digits(app, member, 1)
    settle()
    assert digits_of(app, member) == ["99"]
    assert callbacks_of(app, member) == ["enter", "digits"]


def test_keys_that_match_nothing_send_nothing(gateway, app):
    member = admit(gateway)
    stream = opened(gateway, member, keys=[(0.3, "1234")])
    stream.play(3.0)
    stream.stop()
    settle()
    assert digits_of(app, member) == []


def test_two_members_keys_never_mix(gateway, app):
    alice, bob = admit(gateway), admit(gateway)
    a = opened(gateway, alice, keys=[(0.3, "9")], seed=1)
    b = opened(gateway, bob, keys=[(0.5, "9#0")], seed=2)
    for _ in range(150):  # interleaved, as one tick batches them
        a.media()
        b.media()
        if a.chunk % 10 == 0:
            time.sleep(0.02)
    a.stop()
    b.stop()
    wait_digits(app, bob, 1)
    settle()
    assert digits_of(app, alice) == []
    assert digits_of(app, bob) == ["#0"]


def test_a_dtmf_message_is_honoured(gateway, app):
    member = admit(gateway)
    stream = opened(gateway, member)
    stream.play(0.2)
    stream.dtmf("9")
    stream.play(0.2)
    stream.dtmf("9")
    stream.play(0.2)
    stream.stop()
    wait_digits(app, member, 1)
    assert digits_of(app, member) == ["99"]


def test_digits_come_between_enter_and_exit(gateway, app):
    member = admit(gateway)
    stream = opened(gateway, member, keys=[(0.3, "99"), (1.0, "99")])
    stream.play(0.8)
    wait_digits(app, member, 1)
    conference_event(gateway, member, "participant-leave", 2, ReasonParticipantLeft=
                     "participant_hung_up", ParticipantCallStatus="completed")
    app.wait_for(lambda _: "exit" in callbacks_of(app, member), timeout=8)
    stream.play(1.5)  # the second 9 9 comes after the member left: nothing more is acted on
    settle()
    assert callbacks_of(app, member) == ["enter", "digits", "exit"]
    assert stream.close_code() == 1000, str(gateway.media_health())  # the server let go


# -- who may stream ------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "c2lnbmF0dXJl"}],
                         ids=["no-signature", "wrong-signature"])
def test_an_unsigned_handshake_is_closed_as_a_policy_violation(gateway, app, headers):
    member = admit(gateway)
    stream = TwilioStream(gateway.media_url, member, keys=[(0.1, "99")], headers=headers)
    stream.connect()
    stream.start()
    stream.play(1.0)
    assert stream.close_code() == 1008
    settle(0.5)
    assert digits_of(app, member) == []


@pytest.mark.parametrize("change", ["no-token", "forged-token", "other-call", "media-first"])
def test_a_start_without_a_valid_token_is_closed_as_a_policy_violation(gateway, app, change):
    member, other = admit(gateway), admit(gateway)
    stream = TwilioStream(gateway.media_url, member, keys=[(0.1, "99")]).connect()
    if change == "no-token":
        stream.start(parameters={"member": member.label})
    elif change == "forged-token":
        stream.start(parameters={"member": member.label, "token": other.parameters["token"]})
    elif change == "other-call":
        stream.start(call_sid=other.call_sid)
    else:
        stream.media()
    stream.play(1.0)
    assert stream.close_code() == 1008
    settle(0.5)
    assert digits_of(app, member) == []


def test_a_stream_in_another_media_format_is_refused(gateway, app):
    member = admit(gateway)
    stream = TwilioStream(gateway.media_url, member).connect()
    stream.start(media_format={"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1})
    assert stream.close_code() == 1003


def test_a_stream_for_a_member_that_already_left_is_let_go(gateway, app):
    member = admit(gateway)
    conference_event(gateway, member, "participant-leave", 2,
                     ReasonParticipantLeft="participant_updated_via_api")
    stream = opened(gateway, member, keys=[(0.1, "99")])
    stream.play(1.0)
    assert stream.close_code() == 1000
    settle(0.5)
    assert digits_of(app, member) == []


# -- bad input -----------------------------------------------------------------------------------
def test_malformed_messages_are_skipped_and_the_keys_still_heard(gateway, app):
    member = admit(gateway)
    stream = opened(gateway, member, keys=[(1.0, "99")])
    stream.play(0.4)
    for junk in ("{not json", "[1, 2]", b"\x00\x01binary", '{"event": "mark"}',
                 '{"event": "media", "media": "nope"}'):
        stream.send(junk)
    stream.media(payload="!!not base64!!")   # unreadable frame: counted as missing audio
    stream.play(2.0)
    stream.stop()
    wait_digits(app, member, 1)
    settle()
    assert digits_of(app, member) == ["99"]
    health = gateway.media_health()
    assert health["bad_messages"] >= 3 and health["bad_frames"] >= 1
    assert health["unknown_events"] >= 1 and health["gaps"] >= 1


def test_a_gap_inside_a_key_never_makes_it_two(gateway, app):
    member = admit(gateway)
    # One long 9 (three tones back to back would be "999"; a single press held 300 ms):
    stream = TwilioStream(gateway.media_url, member).connect()
    stream.audio.tones.append(Tone("9", 0.5, 0.8))
    stream.start()
    stream.play(2.5, skip={31, 32, 33})  # 60 ms lost in the middle of the press
    stream.stop()
    settle(2.0)
    assert digits_of(app, member) == []  # one 9, never 9 9


def test_frames_from_the_past_are_dropped(gateway, app):
    member = admit(gateway)
    stream = opened(gateway, member, keys=[(0.3, "99")])
    stream.play(0.2)
    before = gateway.media_health().get("stale_frames", 0)
    stream.media(chunk=3)  # a replay of an old chunk
    stream.chunk = 10
    stream.play(2.5)
    stream.stop()
    wait_digits(app, member, 1)
    assert digits_of(app, member) == ["99"]
    assert gateway.media_health()["stale_frames"] == before + 1


def test_ten_thousand_keys_in_a_burst_touch_no_other_stream(gateway, app):
    flood, calm = admit(gateway), admit(gateway)
    noisy = opened(gateway, flood)
    quiet = opened(gateway, calm, keys=[(0.5, "99")])
    for _ in range(10_000):
        noisy.dtmf("9")
    quiet.play(2.5)
    quiet.stop()
    wait_digits(app, calm, 1)
    assert digits_of(app, calm) == ["99"]
    settle()
    assert len(digits_of(app, flood)) <= 20  # cut by the key budget (15 keys/s)
    assert gateway.media_health()["keys_dropped"] >= 9_000
    noisy.close()


def test_a_client_that_drops_mid_stream_leaves_the_others_alone(gateway, app):
    gone, staying = admit(gateway), admit(gateway)
    dropping = opened(gateway, gone, keys=[(0.2, "9")])
    dropping.play(0.5)
    dropping.socket.socket.close()  # TCP gone, no close frame
    stream = opened(gateway, staying, keys=[(0.3, "000")])
    stream.play(2.5)
    stream.stop()
    wait_digits(app, staying, 1)
    assert digits_of(app, staying) == ["000"]
    assert gateway.media_health()["status"] == "ok"


def test_a_client_that_stops_reading_is_let_go_and_touches_no_other_stream(gateway, app):
    mute, member = admit(gateway), admit(gateway)
    stuck = raw_websocket(gateway.media_url, {"X-Twilio-Signature": signature(gateway.media_url)})
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and it never reads
    stuck.sendall(masked_text({"event": "start", "streamSid": "MZ1", "start": {
        "callSid": mute.call_sid, "tracks": ["inbound"],
        "customParameters": {"member": mute.label, "token": "forged"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
    stream = opened(gateway, member, keys=[(0.3, "99")])
    stream.play(2.5)
    stream.stop()
    wait_digits(app, member, 1)
    assert digits_of(app, member) == ["99"]
    # The server closed it (1008) and, with no closing handshake back, dropped the connection.
    stuck.settimeout(5)
    received = b""
    while chunk := stuck.recv(4096):
        received += chunk
    assert received[0] == 0x88  # a close frame (FIN + opcode 8), then the end of the stream
    assert int.from_bytes(received[2:4], "big") == 1008
    stuck.close()
