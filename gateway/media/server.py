"""The side-stream server: Twilio Media Streams in, digitsMatch callbacks out (`gateway media`).

One asyncio process holds every stream (`websockets`; the candidates and their figures are in
`benchmarks/bench_media_servers.py` and the README). For each WebSocket:

1. The handshake's `X-Twilio-Signature` must be Twilio's signature of the stream URL (the one
   the TwiML names), and the `start` message's customParameters must carry a member label and
   its HMAC token (`tokens`), for the call the stream says it belongs to. Any failure closes the
   socket with 1008 (policy violation) and nothing of it is processed. A `start` whose media is
   not 8 kHz mono µ-law closes with 1003.
2. Media frames are taken in order. A frame whose chunk is not the next one, or whose timestamp
   jumps, means audio went missing: the stream's receiver is reset (a key cut in two must not
   become two keys, or a key made of two halves); a frame from the past is dropped.
3. All streams' audio goes through ONE `ReceiverBank`, a batch per 20 ms tick: one vectorised
   pass serves every stream. Keys (and `dtmf` messages, should Twilio ever send them on a fork)
   go to the member's `DigitsMatch`; a match is handed to `ConferenceDigits` off the event loop
   (the store blocks), one at a time per stream, so a member's callbacks keep their order.
4. Once the member has left the room (the store says so when a match comes, or when the stream
   starts), nothing more is acted on: the socket is closed. The TwiML after the Dial also stops
   the stream (`<Stop><Stream>`).

Bad input never crashes the server or touches another stream: malformed JSON, unknown events,
bad base64 and frames out of order are counted and skipped; a flood of keys is cut by a per-stream
key budget; a flood of audio beyond what a tick can hold is dropped as a gap. `GET /healthz` on
the same port answers with the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import http
import json
import logging
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from twilio.request_validator import RequestValidator
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..translate.context import call_sid_of
from .digits_match import DigitsMatch
from .relay import Relay, RelayRefused, is_relay
from .tokens import token_valid

log = logging.getLogger("gateway.media")

POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003
INVALID_DATA = 1007
TICK_SECONDS = 0.02                 # Twilio's frames are 20 ms: one batch per frame time
SAMPLES_PER_MS = 8                  # 8 kHz µ-law: one byte per sample
MAX_PENDING_BYTES = 2 * 8000        # audio waiting for the next tick beyond 2 s is a flood
START_TIMEOUT = 10.0                # seconds a socket may take to send `start`
MAX_BAD_MESSAGES = 200              # then the socket is closed (1007): it is not Twilio
# A real key lasts at least 40 ms with a 40 ms pause (Q.24): about 12 keys a second at most.
KEY_RATE = 15.0
KEY_BURST = 30.0
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
KEYS = frozenset("0123456789*#ABCD")


@dataclass
class SideStream:
    """One member's stream: its receiver slot, its matcher, and where its audio has got to."""

    id: str                             # its slot name in the ReceiverBank
    label: str
    stream_sid: str
    connection: ServerConnection
    matcher: DigitsMatch
    pending: bytearray = field(default_factory=bytearray)
    receiver_t0_ms: int | None = None   # stream time of the receiver's sample 0
    queued_to_ms: int | None = None     # stream time just after the last audio queued
    last_chunk: int = 0
    now_ms: int = 0                     # stream time of the newest audio processed
    done: bool = False                  # the member left: nothing more is acted on
    bad_messages: int = 0
    key_allowance: float = KEY_BURST
    key_clock: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def allow_key(self) -> bool:
        now = time.monotonic()
        self.key_allowance = min(KEY_BURST, self.key_allowance + (now - self.key_clock) * KEY_RATE)
        self.key_clock = now
        if self.key_allowance < 1.0:
            return False
        self.key_allowance -= 1.0
        return True


class Refused(Exception):
    """The socket is not a stream the gateway asked for: close with `code`, process nothing."""

    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class RelayStart:
    """A `start` whose parameters ask for the Plivo-protocol relay (a `<Stream>`), not a side
    stream: handed to `relay.Relay` as it is."""

    message: dict


class StreamServer:
    """Holds the streams. `digits` is `ConferenceDigits` (or anything with `binding(label)` and
    `matched(label, pattern)`); `bank` a `ReceiverBank`; `relay` a `relay.Relay` (None: a
    `<Stream>`'s socket is refused)."""

    def __init__(self, *, media_url: str, twilio_auth_token: str, token_key: bytes, digits,
                 bank=None, store_threads: int = 8, relay: Relay | None = None):
        if bank is None:
            from .dtmf import ReceiverBank  # the receiver (numpy); imported when serving
            bank = ReceiverBank()
        self.media_url = media_url
        self.validator = RequestValidator(twilio_auth_token)
        self.token_key = token_key
        self.digits = digits
        self.bank = bank
        self.streams: dict[str, SideStream] = {}
        self.counters: Counter[str] = Counter()
        self.executor = ThreadPoolExecutor(store_threads, thread_name_prefix="media-store")
        self.tick_lag_ms = 0.0  # how late the batches run: the server is falling behind
        self._next_id = 0
        self._tasks: set[asyncio.Task] = set()
        self.relay = relay
        if relay is not None:
            relay.counters = self.counters  # one /healthz for both

    # -- the server ----------------------------------------------------------------------------
    async def serve(self, host: str, port: int, *, reuse_port: bool = False) -> Server:
        server = await serve(self.handle, host, port, process_request=self._http,
                             reuse_port=reuse_port,
                             compression=None, max_size=2 ** 16, ping_interval=20,
                             ping_timeout=20, close_timeout=2, server_header=None)
        self._tasks.add(asyncio.create_task(self._ticker()))
        return server

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        """Plain HTTP on the same port: /healthz for load balancers (and tests)."""
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if request.path.split("?")[0] == "/healthz":
            body = json.dumps({"status": "ok", "streams": len(self.streams),
                               "tick_lag_ms": round(self.tick_lag_ms, 1),
                               **self.counters}).encode()
            return Response(200, "OK", Headers({"Content-Type": "application/json",
                                                "Content-Length": str(len(body))}), body)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "Not found\n")

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += TICK_SECONDS
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            late = loop.time() - next_at
            self.tick_lag_ms = max(self.tick_lag_ms * 0.99, late * 1000)  # a decaying maximum
            if late > 1.0:
                next_at = loop.time()  # fell far behind: do not try to catch up tick by tick
            try:
                self.process_tick()
            except Exception:  # one bad batch must not stop every stream's detection
                log.exception("side streams: tick failed")

    # -- one WebSocket -------------------------------------------------------------------------
    async def handle(self, connection: ServerConnection) -> None:
        self.counters["connections"] += 1
        stream: SideStream | None = None
        try:
            self._check_signature(connection)
            stream = await asyncio.wait_for(self._started(connection), START_TIMEOUT)
            if stream is None:
                return
            if isinstance(stream, RelayStart):
                relayed, stream = stream, None
                try:
                    await self.relay.run(connection, relayed.message)  # type: ignore[union-attr]
                except RelayRefused as refused:
                    raise Refused(POLICY_VIOLATION, str(refused)) from None
                return
            await self._converse(stream)
        except Refused as refused:
            self.counters[f"refused_{refused.code}"] += 1
            log.warning("side stream from %s refused (%d): %s", _peer(connection), refused.code,
                        refused.reason)
            await connection.close(refused.code, refused.reason[:120])
        except TimeoutError:
            self.counters["refused_1008"] += 1
            await connection.close(POLICY_VIOLATION, "no start message")
        except ConnectionClosed:
            self.counters["dropped"] += 1
        except Exception:  # the store down, a bug: this stream ends, the server goes on
            self.counters["internal_errors"] += 1
            log.exception("side stream from %s: internal error; closed", _peer(connection))
            with contextlib.suppress(Exception):
                await connection.close(1011, "internal error")
        finally:
            if stream is not None:
                self._end(stream)

    def _check_signature(self, connection: ServerConnection) -> None:
        signature = connection.request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.validator.validate(self.media_url, {}, signature):
            raise Refused(POLICY_VIOLATION, ("wrong" if signature else "no")
                          + " X-Twilio-Signature")

    async def _started(self, connection: ServerConnection) -> SideStream | RelayStart | None:
        """Read up to `start` and check it; returns the stream, None if there is nothing to do."""
        async for raw in connection:
            message = self._decode(raw)
            if message is None:
                continue
            event = message.get("event")
            if event == "connected":
                continue
            if event != "start":
                # Nothing counts before the stream has proved who it is for.
                raise Refused(POLICY_VIOLATION, f"{event!r} before start")
            return await self._open(connection, message)
        return None

    async def _open(self, connection: ServerConnection, message: dict
                    ) -> SideStream | RelayStart | None:
        start = message.get("start")
        if not isinstance(start, dict):
            raise Refused(POLICY_VIOLATION, "start without its start object")
        parameters = start.get("customParameters") or {}
        if self.relay is not None and is_relay(parameters):
            return RelayStart(message)
        label = str(parameters.get("member", "")) if isinstance(parameters, dict) else ""
        token = str(parameters.get("token", "")) if isinstance(parameters, dict) else ""
        if not label or not token or not token_valid(self.token_key, label, token):
            raise Refused(POLICY_VIOLATION, "no valid member token")
        if call_sid_of(label) != start.get("callSid"):
            raise Refused(POLICY_VIOLATION, "token is for another call")
        if start.get("mediaFormat") != MEDIA_FORMAT:
            raise Refused(UNSUPPORTED_DATA, f"media format {start.get('mediaFormat')!r}: "
                          "8 kHz mono audio/x-mulaw expected")
        tracks = start.get("tracks") or []
        if "inbound" not in tracks:
            raise Refused(UNSUPPORTED_DATA, f"tracks {tracks!r}: the inbound track is needed")
        binding = await asyncio.get_running_loop().run_in_executor(
            self.executor, self.digits.binding, label)
        if binding.state == "unknown":
            raise Refused(POLICY_VIOLATION, f"no member {label}")
        if binding.state == "left" or not binding.patterns:
            self.counters["stale"] += 1
            log.info("side stream for %s: member %s; closed", label,
                     "already left" if binding.state == "left" else "has no digitsMatch")
            await connection.close(1000, "member already left"
                                   if binding.state == "left" else "nothing to match")
            return None
        self._next_id += 1
        stream = SideStream(id=f"s{self._next_id}", label=label,
                            stream_sid=str(message.get("streamSid") or start.get("streamSid")),
                            connection=connection, matcher=DigitsMatch(binding.patterns))
        self.bank.open(stream.id)
        self.streams[stream.id] = stream
        self.counters["streams"] += 1
        return stream

    async def _converse(self, stream: SideStream) -> None:
        async for raw in stream.connection:
            message = self._decode(raw)
            if message is None:
                stream.bad_messages += 1
                if stream.bad_messages >= MAX_BAD_MESSAGES:
                    raise Refused(INVALID_DATA, "too many malformed messages")
                continue
            event = message.get("event")
            if event == "media":
                self._media(stream, message.get("media"))
            elif event == "dtmf":
                dtmf = message.get("dtmf") or {}
                digit = str(dtmf.get("digit", "")) if isinstance(dtmf, dict) else ""
                if digit in KEYS:
                    self.counters["dtmf_messages"] += 1
                    self._keys(stream, [(digit, stream.now_ms, stream.now_ms)])
            elif event == "stop":
                await stream.connection.close(1000, "stopped")
                return
            else:
                self.counters["unknown_events"] += 1

    def _decode(self, raw: str | bytes) -> dict | None:
        if isinstance(raw, bytes):
            self.counters["bad_messages"] += 1
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            self.counters["bad_messages"] += 1
            return None
        if not isinstance(message, dict):
            self.counters["bad_messages"] += 1
            return None
        return message

    # -- audio -----------------------------------------------------------------------------------
    def _media(self, stream: SideStream, media) -> None:
        if not isinstance(media, dict) or media.get("track", "inbound") != "inbound":
            if not isinstance(media, dict):
                self.counters["bad_messages"] += 1
            return
        try:
            chunk = int(media["chunk"])
            timestamp = int(media["timestamp"])
            audio = base64.b64decode(media["payload"], validate=True)
        except (KeyError, TypeError, ValueError, binascii.Error):
            # A frame that cannot be read is a frame missing: the next one will show the gap.
            self.counters["bad_frames"] += 1
            return
        if not audio:
            return
        if chunk <= stream.last_chunk:
            self.counters["stale_frames"] += 1  # from the past (or repeated): its time has gone
            return
        expected = stream.queued_to_ms
        if stream.last_chunk and (chunk != stream.last_chunk + 1 or expected is None
                                  or abs(timestamp - expected) >= 20):
            self.counters["gaps"] += 1
            self._restart_receiver(stream, timestamp)
        elif len(stream.pending) + len(audio) > MAX_PENDING_BYTES:
            self.counters["flooded"] += 1
            stream.pending.clear()
            self._restart_receiver(stream, timestamp)
        if stream.receiver_t0_ms is None:
            stream.receiver_t0_ms = timestamp
        stream.last_chunk = chunk
        stream.pending += audio
        stream.queued_to_ms = timestamp + len(audio) // SAMPLES_PER_MS
        self.counters["frames"] += 1

    def _restart_receiver(self, stream: SideStream, resume_ms: int) -> None:
        """Audio went missing: what came before is heard out, then the receiver starts clean."""
        if stream.pending:
            digits = self.bank.feed({stream.id: bytes(stream.pending)}).get(stream.id, [])
            stream.pending.clear()
            self._heard(stream, digits)
        self.bank.reset(stream.id)
        stream.receiver_t0_ms = resume_ms

    def process_tick(self) -> None:
        """One batch: every stream's queued audio through the bank in one pass."""
        batch = {s.id: bytes(s.pending) for s in self.streams.values() if s.pending}
        for stream_id in batch:
            self.streams[stream_id].pending.clear()
        found = self.bank.feed(batch) if batch else {}
        for stream in list(self.streams.values()):
            if stream.queued_to_ms is not None:
                stream.now_ms = stream.queued_to_ms
            self._heard(stream, found.get(stream.id, []))
            self._matched(stream, stream.matcher.tick(stream.now_ms))

    def _heard(self, stream: SideStream, digits) -> None:
        t0 = stream.receiver_t0_ms or 0
        self._keys(stream, [(d.digit, t0 + int(d.start_ms), t0 + int(d.end_ms)) for d in digits])

    def _keys(self, stream: SideStream, keys: list[tuple[str, int, int]]) -> None:
        for digit, start_ms, end_ms in keys:
            if stream.done:
                return
            if not stream.allow_key():
                self.counters["keys_dropped"] += 1
                continue
            self.counters["keys"] += 1
            self._matched(stream, stream.matcher.press(digit, start_ms, end_ms))

    def _matched(self, stream: SideStream, patterns: list[str]) -> None:
        for pattern in patterns:
            self.counters["matches"] += 1
            task = asyncio.get_running_loop().create_task(self._act(stream, pattern))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _act(self, stream: SideStream, pattern: str) -> None:
        async with stream.lock:  # one at a time per stream: the member's numbers keep its order
            if stream.done:
                return
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.digits.matched, stream.label, pattern)
            except Exception:
                self.counters["match_errors"] += 1
                log.exception("side stream %s: digits %s could not be sent", stream.label,
                              pattern)
                return
            self.counters[f"digits_{outcome}"] += 1
            log.info("side stream %s: keys matched %s: %s", stream.label, pattern, outcome)
            if outcome in ("left", "unknown"):
                stream.done = True  # the member is gone: nothing more for it
                with contextlib.suppress(Exception):
                    await stream.connection.close(1000, "member left the room")

    def _end(self, stream: SideStream) -> None:
        """The socket is gone: hear out what is queued, fire a pattern waiting for its pause."""
        self.streams.pop(stream.id, None)
        try:
            if stream.pending:
                self._heard(stream, self.bank.feed({stream.id: bytes(stream.pending)}).get(
                    stream.id, []))
            self._heard(stream, self.bank.close(stream.id))
            self._matched(stream, stream.matcher.flush())
        except Exception:
            log.exception("side stream %s: could not be closed cleanly", stream.label)


def _peer(connection: ServerConnection) -> str:
    try:
        return str(connection.remote_address[0])
    except Exception:
        return "?"


# -- `gateway media` ---------------------------------------------------------------------------
def build(settings) -> StreamServer:
    from .. import deliveries
    from ..conference.digits import ConferenceDigits
    from ..dial.digits import DialDigits, Digits
    from ..runtime import build_runtime
    from .tokens import token_key

    runtime = build_runtime(settings)
    executor = ThreadPoolExecutor(8, thread_name_prefix="media-relay")

    def allowed_hosts(app_name: str) -> tuple | None:
        app = runtime.mappings.app_named(app_name)
        return app.allowed_hosts if app is not None else None

    relay = Relay(token_key=token_key(settings.twilio_auth_token), allowed_hosts=allowed_hosts,
                  callback=lambda stream, request: deliveries.enqueue_next(
                      runtime.store, stream, request), executor=executor)
    return StreamServer(media_url=runtime.urls.media_stream,
                        twilio_auth_token=settings.twilio_auth_token,
                        token_key=token_key(settings.twilio_auth_token),
                        digits=Digits(ConferenceDigits(store=runtime.store,
                                                       members=runtime.members),
                                      DialDigits(forwards=runtime.forwards)),
                        relay=relay)


async def run(settings, *, reuse_port: bool = False) -> None:
    server = build(settings)
    host = settings.bind_host
    async with await server.serve(host, settings.stream_server_port,
                                  reuse_port=reuse_port) as listening:
        log.info("side streams: listening on %s:%d for %s", host, settings.stream_server_port,
                 server.media_url)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        listening.close()


def main(argv: list[str]) -> int:
    from ..runtime import configure_logging
    from ..settings import Settings, SettingsError

    parser = argparse.ArgumentParser(prog="gateway media", description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=None,
                        help="processes sharing the port (SO_REUSEPORT; default "
                             "$GATEWAY_MEDIA_PROCESSES or 1): one event loop and one receiver "
                             "bank each, the kernel spreads the streams")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"gateway media: cannot start: {exc}", file=sys.stderr)
        return 2
    processes = args.processes or settings.media_processes
    configure_logging()
    # websockets logs every connection at INFO: thousands of streams would drown the log.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.root.level))
    helpers = [subprocess.Popen([sys.executable, "-m", "gateway.cli", "media", "--processes",
                                 "1", "--reuse-port"]) for _ in range(processes - 1)]
    try:
        asyncio.run(run(settings, reuse_port=args.reuse_port or processes > 1))
    finally:
        for helper in helpers:  # they share this one's fate: stopped with it
            helper.terminate()
        for helper in helpers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                helper.wait(timeout=10)
    return 0
