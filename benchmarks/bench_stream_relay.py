"""The `<Stream>` relay under load: what it costs per stream, and the delay it adds to audio.

The relay (`gateway.media.relay` inside the side-stream server, run here as its own process with
`--serve`) takes N concurrent bidirectional streams shaped as Twilio sends them (signed handshake,
`start` with the gateway's signed relay settings, one 160-byte µ-law `media` every 20 ms), opens
one WebSocket per stream to a Plivo-protocol app that answers every `media` with a `playAudio` of
the same audio, and relays that back to the Twilio side as `media`. Measured over the run:

- the relay process's CPU (% of one core, and per stream), its memory;
- the round trip of a frame, Twilio side -> relay -> app -> relay -> Twilio side (frames come
  back in order on each stream: the k-th returned is the k-th sent), p50/p95/p99;
- frames sent and frames returned (a relay that cannot keep up loses or delays them).

The relay, the app (`--echo`) and the load (this process) are three processes (asyncio,
`websockets`) sharing the machine's cores; the relay's CPU is measured, and the load's and the
app's are reported so that a saturated load is visible (its backlog would show as delay).
`--content-type audio/x-l16;rate=16000` adds the conversions both ways.

    .venv/bin/python -m benchmarks.bench_stream_relay [--streams 10,50] [--hold 5]
        [--content-type audio/x-mulaw;rate=8000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from benchmarks.stats import percentile
from benchmarks.ws_load import cpu_seconds, rss_mb

AUTH_TOKEN = "bench-relay-token-not-secret"
CALL_SID = "CA" + "b" * 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the relay under test (a subprocess) ----------------------------------------------------------
def serve_relay(port: int) -> None:
    from gateway.media.relay import Relay
    from gateway.media.server import StreamServer
    from gateway.media.tokens import token_key

    async def main() -> None:
        relay = Relay(token_key=token_key(AUTH_TOKEN), allowed_hosts=lambda app: ("127.0.0.1",),
                      callback=None, executor=ThreadPoolExecutor(4))
        server = StreamServer(media_url=f"ws://127.0.0.1:{port}/twilio/media",
                              twilio_auth_token=AUTH_TOKEN, token_key=token_key(AUTH_TOKEN),
                              digits=None, bank=object(), relay=relay)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with await server.serve("127.0.0.1", port):
            print("ready", flush=True)
            await stop.wait()

    asyncio.run(main())


# -- the Plivo-protocol app: echoes every frame as playAudio --------------------------------------
async def echo_app(connection) -> None:
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000}
    async for raw in connection:
        message = json.loads(raw)
        if message["event"] == "start":
            media_format = message["start"]["mediaFormat"]
        elif message["event"] == "media":
            await connection.send(json.dumps({"event": "playAudio", "media": {
                "contentType": media_format["encoding"], "sampleRate": media_format["sampleRate"],
                "payload": message["media"]["payload"]}}))


def serve_echo(port: int) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with serve(echo_app, "127.0.0.1", port, compression=None):
            print("ready", flush=True)
            await stop.wait()

    asyncio.run(main())


# -- the Twilio side ---------------------------------------------------------------------------
def relay_parameters(app_url: str, content_type: str, number: int) -> dict[str, str]:
    from gateway.media.tokens import stream_token, token_key

    settings = json.dumps({"url": app_url, "bidirectional": True, "track": "inbound",
                           "timeout": 86400, "contentType": content_type, "extraHeaders": "",
                           "callback": None, "callbackMethod": "POST", "app": "bench",
                           "account": "MA1", "callUUID": f"uuid-{number}",
                           "streamId": f"stream-{number}", "callSid": CALL_SID},
                          separators=(",", ":"), sort_keys=True)
    pieces = {f"relay{i}": settings[j:j + 400]
              for i, j in enumerate(range(0, len(settings), 400))}
    return {**pieces, "relay_token": stream_token(token_key(AUTH_TOKEN), settings)}


async def twilio_stream(url: str, app_url: str, content_type: str, number: int, hold: float,
                        trips: list[float], counts: dict[str, int]) -> None:
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, {})
    sent: deque[float] = deque()
    stream_sid = f"MZ{number:032d}"
    async with connect(url, additional_headers={"X-Twilio-Signature": signature},
                       compression=None) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                                  "start": {"streamSid": stream_sid, "accountSid": "AC1",
                                            "callSid": CALL_SID, "tracks": ["inbound"],
                                            "customParameters": relay_parameters(
                                                app_url, content_type, number),
                                            "mediaFormat": {"encoding": "audio/x-mulaw",
                                                            "sampleRate": 8000, "channels": 1}}}))

        async def receive() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("event") == "media" and sent:
                    trips.append(time.perf_counter() - sent.popleft())
                    counts["returned"] += 1

        receiver = asyncio.create_task(receive())
        payload = base64.b64encode(bytes(range(40, 200))).decode()
        loop = asyncio.get_running_loop()
        start, frame = loop.time(), 0
        while loop.time() - start < hold:
            frame += 1
            sent.append(time.perf_counter())
            await ws.send(json.dumps({"event": "media", "sequenceNumber": str(frame + 1),
                                      "streamSid": stream_sid,
                                      "media": {"track": "inbound", "chunk": str(frame),
                                                "timestamp": str(frame * 20),
                                                "payload": payload}}))
            counts["sent"] += 1
            await asyncio.sleep(max(0.0, start + frame * 0.02 - loop.time()))
        deadline = loop.time() + 5.0  # the last frames come back
        while sent and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await ws.send(json.dumps({"event": "stop", "streamSid": stream_sid,
                                  "stop": {"accountSid": "AC1", "callSid": CALL_SID}}))
        receiver.cancel()


async def one_round(streams: int, hold: float, content_type: str, relay_port: int,
                    relay_pid: int, app_port: int, app_pid: int) -> dict:
    app_url = f"ws://127.0.0.1:{app_port}/stream"
    url = f"ws://127.0.0.1:{relay_port}/twilio/media"
    trips: list[float] = []
    counts = {"sent": 0, "returned": 0}
    me = os.getpid()
    before = [cpu_seconds([pid]) for pid in (relay_pid, app_pid, me)]
    wall_before = time.perf_counter()
    await asyncio.gather(*(twilio_stream(url, app_url, content_type, n, hold, trips, counts)
                           for n in range(streams)))
    wall = time.perf_counter() - wall_before
    cpu, app_cpu, load_cpu = (cpu_seconds([pid]) - b
                              for pid, b in zip((relay_pid, app_pid, me), before, strict=True))
    ms = [t * 1000 for t in trips]
    return {"streams": streams, "content_type": content_type, "seconds": round(wall, 2),
            "frames_sent": counts["sent"], "frames_returned": counts["returned"],
            "relay_cpu_percent": round(100 * cpu / wall, 1),
            "relay_cpu_percent_per_stream": round(100 * cpu / wall / streams, 2),
            "relay_rss_mb": round(rss_mb([relay_pid]), 1),
            "app_cpu_percent": round(100 * app_cpu / wall, 1),
            "load_cpu_percent": round(100 * load_cpu / wall, 1),
            "round_trip_ms": {"p50": round(percentile(ms, 50), 2),
                              "p95": round(percentile(ms, 95), 2),
                              "p99": round(percentile(ms, 99), 2)} if ms else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="10,50")
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--content-type", default="audio/x-mulaw;rate=8000")
    parser.add_argument("--json")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_relay(args.serve)
        return 0
    if args.echo:
        serve_echo(args.echo)
        return 0
    port, app_port = free_port(), free_port()
    children = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_stream_relay", flag,
                                  str(p)], stdout=subprocess.PIPE, text=True)
                for flag, p in (("--serve", port), ("--echo", app_port))]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        relay, app = children
        results = [asyncio.run(one_round(int(n), args.hold, args.content_type, port, relay.pid,
                                         app_port, app.pid))
                   for n in args.streams.split(",")]
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
            child.wait(10)
    for result in results:
        print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cpus": os.cpu_count(), "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
