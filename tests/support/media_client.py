"""Twilio's side of a side stream, for tests and benchmarks: a member in a room, and its stream.

`admit(gateway, call_sid)` does what Twilio does before a stream carries keys: the voice webhook
(the gateway answers with `<Start><Stream>` + `<Dial><Conference>`), then the conference's
participant-join event. `TwilioStream` speaks the Media Streams protocol over a real WebSocket
(signed handshake, connected/start/media/stop, `dtmf`), with the caller's audio rendered by the
simulator's `CallerAudio` (keys as in-band tones).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gateway.sim.audio import FRAME_SAMPLES, CallerAudio, key_tones
from tests.support.gateway_server import ACCOUNT_SID, AUTH_TOKEN, GatewayServer, twilio_call_params

FRAME_MS = 20


@dataclass(frozen=True)
class Admitted:
    call_sid: str
    label: str
    url: str
    parameters: dict[str, str]
    conference_sid: str


def admit(gateway: GatewayServer, *, call_sid: str | None = None, conference_sid: str = "",
          join: bool = True, to: str | None = None) -> Admitted:
    """The voice webhook (TwiML with the side stream), then Twilio's participant-join."""
    call_sid = call_sid or "CA" + uuid.uuid4().hex
    params = twilio_call_params(call_sid=call_sid, **({"to": to} if to else {}))
    response = gateway.signed_post("/twilio/voice", params)
    tree = etree.fromstring(response.content)
    stream = tree.find("Start/Stream")
    assert stream is not None, response.text
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    admitted = Admitted(call_sid, parameters["member"], stream.get("url"), parameters,
                        conference_sid or "CF" + uuid.uuid4().hex)
    if join:
        conference_event(gateway, admitted, "participant-join", 1)
    return admitted


def conference_event(gateway: GatewayServer, member: Admitted, event: str, sequence: int,
                     **extra: str) -> None:
    response = gateway.signed_post("/twilio/conference/events", {
        "ConferenceSid": member.conference_sid, "FriendlyName": "room", "AccountSid": ACCOUNT_SID,
        "SequenceNumber": str(sequence), "Timestamp": "Mon, 30 Nov 2026 20:00:00 +0000",
        "StatusCallbackEvent": event, "CallSid": member.call_sid, "Muted": "false",
        "Hold": "false", "Coaching": "false", "EndConferenceOnExit": "false",
        "StartConferenceOnEnter": "true", "ParticipantLabel": member.label, **extra})
    assert response.status_code == 204, response.text


def raw_websocket(url: str, headers: dict[str, str]) -> socket.socket:
    """A WebSocket opened by hand (handshake only): a client that then does what it likes, such
    as never reading. Frames it sends are masked with a fixed key (servers do not check)."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    request = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}",
               "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
               "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert b" 101 " in response.split(b"\r\n", 1)[0], response
    return sock


def masked_text(message: dict) -> bytes:
    data = json.dumps(message).encode()
    mask = b"\x11\x22\x33\x44"
    length = len(data)
    header = bytes((0x81, 0x80 | length)) if length < 126 else (
        bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big"))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def signature(url: str) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(url, {})


class TwilioStream:
    """One `<Start><Stream>` as Twilio runs it; `keys` are (seconds, digits) of the caller."""

    def __init__(self, url: str, member: Admitted | None, *, keys=(), seed: int = 0,
                 headers: dict[str, str] | None = None):
        self.url = url
        self.member = member
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.audio = CallerAudio(key_tones(list(keys)), [], seed=seed)
        self.headers = {"X-Twilio-Signature": signature(url)} if headers is None else headers
        self.sequence = 0
        self.chunk = 0
        self.socket: ClientConnection | None = None
        self.closed_by_server = False

    def connect(self) -> TwilioStream:
        self.socket = connect(self.url, additional_headers=self.headers, open_timeout=5,
                              close_timeout=2, user_agent_header="Twilio.TmeWs/1.0",
                              legacy=True)
        return self

    def send(self, message: dict | str | bytes) -> None:
        """Send one message; once the server has closed the socket, Twilio sends no more."""
        assert self.socket is not None
        try:
            self.socket.send(message if isinstance(message, str | bytes) else json.dumps(message))
        except ConnectionClosed:
            self.closed_by_server = True

    def _next(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    def start(self, *, parameters: dict[str, str] | None = None, call_sid: str | None = None,
              media_format: dict | None = None, tracks=("inbound",)) -> None:
        member = self.member
        self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self.send({"event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                   "start": {
                       "accountSid": ACCOUNT_SID, "streamSid": self.stream_sid,
                       "callSid": call_sid or (member.call_sid if member else "CA0"),
                       "tracks": list(tracks),
                       "customParameters": parameters if parameters is not None else (
                           dict(member.parameters) if member else {}),
                       "mediaFormat": media_format or {"encoding": "audio/x-mulaw",
                                                       "sampleRate": 8000, "channels": 1}}})

    def media(self, *, chunk: int | None = None, payload: str | None = None) -> None:
        """The next 20 ms frame (or a chosen chunk number / payload)."""
        self.chunk = chunk if chunk is not None else self.chunk + 1
        frame = self.audio.frame((self.chunk - 1) * FRAME_SAMPLES)
        self.send({"event": "media", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                   "media": {"track": "inbound", "chunk": str(self.chunk),
                             "timestamp": str((self.chunk - 1) * FRAME_MS),
                             "payload": payload if payload is not None
                             else base64.b64encode(frame).decode()}})

    def play(self, seconds: float, *, speed: float = 10.0, skip: set[int] = frozenset()) -> None:
        """`seconds` of audio, `speed` times faster than real time (chunks in `skip` are lost)."""
        frames = round(seconds * 1000 / FRAME_MS)
        for _ in range(frames):
            if self.chunk + 1 in skip:
                self.chunk += 1
                continue
            self.media()
            if self.chunk % 10 == 0:
                time.sleep(10 * FRAME_MS / 1000 / speed)

    def dtmf(self, digit: str) -> None:
        self.send({"event": "dtmf", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                   "dtmf": {"track": "inbound_track", "digit": digit}})

    def stop(self) -> None:
        self.send({"event": "stop", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                   "stop": {"accountSid": ACCOUNT_SID,
                            "callSid": self.member.call_sid if self.member else "CA0"}})

    def close_code(self, timeout: float = 5.0) -> int | None:
        """Wait for the server to close; its close code."""
        assert self.socket is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.socket.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            except Exception:
                break
        rcvd = self.socket.protocol.close_rcvd
        return rcvd.code if rcvd else None

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
