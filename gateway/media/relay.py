"""The stream relay: Twilio Media Streams on one side, the app's Plivo-protocol server on the other.

A Plivo `<Stream>` becomes a Twilio stream to the gateway's WebSocket server (same process, port
and URL as the side streams; `gateway.translate.stream`), whose `start` carries the relay's
settings and their HMAC token. The relay checks them, opens the app's `wss://` URL (its host must
pass the mapping's allowed_hosts, DNS included) and translates every message both ways:

    Twilio -> app                          app -> Twilio (bidirectional only, as on Plivo)
    start  -> start {callId, streamId,     playAudio  -> media (audio converted to 8 kHz µ-law)
              accountId, tracks,           checkpoint -> mark {name}
              mediaFormat}, extra_headers  clearAudio -> clear, answered with clearedAudio
    media  -> media (audio converted to    sendDTMF   -> nothing: Twilio's streams cannot send
              the app's contentType)                     keys (counted and logged)
    dtmf   -> dtmf {digit}
    mark   -> playedStream {name}  (a mark cleared before it played is not one: Plivo sends
                                    playedStream only for audio that was played)
    stop   -> stop {streamId}, then the app's socket is closed

A refused connection is tried twice more (Plivo does so). Plivo's `statusCallbackUrl` gets
`StartStream`, `StopStream` (stopped, or streamTimeout reached)
and `DroppedStream` (the app refused or dropped the socket) through the durable, ordered delivery
outbox, signed as Plivo signs. When the app refuses or drops the socket the relay closes Twilio's
side: a one-way stream ends and the call goes on; a bidirectional one (`<Connect>`) ends and Twilio
asks the gateway for the rest of the document, as Plivo runs the elements after a stream that
disconnects. Either way one log line says why.

Audio: Twilio's is 8 kHz µ-law; Plivo's `audio/x-l16` is 16-bit signed little-endian PCM at 8 or
16 kHz (16 kHz: linear interpolation up, pairs averaged down).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from ..app_side.hosts import HostNotAllowed, HostUnresolvable, address_allowed, check_url
from .tokens import token_valid
from .ulaw import ulaw_decode, ulaw_encode

log = logging.getLogger("gateway.media.relay")

RELAY_PREFIX = "relay"          # customParameters relay0, relay1, ... and relay_token
CONNECT_TIMEOUT = 5.0           # seconds the app's server may take to accept the socket
CONNECT_ATTEMPTS = 3            # Plivo tries twice more before it drops the stream
RETRY_PAUSE = 0.5               # seconds between attempts (Plivo does not say)
MAX_APP_MESSAGE = 2 ** 20       # a playAudio may carry seconds of audio
POLICY_VIOLATION = 1008


class RelayRefused(Exception):
    """The `start` is not a relay the gateway signed: close with 1008, relay nothing."""


def is_relay(parameters: object) -> bool:
    return isinstance(parameters, dict) and f"{RELAY_PREFIX}_token" in parameters


def relay_settings(key: bytes, parameters: dict, call_sid: str | None) -> dict:
    """The settings the translation signed, checked; RelayRefused otherwise."""
    pieces = []
    while f"{RELAY_PREFIX}{len(pieces)}" in parameters:
        pieces.append(str(parameters[f"{RELAY_PREFIX}{len(pieces)}"]))
    text = "".join(pieces)
    if not text or not token_valid(key, text, str(parameters.get(f"{RELAY_PREFIX}_token"))):
        raise RelayRefused("no valid relay token")
    try:
        settings = json.loads(text)
    except ValueError:
        raise RelayRefused("relay settings are not JSON") from None
    if not isinstance(settings, dict) or settings.get("callSid") != call_sid:
        raise RelayRefused("relay token is for another call")
    return settings


# -- audio -------------------------------------------------------------------------------------
def to_app_audio(ulaw: bytes, content_type: str) -> bytes:
    """Twilio's 8 kHz µ-law -> the app's contentType."""
    if content_type.startswith("audio/x-mulaw"):
        return ulaw
    samples = ulaw_decode(ulaw)
    if content_type.endswith("rate=16000") and len(samples):
        positions = np.arange(2 * len(samples)) / 2.0
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.round(samples).astype("<i2").tobytes()


def from_app_audio(payload: bytes, content_type: str, sample_rate: int) -> bytes:
    """The app's playAudio -> 8 kHz µ-law for Twilio."""
    if content_type.startswith("audio/x-mulaw"):
        return payload
    samples = np.frombuffer(payload[: len(payload) // 2 * 2], dtype="<i2").astype(np.float64)
    if sample_rate == 16000:
        samples = samples[: len(samples) // 2 * 2].reshape(-1, 2).mean(axis=1)
    return ulaw_encode(samples)


# -- one relayed stream ----------------------------------------------------------------------------
@dataclass
class RelayedStream:
    settings: dict
    twilio: ServerConnection
    stream_sid: str
    app: ClientConnection | None = None
    sequence: int = 0
    marks_pending: set[str] = field(default_factory=set)
    marks_cleared: set[str] = field(default_factory=set)
    ended_by: str = ""              # "twilio", "app", "timeout"
    error: str = ""

    @property
    def stream_id(self) -> str:
        return str(self.settings["streamId"])

    @property
    def content_type(self) -> str:
        return str(self.settings["contentType"])

    def next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def plivo(self, event: str, **fields: object) -> str:
        """One message to the app, in Plivo's shape (extra_headers on the audio messages too)."""
        message: dict[str, object] = {"event": event, "sequenceNumber": self.next_sequence(),
                                      "streamId": self.stream_id, **fields}
        if self.settings.get("extraHeaders"):
            message["extra_headers"] = self.settings["extraHeaders"]
        return json.dumps(message)


class Relay:
    """Relays streams. `allowed_hosts(app)` gives the app's allowed_hosts (None: no such app);
    `callback(stream_key, request)` queues a status request for durable delivery (blocking: it
    runs in `executor`)."""

    def __init__(self, *, token_key: bytes, allowed_hosts: Callable[[str], tuple | None],
                 callback: Callable[[str, dict], None] | None, executor,
                 counters: Counter | None = None, resolve=None):
        self.token_key = token_key
        self.allowed_hosts = allowed_hosts
        self.callback = callback
        self.executor = executor
        self.counters = counters if counters is not None else Counter()
        self.resolve = resolve

    async def run(self, twilio: ServerConnection, start_message: dict) -> None:
        start = start_message.get("start") or {}
        settings = relay_settings(self.token_key, start.get("customParameters") or {},
                                  start.get("callSid"))
        stream = RelayedStream(settings=settings, twilio=twilio,
                               stream_sid=str(start_message.get("streamSid")
                                              or start.get("streamSid") or ""))
        self.counters["relays"] += 1
        try:
            stream.app = await self._open_app(stream)
        except _AppUnreachable as exc:
            self.counters["relay_refused_by_app"] += 1
            log.warning("stream relay %s (call %s): the app's stream server %s: %s; %s",
                        stream.stream_id, settings.get("callUUID"), _safe(settings["url"]),
                        exc, "the rest of the document runs" if settings.get("bidirectional")
                        else "the call goes on without it")
            await self._status(stream, "DroppedStream", error=str(exc))
            await twilio.close(1000, "the app's stream server is unavailable")
            return
        await self._status(stream, "StartStream")
        await stream.app.send(json.dumps({
            "event": "start", "sequenceNumber": stream.next_sequence(),
            "start": {"callId": settings["callUUID"], "streamId": stream.stream_id,
                      "accountId": settings["account"],
                      "tracks": list(start.get("tracks") or ["inbound"]),
                      "mediaFormat": {"encoding": stream.content_type.partition(";")[0],
                                      "sampleRate": int(stream.content_type.rpartition("=")[2])}},
            **({"extra_headers": settings["extraHeaders"]} if settings.get("extraHeaders")
               else {})}))
        await self._converse(stream)

    async def _open_app(self, stream: RelayedStream) -> ClientConnection:
        settings = stream.settings
        url = str(settings["url"])
        allowed = self.allowed_hosts(str(settings.get("app", "")))
        if allowed is None:
            raise _AppUnreachable(f"app {settings.get('app')!r} is not in the mappings")
        parts = urlsplit(url)
        as_http = urlunsplit(("https" if parts.scheme == "wss" else "http", *parts[1:]))
        try:
            kwargs = {"resolve": self.resolve} if self.resolve else {}
            await asyncio.get_running_loop().run_in_executor(
                self.executor, lambda: check_url(as_http, allowed, **kwargs))
        except (HostNotAllowed, HostUnresolvable) as exc:
            raise _AppUnreachable(f"host {exc.host!r} refused: {exc.reason}") from None
        # "If the initial connection attempt fails, Plivo will automatically attempt twice
        # before disconnecting the stream" (Plivo's audio streaming best practices).
        for attempt in range(CONNECT_ATTEMPTS):
            try:
                app = await connect(url, open_timeout=CONNECT_TIMEOUT, max_size=MAX_APP_MESSAGE,
                                    compression=None, close_timeout=2,
                                    user_agent_header="PlivoTwilioGateway/1.0")
                break
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                if attempt + 1 == CONNECT_ATTEMPTS or isinstance(exc, InvalidURI):
                    raise _AppUnreachable(f"{str(exc) or type(exc).__name__} (after "
                                          f"{attempt + 1} attempt(s))") from None
                await asyncio.sleep(RETRY_PAUSE)
        # The name was checked when resolved; the socket's peer is checked too, so a name that
        # resolves elsewhere a moment later (DNS rebinding) gains nothing.
        peer = (app.remote_address or ("",))[0]
        if not address_allowed(str(peer), allowed):
            await app.close(1008, "address not allowed")
            raise _AppUnreachable(f"connected to {peer}, which is not a public address and is "
                                  "not listed in allowed_hosts")
        return app

    async def _converse(self, stream: RelayedStream) -> None:
        assert stream.app is not None
        tasks = {asyncio.create_task(self._from_twilio(stream), name="from-twilio"),
                 asyncio.create_task(self._from_app(stream), name="from-app")}
        timeout = float(stream.settings.get("timeout") or 86400)
        done, pending = await asyncio.wait(tasks, timeout=timeout,
                                           return_when=asyncio.FIRST_COMPLETED)
        # Who ended it is read from the sockets, not from which task noticed first (a send to
        # an app that has just dropped fails in the Twilio-side task).
        if not done:
            stream.ended_by = "timeout"
        elif not stream.ended_by:
            if stream.twilio.state is State.CLOSED:
                stream.ended_by = "twilio"
            else:
                stream.ended_by = "app"
                code = stream.app.close_code
                if code not in (1000, 1001):
                    stream.error = f"closed with code {code}"
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if stream.ended_by != "app":
            with contextlib.suppress(Exception):
                # Plivo's protocol page lists no `stop`; stream libraries written for Plivo read
                # one, and an app that does not know it ignores it. Then the socket closes.
                await stream.app.send(stream.plivo("stop"))
        with contextlib.suppress(Exception):
            await stream.app.close(1000, "stream stopped")
        with contextlib.suppress(Exception):
            await stream.twilio.close(1000, "stream stopped")
        if stream.ended_by == "app" and stream.error:
            self.counters["relay_dropped_by_app"] += 1
            log.warning("stream relay %s (call %s): the app dropped the socket (%s); %s",
                        stream.stream_id, stream.settings.get("callUUID"), stream.error,
                        "the rest of the document runs" if stream.settings.get("bidirectional")
                        else "the call goes on without it")
            await self._status(stream, "DroppedStream", error=stream.error)
        else:
            await self._status(stream, "StopStream")

    async def _from_twilio(self, stream: RelayedStream) -> None:
        assert stream.app is not None
        try:
            async for raw in stream.twilio:
                message = _json(raw)
                if message is None:
                    self.counters["relay_bad_messages"] += 1
                    continue
                event = message.get("event")
                if event == "media":
                    media = message.get("media") or {}
                    try:
                        audio = base64.b64decode(str(media.get("payload", "")), validate=True)
                    except (binascii.Error, ValueError):
                        self.counters["relay_bad_messages"] += 1
                        continue
                    payload = base64.b64encode(to_app_audio(audio, stream.content_type))
                    await stream.app.send(stream.plivo("media", media={
                        "track": media.get("track", "inbound"),
                        "timestamp": str(media.get("timestamp", "")),
                        "chunk": int(media.get("chunk") or 0),
                        "payload": payload.decode("ascii")}))
                    self.counters["relay_frames_to_app"] += 1
                elif event == "dtmf":
                    digit = str((message.get("dtmf") or {}).get("digit", ""))
                    await stream.app.send(stream.plivo("dtmf", dtmf={"digit": digit}))
                elif event == "mark":
                    name = str((message.get("mark") or {}).get("name", ""))
                    if name in stream.marks_cleared:
                        stream.marks_cleared.discard(name)  # cleared, never played
                        continue
                    stream.marks_pending.discard(name)
                    await stream.app.send(stream.plivo("playedStream", name=name))
                elif event == "stop":
                    stream.ended_by = "twilio"
                    return
        except ConnectionClosed:
            pass  # either socket: `_converse` reads which

    async def _from_app(self, stream: RelayedStream) -> None:
        assert stream.app is not None
        bidirectional = bool(stream.settings.get("bidirectional"))
        try:
            async for raw in stream.app:
                message = _json(raw)
                if message is None:
                    self.counters["relay_bad_app_messages"] += 1
                    continue
                event = message.get("event")
                if not bidirectional:
                    # Plivo accepts playAudio & co. only on a bidirectional stream.
                    self.counters["relay_ignored_one_way"] += 1
                    continue
                if event == "playAudio":
                    await self._play(stream, message.get("media") or {})
                elif event == "checkpoint":
                    name = str(message.get("name", ""))
                    stream.marks_pending.add(name)
                    await stream.twilio.send(json.dumps({
                        "event": "mark", "streamSid": stream.stream_sid, "mark": {"name": name}}))
                elif event == "clearAudio":
                    stream.marks_cleared |= stream.marks_pending
                    stream.marks_pending.clear()
                    await stream.twilio.send(json.dumps({"event": "clear",
                                                         "streamSid": stream.stream_sid}))
                    await stream.app.send(stream.plivo("clearedAudio"))
                elif event == "sendDTMF":
                    self.counters["relay_send_dtmf_unsupported"] += 1
                    log.warning("stream relay %s: sendDTMF has no Twilio Media Streams "
                                "equivalent; ignored", stream.stream_id)
                else:
                    self.counters["relay_unknown_app_events"] += 1
        except ConnectionClosed:
            pass  # either socket: `_converse` reads which

    async def _play(self, stream: RelayedStream, media: dict) -> None:
        content_type = str(media.get("contentType") or "audio/x-mulaw")
        try:
            rate = int(media.get("sampleRate") or 8000)
            audio = base64.b64decode(str(media.get("payload", "")), validate=True)
        except (binascii.Error, ValueError, TypeError):
            self.counters["relay_bad_app_messages"] += 1
            return
        if rate not in (8000, 16000) or (content_type == "audio/x-mulaw" and rate != 8000):
            self.counters["relay_bad_app_messages"] += 1
            log.warning("stream relay %s: playAudio %s at %s Hz is not a format Plivo accepts; "
                        "dropped", stream.stream_id, content_type, rate)
            return
        ulaw = from_app_audio(audio, content_type, rate)
        await stream.twilio.send(json.dumps({
            "event": "media", "streamSid": stream.stream_sid,
            "media": {"payload": base64.b64encode(ulaw).decode("ascii")}}))
        self.counters["relay_frames_to_twilio"] += 1

    async def _status(self, stream: RelayedStream, event: str, error: str = "") -> None:
        settings = stream.settings
        if not settings.get("callback") or self.callback is None:
            return
        params = {"Event": event, "StreamID": stream.stream_id,
                  "CallUUID": str(settings["callUUID"]), "ServiceURL": str(settings["url"]),
                  "Timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
        if error:
            params["Error"] = error
        request = {"url": settings["callback"], "method": settings.get("callbackMethod", "POST"),
                   "params": params, "app": settings["app"], "kind": "stream-status"}
        try:
            await asyncio.get_running_loop().run_in_executor(
                self.executor, self.callback, f"stream:{stream.stream_id}", request)
        except Exception:
            log.exception("stream relay %s: %s status could not be queued", stream.stream_id,
                          event)


class _AppUnreachable(Exception):
    pass


def _json(raw: str | bytes) -> dict | None:
    if isinstance(raw, bytes):
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", ""))
