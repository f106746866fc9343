"""`<Start><Stream>`: a WebSocket client per stream, sending what Twilio sends, in real time.

Messages (https://www.twilio.com/docs/voice/media-streams/websocket-messages): `connected`
{protocol "Call", version "1.0.0"}; `start` {streamSid, accountSid, callSid, tracks,
customParameters, mediaFormat audio/x-mulaw 8000 Hz mono}; one `media` message per track every
20 ms {track, chunk from "1", timestamp in ms since the stream started, payload = 160 bytes of
µ-law in base64}, sequenceNumber/chunk/timestamp as JSON strings; and `stop` {accountSid,
callSid}; with the scenario's `stream_keys = "messages"`, a `dtmf` message {track
"inbound_track", digit} per key when its tone ends (Twilio documents these for bidirectional
streams only). The handshake carries X-Twilio-Signature over the stream URL. Twilio only connects to
wss://; the simulator also accepts ws:// so that tests on loopback need no TLS. A far end that
closes early is reported (a warning), not fatal to the call.

`<Connect><Stream>` is bidirectional (https://www.twilio.com/docs/voice/media-streams/
websocket-messages, "Send messages to Twilio"): the server's `media` payloads (8 kHz µ-law, base64)
are queued and played to the caller in real time, 160 bytes a frame; a `mark` is queued behind
them and sent back when the audio before it has played; `clear` empties the queue and sends back
every mark in it at once. The server closing the socket ends the `<Connect>` (the documented
way to end it: not a warning). The transcript's `played` event counts what the caller heard.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from .audio import FRAME_SAMPLES, RATE, CallerAudio, Tone
from .ids import iso8601
from .transcript import Transcript

FRAME_SECONDS = FRAME_SAMPLES / RATE
SILENCE = b"\xff" * FRAME_SAMPLES  # µ-law zero: what the outbound track carries here
MAX_LAG = 0.5  # seconds behind schedule before frames are skipped, as on a lossy network


@dataclass(frozen=True)
class StreamConfig:
    url: str
    stream_sid: str
    name: str | None
    account_sid: str
    call_sid: str
    call_name: str
    tracks: tuple[str, ...]
    parameters: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    bidirectional: bool = False


class MediaStream:
    """One stream's thread. `report(event, detail)` tells the engine: started, stopped,
    failed (never connected), closed (the far end hung up the socket)."""

    def __init__(self, config: StreamConfig, audio: CallerAudio, run_t0: float,
                 clock: Callable[[], float], transcript: Transcript,
                 report: Callable[[str, str], None], dtmf: tuple[Tone, ...] = ()):
        self.config = config
        self._dtmf = sorted(dtmf, key=lambda tone: tone.end)  # keys sent as `dtmf` messages
        self._audio = audio
        self._run_t0 = run_t0
        self._clock = clock
        self._transcript = transcript
        self._report = report
        self._stop = threading.Event()
        self._sequence = 0
        self.frames_sent = 0
        self._playback: list[bytes | str] = []  # bidirectional: queued audio and mark names
        self.played_bytes = 0
        self.marks_sent: list[str] = []
        self.cleared = 0
        self._warned_invalid = False  # 31951 is "sent once per stream"
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"sim-stream-{config.stream_sid[:10]}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @staticmethod
    def timestamp() -> str:
        return iso8601()

    def _record(self, event: str, **fields: object) -> None:
        self._transcript.record("stream", call=self.config.call_name,
                                stream_sid=self.config.stream_sid, event=event, **fields)

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def _run(self) -> None:
        config = self.config
        self._record("connecting", url=config.url)
        try:
            socket = connect(config.url, open_timeout=5, close_timeout=2,
                             additional_headers={"X-Twilio-Signature": config.signature},
                             user_agent_header="Twilio.TmeWs/1.0")
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            self._record("failed", reason=str(exc) or type(exc).__name__)
            self._report("failed", str(exc) or type(exc).__name__)
            return
        try:
            with socket:
                self._converse(socket)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            if config.bidirectional and code in (1000, 1001):
                # A server ends <Connect><Stream> by closing the socket: the call goes on.
                self._record("closed-by-server", frames=self.frames_sent, code=code,
                             **self._played())
                self._report("closed", f"closed by the server (code {code})")
                return
            reason = f"closed by the far end (code {code if code is not None else 'none'})"
            self._record("closed-early", reason=reason, frames=self.frames_sent)
            self._transcript.record("warning", call=config.call_name, code=31921,
                                    reason=f"stream {config.stream_sid}: {reason}")
            self._report("closed", reason)
            return
        except OSError as exc:
            self._record("closed-early", reason=str(exc), frames=self.frames_sent)
            self._report("closed", str(exc))
            return
        self._record("stopped", frames=self.frames_sent,
                     **(self._played() if config.bidirectional else {}))
        self._report("stopped", "")

    def _played(self) -> dict:
        return {"played_bytes": self.played_bytes, "marks": list(self.marks_sent),
                "cleared": self.cleared}

    def _converse(self, socket: ClientConnection) -> None:
        config = self.config
        socket.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        socket.send(json.dumps({
            "event": "start",
            "sequenceNumber": self._next(),
            "start": {
                "accountSid": config.account_sid,
                "streamSid": config.stream_sid,
                "callSid": config.call_sid,
                "tracks": list(config.tracks),
                "customParameters": dict(config.parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
            },
            "streamSid": config.stream_sid,
        }))
        self._record("started", tracks=list(config.tracks),
                     custom_parameters=dict(config.parameters))
        self._report("started", "")
        began = self._clock()
        frame = 0
        while not self._stop.wait(max(0.0, began + frame * FRAME_SECONDS - self._clock())):
            lag = self._clock() - (began + frame * FRAME_SECONDS)
            if lag > MAX_LAG:
                frame += int(lag / FRAME_SECONDS)  # skipped frames: timestamps jump, as on loss
            first_sample = round((began + frame * FRAME_SECONDS - self._run_t0) * RATE)
            for track in config.tracks:
                audio = self._audio.frame(first_sample) if track == "inbound" else SILENCE
                socket.send(json.dumps({
                    "event": "media",
                    "sequenceNumber": self._next(),
                    "media": {"track": track, "chunk": str(frame + 1),
                              "timestamp": str(frame * 20),
                              "payload": base64.b64encode(audio).decode("ascii")},
                    "streamSid": config.stream_sid,
                }))
            frame_end = (began + (frame + 1) * FRAME_SECONDS - self._run_t0)
            while self._dtmf and self._dtmf[0].end <= frame_end:
                socket.send(json.dumps({
                    "event": "dtmf", "streamSid": config.stream_sid,
                    "sequenceNumber": self._next(),
                    "dtmf": {"track": "inbound_track", "digit": self._dtmf.pop(0).key}}))
            self.frames_sent += 1
            frame += 1
            if config.bidirectional:
                self._receive(socket)
                self._play_frame(socket)
            elif frame % 25 == 0:
                self._drain(socket)
        socket.send(json.dumps({
            "event": "stop",
            "sequenceNumber": self._next(),
            "streamSid": config.stream_sid,
            "stop": {"accountSid": config.account_sid, "callSid": config.call_sid},
        }))

    def _receive(self, socket: ClientConnection) -> None:
        """What the server sent since the last frame: media, mark, clear (bad ones warned)."""
        while True:
            try:
                raw = socket.recv(timeout=0)
            except TimeoutError:
                return
            try:
                message = json.loads(raw)
                event = message["event"]
                if message.get("streamSid") != self.config.stream_sid:
                    raise ValueError("streamSid is not this stream's")
                if event == "media":
                    self._playback.append(base64.b64decode(message["media"]["payload"],
                                                           validate=True))
                elif event == "mark":
                    self._playback.append(str(message["mark"]["name"]))
                elif event == "clear":
                    self.cleared += 1
                    marks = [item for item in self._playback if isinstance(item, str)]
                    self._playback.clear()
                    for name in marks:
                        self._send_mark(socket, name)
                else:
                    raise ValueError(f"unknown event {event!r}")
            except (ValueError, KeyError, TypeError) as exc:
                if not self._warned_invalid:
                    self._warned_invalid = True
                    self._transcript.record("warning", call=self.config.call_name, code=31951,
                                            reason=f"stream {self.config.stream_sid}: a message "
                                            f"from the server was refused: {exc}")

    def _play_frame(self, socket: ClientConnection) -> None:
        """One frame's worth (160 bytes) of queued audio is heard; marks behind it come back."""
        budget = FRAME_SAMPLES
        while self._playback:
            head = self._playback[0]
            if isinstance(head, str):
                self._playback.pop(0)
                self._send_mark(socket, head)
                continue
            if budget == 0:
                return
            taken = head[:budget]
            budget -= len(taken)
            self.played_bytes += len(taken)
            if len(taken) == len(head):
                self._playback.pop(0)
            else:
                self._playback[0] = head[len(taken):]

    def _send_mark(self, socket: ClientConnection, name: str) -> None:
        self.marks_sent.append(name)
        socket.send(json.dumps({"event": "mark", "sequenceNumber": self._next(),
                                "streamSid": self.config.stream_sid, "mark": {"name": name}}))

    @staticmethod
    def _drain(socket: ClientConnection) -> None:
        """Discard anything the server sent (a unidirectional stream ignores it)."""
        while True:
            try:
                socket.recv(timeout=0)
            except TimeoutError:
                return
