"""`<Stream>` end to end: simulator (Twilio's Media Streams) <-> gateway relay <-> a Plivo app.

The app's WebSocket server speaks Plivo's stream protocol (`gateway.sim.plivo_stream_app`); the
simulator runs `<Start><Stream>` and `<Connect><Stream>` as Twilio does; the gateway's WebSocket
server relays between them. Status callbacks reach the customer app with Plivo's signatures,
checked by the plivo SDK's validators.
"""

from __future__ import annotations

import base64

import pytest

from gateway.sim.plivo_stream_app import PlivoStreamApp
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.plivo_signed import every_request_is_signed_as_plivo_signs  # noqa: F401
from tests.support.stack import Stack

NUMBER = "+14155550801"


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        customer_app.route("/status", body="")
        customer_app.route("/hangup", body="")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    apps = [app_config(app.url("/answer"), numbers=(NUMBER,), hangup_url=app.url("/hangup"))]
    with Stack(tmp_path_factory.mktemp("stream"), apps=apps) as running:
        yield running


def call(name: str, **extra) -> dict:
    return {"name": name, "from": "+12025550181", "to": NUMBER, **extra}


def statuses(app: CustomerApp, call_uuid: str) -> list[str]:
    out = []
    for request in app.requests_to("/status"):
        if request.params.get("CallUUID") == call_uuid:
            assert request.signatures_valid  # the plivo SDK's V2 and V3 validators
            out.append(request.params["Event"])
    return out


def answer_uuid(app: CustomerApp) -> str:
    return app.requests_to("/answer")[-1].params["CallUUID"]


def test_a_bidirectional_plivo_app_echoes_the_caller_and_the_document_goes_on(stack, app):
    with PlivoStreamApp(close_after=75, checkpoint_every=25) as echo:
        app.route("/answer", f'<Response><Speak>Connecting</Speak><Stream bidirectional="true" '
                             f'contentType="audio/x-l16;rate=16000" extraHeaders="agent=7" '
                             f'statusCallbackUrl="{app.url("/status")}">{echo.url}</Stream>'
                             "<Speak>After the stream</Speak></Response>")
        t = stack.run({"duration": 8.0, "call": [
            call("ana", keys=[{"at": 1.2, "digits": "7"}])]})
        uuid = answer_uuid(app)
        assert t.ok, t.errors
        assert [m["dtmf"]["digit"] for m in echo.events("dtmf")] == ["7"]
        start = echo.events("start")[0]
        assert start["start"]["callId"] == uuid
        assert start["start"]["mediaFormat"] == {"encoding": "audio/x-l16", "sampleRate": 16000}
        assert start["extra_headers"] == "agent=7"
        media = echo.events("media")
        assert len(media) >= 75
        # 20 ms of 16 kHz 16-bit PCM: the relay converted Twilio's 160 bytes of µ-law.
        assert len(base64.b64decode(media[0]["media"]["payload"])) == 640
        # Each checkpoint came back as playedStream once the audio before it had played (the
        # last may not have: the app closed right after sending it).
        played = [m["name"] for m in echo.events("playedStream")]
        assert played[:2] == ["echo-25", "echo-50"] and set(played) <= {
            "echo-25", "echo-50", "echo-75"}
        (closed,) = t.events(type="stream", event="closed-by-server")
        assert closed["played_bytes"] >= 60 * 160 and "echo-25" in closed["marks"]
        assert [d for _, d in t.heard("ana")] == ["Connecting", "After the stream"]
        app.wait_for(lambda _: statuses(app, uuid) == ["StartStream", "StopStream"], timeout=15)


def test_clear_audio_becomes_twilios_clear_and_is_answered_cleared_audio(stack, app):
    with PlivoStreamApp(close_after=60, checkpoint_every=1000, clear_after=10) as echo:
        app.route("/answer", f'<Response><Stream bidirectional="true" '
                             f'contentType="audio/x-mulaw;rate=8000">{echo.url}</Stream>'
                             "</Response>")
        t = stack.run({"duration": 6.0, "call": [call("ben")]})
        assert t.ok, t.errors
        assert len(echo.events("clearedAudio")) == 1
        (closed,) = t.events(type="stream", event="closed-by-server")
        assert closed["cleared"] == 1


def test_a_one_way_stream_the_app_refuses_leaves_the_call_going(stack, app):
    with PlivoStreamApp(refuse=True) as refusing:
        app.route("/answer", f'<Response><Stream statusCallbackUrl="{app.url("/status")}">'
                             f"{refusing.url}</Stream><Speak>Still here</Speak>"
                             "</Response>")
        t = stack.run({"duration": 6.0, "call": [call("cai")]})
        uuid = answer_uuid(app)
        assert t.ok, t.errors
        assert refusing.refused == 3  # Plivo tries twice more before it drops the stream
        assert [d for _, d in t.heard("cai")] == ["Still here"]
        app.wait_for(lambda _: statuses(app, uuid) == ["DroppedStream"], timeout=15)
        (dropped,) = [r for r in app.requests_to("/status")
                      if r.params.get("CallUUID") == uuid]
        assert "403" in dropped.params["Error"]


def test_a_bidirectional_app_that_drops_the_socket_lets_the_rest_of_the_document_run(stack, app):
    with PlivoStreamApp(drop_after=25) as dropping:
        app.route("/answer", f'<Response><Stream bidirectional="true" statusCallbackUrl='
                             f'"{app.url("/status")}">{dropping.url}</Stream>'
                             "<Speak>Sorry, the assistant is unavailable</Speak></Response>")
        t = stack.run({"duration": 7.0, "call": [call("dee")]})
        uuid = answer_uuid(app)
        assert t.ok, t.errors
        assert [d for _, d in t.heard("dee")] == ["Sorry, the assistant is unavailable"]
        app.wait_for(lambda _: statuses(app, uuid) == ["StartStream", "DroppedStream"],
                     timeout=15)
        assert "the app dropped the socket (closed with code 1011)" in stack.gateway.logs()


def test_a_stream_url_outside_allowed_hosts_is_refused_before_anything_plays(stack, app):
    app.route("/answer", '<Response><Speak>Hello</Speak>'
                         "<Stream>wss://stream.evil.example/s</Stream></Response>")
    t = stack.run({"duration": 5.0, "call": [call("eve")]})
    (failed,) = t.failed_calls
    assert failed["reason"] == "cannot-run; element=Stream; line=1"
    assert "Hello" not in [d for _, d in t.heard("eve")]
    assert "not in the mapping's allowed_hosts" in stack.gateway.logs()


def test_stream_timeout_stops_the_stream_and_the_call_goes_on(stack, app):
    with PlivoStreamApp(echo=False) as listening:
        app.route("/answer", f'<Response><Stream streamTimeout="1" statusCallbackUrl='
                             f'"{app.url("/status")}">{listening.url}</Stream>'
                             '<Wait length="3"/><Speak>Still on the line</Speak></Response>')
        t = stack.run({"duration": 7.0, "call": [call("fay")]})
        uuid = answer_uuid(app)
        assert t.ok, t.errors
        assert [d for k, d in t.heard("fay") if k == "say"] == ["Still on the line"]
        assert 20 <= len(listening.events("media")) <= 75  # about one second of 20 ms frames
        assert listening.events()[-1]["event"] == "stop"
        app.wait_for(lambda _: statuses(app, uuid) == ["StartStream", "StopStream"], timeout=15)
