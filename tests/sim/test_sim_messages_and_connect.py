"""The simulator's Messages resource and its `<Connect><Stream>`, each rule as docs/simulator.md
states it (Twilio's message resource and status callbacks; bidirectional Media Streams)."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from websockets.sync.server import ServerConnection, serve

from gateway.sim import Simulator
from gateway.sim.errors import TwimlError
from gateway.sim.twiml import Connect, parse_twiml
from tests.sim.support import ACCOUNT_SID, AUTH_TOKEN, NUMBER, FakeGateway, simulate

SENDER = "+14155550199"


def client_for(sim: Simulator) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = sim.api_base_url
    return client


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_message_is_created_listed_fetched_and_reported_queued_sent_delivered(
        gateway: FakeGateway):
    with Simulator(gateway.base, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as sim:
        twilio = client_for(sim)
        created = twilio.messages.create(from_=SENDER, to="+14155550123", body="Hello",
                                         status_callback=gateway.url("/sms"))
        assert (created.status, created.sid[:2], created.num_segments) == ("queued", "SM", "1")
        assert [m.sid for m in twilio.messages.list()] == [created.sid]
        wait_until(lambda: len(gateway.requests_to("/sms")) == 3)
        reports = gateway.requests_to("/sms")
        assert [r.params["MessageStatus"] for r in reports] == ["queued", "sent", "delivered"]
        assert all(r.signature_ok and r.params["MessageSid"] == created.sid for r in reports)
        assert twilio.messages(created.sid).fetch().status == "delivered"


@pytest.mark.parametrize(("to", "body", "code"), [
    ("+14155550123", "x" * 1601, 21617),
    ("+15005550009", "hi", 21614),
    ("+15005550001", "hi", 21211),
    ("14155550123", "hi", 21211),
])
def test_a_message_twilio_would_refuse_is_a_400_with_twilios_code(gateway, to, body, code):
    with Simulator(gateway.base, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as sim:
        twilio = client_for(sim)
        with pytest.raises(TwilioRestException) as refused:
            twilio.messages.create(from_=SENDER, to=to, body=body)
        assert (refused.value.status, refused.value.code) == (400, code)
        assert twilio.messages.list() == []


@pytest.mark.parametrize(("twiml", "code"), [
    ('<Connect><Stream url="wss://a.example/s" track="both_tracks"/></Connect>', 31900),
    ("<Connect><Room>r</Room></Connect>", 12100),
    ("<Connect/>", 12100),
])
def test_connect_takes_one_inbound_stream(twiml, code):
    with pytest.raises(TwimlError) as refused:
        parse_twiml(f"<Response>{twiml}</Response>", "http://gw/voice")
    assert refused.value.code == code


def test_connect_parses_its_action():
    document = parse_twiml('<Response><Connect action="http://gw/next"><Stream url="wss://a.'
                           'example/s"/></Connect></Response>', "http://gw/voice")
    (connect,) = document.verbs
    assert isinstance(connect, Connect) and connect.action == "http://gw/next"


class Speaker:
    """A bidirectional stream server: on `start` it sends 10 frames of audio, a mark, 10 more
    frames and a second mark; when both marks are back it closes the socket (1000)."""

    def __init__(self) -> None:
        self.marks: list[str] = []
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/s"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handle(self, socket: ServerConnection) -> None:
        stream_sid = ""
        for raw in socket:
            message = json.loads(raw)
            if message["event"] == "start":
                stream_sid = message["streamSid"]
                audio = base64.b64encode(b"\x7f" * 1600).decode()
                for name in ("first", "second"):
                    socket.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                            "media": {"payload": audio}}))
                    socket.send(json.dumps({"event": "mark", "streamSid": stream_sid,
                                            "mark": {"name": name}}))
            elif message["event"] == "mark":
                self.marks.append(message["mark"]["name"])
                if len(self.marks) == 2:
                    socket.close(1000)
                    return

    def close(self) -> None:
        self._server.shutdown()


def test_connect_plays_the_servers_audio_returns_marks_in_order_then_runs_the_action(
        gateway: FakeGateway):
    speaker = Speaker()
    try:
        gateway.twiml("/twilio/voice", f'<Connect action="{gateway.url("/after")}"><Stream '
                                       f'url="{speaker.url}"/></Connect>')
        gateway.twiml("/after", "<Say>After</Say>")
        t = simulate(gateway, [{"name": "ana", "from": "+12025550111", "to": NUMBER}],
                     duration=5.0)
    finally:
        speaker.close()
    assert t.ok, t.errors
    assert speaker.marks == ["first", "second"]
    (closed,) = t.events(type="stream", event="closed-by-server")
    assert (closed["played_bytes"], closed["marks"]) == (3200, ["first", "second"])
    assert [d for _, d in t.heard("ana")] == ["After"]
    assert len(gateway.requests_to("/after")) == 1
