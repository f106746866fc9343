"""<Start><Stream>: real WebSocket frames to a loopback server, as Twilio sends them."""

from __future__ import annotations

import base64
import re

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from gateway.sim import Simulator
from tests.sim.dtmf_probe import keys_in
from tests.sim.runs import Run, concurrently, scenario
from tests.sim.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeGateway,
    Received,
    StreamServer,
    call,
    simulate,
)


def start_stream(server: StreamServer, *, after: str = '<Pause length="2"/>',
                 **attrs: str) -> str:
    rendered = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return (f'<Start><Stream url="{server.url()}" {rendered}>'
            '<Parameter name="member" value="m-1"/><Parameter name="room" value="r 1"/>'
            f"</Stream></Start>{after}")


@concurrently
def test_stream_messages_have_twilios_shape(gateway: FakeGateway,
                                            stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server))
    transcript = yield scenario([call("alice", hangup_at=1.0)])
    (messages,) = stream_server.connections
    connected, start, *media, stop = messages
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    stream_sid = start["streamSid"]
    assert re.match(r"^MZ[0-9a-f]{32}$", stream_sid)
    call_sid = gateway.requests_to("/twilio/voice")[0].params["CallSid"]
    assert start["sequenceNumber"] == "1"
    assert start["start"] == {
        "accountSid": ACCOUNT_SID, "streamSid": stream_sid, "callSid": call_sid,
        "tracks": ["inbound"], "customParameters": {"member": "m-1", "room": "r 1"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
    assert len(media) >= 10  # 20 ms frames while the call lasts (less the connection time)
    for index, message in enumerate(media):
        assert message["event"] == "media" and message["streamSid"] == stream_sid
        assert message["sequenceNumber"] == str(index + 2)
        assert message["media"]["track"] == "inbound"
        assert message["media"]["chunk"] == str(index + 1)
        assert message["media"]["timestamp"] == str(index * 20)
        assert len(base64.b64decode(message["media"]["payload"])) == 160
    assert stop == {"event": "stop", "sequenceNumber": str(len(messages) - 1),
                    "streamSid": stream_sid,
                    "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}}
    assert transcript.ok


@concurrently
def test_stream_handshake_is_signed(gateway: FakeGateway, stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server))
    yield scenario([call("alice", hangup_at=0.8)])
    (headers,) = stream_server.handshake_headers
    assert RequestValidator(AUTH_TOKEN).validate(stream_server.url(), {},
                                                 headers["X-Twilio-Signature"])


@concurrently
def test_start_does_not_block_the_next_verb(gateway: FakeGateway,
                                            stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server, after="<Say>Next</Say>"))
    transcript = yield scenario([call("alice", hangup_at=2.0)])
    assert transcript.heard("alice") == [("say", "Next")]
    assert transcript.call_end("alice")["reason"] == "no more TwiML"  # not held by the stream


@concurrently
def test_dtmf_tones_in_stream_are_decodable(gateway: FakeGateway,
                                            stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server, after='<Pause length="3"/>'))
    yield scenario([call("alice", hangup_at=2.4, keys=[{"at": 1.0, "digits": "19#"},
                                                       {"at": 1.6, "digits": "*0"}],
                         speech=[{"from": 1.6, "to": 2.2}])])
    (messages,) = stream_server.connections
    payloads = [base64.b64decode(m["media"]["payload"]) for m in messages
                if m["event"] == "media"]
    assert keys_in(payloads) == "19#*0"


@concurrently
def test_both_tracks_send_inbound_and_outbound(gateway: FakeGateway,
                                               stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server, track="both_tracks"))
    yield scenario([call("alice", hangup_at=1.0)])
    (messages,) = stream_server.connections
    assert messages[1]["start"]["tracks"] == ["inbound", "outbound"]
    tracks = {m["media"]["track"] for m in messages if m["event"] == "media"}
    assert tracks == {"inbound", "outbound"}


@concurrently
def test_stop_stream_ends_it_by_name(gateway: FakeGateway, stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server, name="fork",
                                                after='<Pause length="1"/>'
                                                '<Stop><Stream name="fork"/></Stop>'
                                                '<Pause length="1"/>'))
    transcript = yield scenario([call("alice", hangup_at=2.5)])
    (messages,) = stream_server.connections
    assert messages[-1]["event"] == "stop"
    (stopped,) = transcript.events(type="stream", event="stopped")
    assert stopped["t"] < transcript.call_end("alice")["t"] - 0.5  # by <Stop>, not the hang-up
    media = [m for m in messages if m["event"] == "media"]
    assert 10 <= len(media) <= 75  # about one second of frames, not two


@concurrently
def test_stream_status_callback(gateway: FakeGateway, stream_server: StreamServer) -> Run:
    gateway.twiml("/twilio/voice", start_stream(stream_server, name="fork",
                                                statusCallback="/stream-status"))
    yield scenario([call("alice", hangup_at=1.0)])
    started, stopped = (r.params for r in gateway.requests_to("/stream-status"))
    assert (started["StreamEvent"], stopped["StreamEvent"]) == ("stream-started",
                                                                "stream-stopped")
    assert started["StreamName"] == "fork" and started["StreamSid"].startswith("MZ")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", started["Timestamp"])


def test_stream_closing_early_is_reported_not_fatal(gateway: FakeGateway) -> None:
    closing = StreamServer(close_after=5)
    try:
        gateway.twiml("/twilio/voice", start_stream(closing, after='<Pause length="1"/>'
                                                    "<Say>Still here</Say>"))
        transcript = simulate(gateway, [call("alice", hangup_at=3.0)])
    finally:
        closing.close()
    (early,) = transcript.events(type="stream", event="closed-early")
    assert early["call"] == "alice"
    assert transcript.events(type="warning", code=31921)
    assert transcript.ok
    assert ("say", "Still here") in transcript.heard("alice")


@concurrently
def test_stream_server_down_is_an_error_and_the_call_goes_on(gateway: FakeGateway) -> Run:
    down = StreamServer()
    url = down.url()
    down.close()
    gateway.twiml("/twilio/voice", f'<Start><Stream url="{url}"/></Start><Say>Hello</Say>')
    transcript = yield scenario([call("alice", hangup_at=2.0)])
    (error,) = transcript.errors
    assert (error["code"], error["kind"]) == (31920, "stream")
    assert transcript.heard("alice") == [("say", "Hello")]


@concurrently
def test_rest_stops_a_stream_by_name(gateway: FakeGateway, stream_server: StreamServer) -> Run:
    api: dict[str, Client] = {}

    def stop_it(received: Received) -> str:
        if received.params["StreamEvent"] == "stream-started":
            api["client"].calls(received.params["CallSid"]).streams("fork").update(
                status="stopped")
        return ""
    gateway.routes["/stream-status"] = stop_it
    gateway.twiml("/twilio/voice", start_stream(stream_server, name="fork",
                                                statusCallback="/stream-status"))

    def attach(sim: Simulator) -> None:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = sim.api_base_url
        api["client"] = client
    transcript = yield scenario([call("alice", hangup_at=2.0)], before=attach)
    (stopped,) = transcript.events(type="stream", event="stopped")
    assert stopped["t"] < transcript.call_end("alice")["t"] - 0.5
    assert [m["event"] for m in stream_server.connections[0]][-1] == "stop"
    (rest,) = transcript.events(type="rest")
    assert rest["status"] == 200 and rest["path"].endswith("/Streams/fork.json")
