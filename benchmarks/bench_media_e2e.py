"""Side streams end to end: how many concurrent streams `gateway serve` holds in real time, with
each digit's callback at the app within 300 ms of the key's end (p99).

The gateway runs as users run it (`gateway serve`: gunicorn, the job worker, the side-stream
server) on the embedded SQLite store (or `--store redis`: a real redis-server), with a customer
app on loopback. For N members (voice webhook with `<Conference digitsMatch="99"
callbackUrl=…>`, then Twilio's participant-join), N streams are opened with Twilio's handshake
and messages and fed in real time: one 20 ms µ-law frame per stream per tick, each frame sent
when its 20 ms have passed, as Twilio does. The audio is the simulator's caller (line noise,
keys as in-band tones). A share of the streams
(`--pressing`, default 20 %) press 9 9 once, their presses spread evenly over the run: members of
a conference press keys now and then, and the callbacks go through the same job worker as every
other callback (about 150 a second on this machine, see *conference events*), which this
benchmark does not measure; the other streams carry line noise only. Latency = the `digits`
callback's arrival at the app minus the end of the second 9's tone (in the stream's real-time
schedule).

Reported per N: callbacks received / expected (and wrong ones), latency p50 / p99 / max, the
side-stream process's CPU (% of one core, ms per stream-second) and memory (KB per stream), the
whole gateway's CPU, the load's own CPU and how late its ticks ran (a late load is a bad run).

    .venv/bin/python -m benchmarks.bench_media_e2e [--streams 250,500,1000] [--seconds 20]
        [--pressing 0.2] [--store sqlite|redis] [--media-processes 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import resource
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.servers import QuietCustomerApp
from benchmarks.stats import median, percentile
from benchmarks.ws_load import close_frame, cpu_seconds, frame, group_pids, open_stream, rss_mb
from gateway.app_side.params import call_uuid
from gateway.sim.audio import FRAME_SAMPLES, CallerAudio, key_tones
from tests.support.gateway_server import ACCOUNT_SID, APP_AUTH_TOKEN, GatewayServer, app_config
from tests.support.media_client import Admitted, admit, signature
from tests.support.redis_server import RedisServer

SCRIPTS = 25            # distinct caller audio tracks (stream i plays script i % SCRIPTS)
FIRST_PRESS = 2.0       # seconds into the stream of the first script's 9 9
TARGET_MS = 300.0


class Script:
    """One caller's audio, pre-rendered as masked WebSocket frames (chunk 1..n)."""

    def __init__(self, index: int, seconds: float, press_at: float | None):
        presses = [(press_at, "99")] if press_at is not None else []
        audio = CallerAudio(key_tones(presses), [], seed=index)
        # the second 9's end (s into the stream); None: this caller presses nothing
        self.key_end = max(t.end for t in audio.tones) if audio.tones else None
        frames = round(seconds * 50)
        self.media = [frame(json.dumps({
            "event": "media", "sequenceNumber": str(k + 2), "streamSid": f"MZ{index:032x}",
            "media": {"track": "inbound", "chunk": str(k + 1), "timestamp": str(k * 20),
                      "payload": base64.b64encode(audio.frame(k * FRAME_SAMPLES)).decode()}}))
            for k in range(frames)]


def start_frame(member: Admitted, stream_sid: str) -> bytes:
    return frame(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                             "start": {"accountSid": ACCOUNT_SID, "streamSid": stream_sid,
                                       "callSid": member.call_sid, "tracks": ["inbound"],
                                       "customParameters": member.parameters,
                                       "mediaFormat": {"encoding": "audio/x-mulaw",
                                                       "sampleRate": 8000, "channels": 1}}}))


def media_pids(gateway: GatewayServer) -> list[int]:
    """The side-stream processes (`gateway media` and the helpers sharing its port)."""
    found = []
    for pid in group_pids(gateway.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"gateway.cli\x00media" in cmdline:
            found.append(pid)
    if not found:
        raise RuntimeError("no side-stream process in the gateway's group")
    return found


async def play(gateway: GatewayServer, members: list[Admitted], scripts: list[Script],
               seconds: float) -> dict:
    parts = urlsplit(gateway.media_url)
    headers = {"X-Twilio-Signature": signature(gateway.media_url)}
    semaphore = asyncio.Semaphore(32)
    writers: list = [None] * len(members)

    async def one(i: int) -> None:
        async with semaphore:
            _, writer = await open_stream(parts.hostname, parts.port, parts.path, headers)
            writer.write(frame(json.dumps({"event": "connected", "protocol": "Call",
                                           "version": "1.0.0"})))
            writer.write(start_frame(members[i], f"MZ{i:032x}"))
            writers[i] = writer
    await asyncio.gather(*(one(i) for i in range(len(members))))
    await asyncio.sleep(1.0)  # every start checked (a store read each) before the clock starts
    loop = asyncio.get_running_loop()
    media, everything = media_pids(gateway), group_pids(gateway.process.pid)
    cpu_media, cpu_all = cpu_seconds(media), cpu_seconds(everything)
    load_cpu = time.process_time()
    t0 = loop.time()
    frames = round(seconds * 50)
    late = []
    for k in range(frames):
        due = t0 + (k + 1) * 0.02  # frame k covers [20k, 20k+20) ms: sent once it is complete
        await asyncio.sleep(max(0.0, due - loop.time()))
        late.append(loop.time() - due)
        for i, writer in enumerate(writers):
            writer.write(scripts[i].media[k])
    wall = loop.time() - t0
    health = await loop.run_in_executor(None, gateway.media_health) or {}
    figures = {
        "server_tick_lag_ms": health.get("tick_lag_ms"),  # how late its batches ran, lately
        "gaps": health.get("gaps", 0), "flooded": health.get("flooded", 0),
        "media_cpu_pct": round(100 * (cpu_seconds(media) - cpu_media) / wall, 1),
        "gateway_cpu_pct": round(100 * (cpu_seconds(everything) - cpu_all) / wall, 1),
        "media_rss_mb": round(rss_mb(media), 1), "media_processes": len(media),
        "load_cpu_pct": round(100 * (time.process_time() - load_cpu) / wall, 1),
        "load_late_p99_ms": round(1000 * percentile(late, 99), 1),
        "t0": t0,
    }
    for writer in writers:
        writer.write(close_frame())
        writer.close()
    return figures


def run(app: QuietCustomerApp, gateway: GatewayServer, streams: int, seconds: float,
        pressing: float) -> dict:
    spread = max(1.0, seconds - FIRST_PRESS - 2.0)
    every = max(1, round(1 / pressing))  # stream i presses when i % every == 0
    scripts = [Script(j, seconds, FIRST_PRESS + spread * j / SCRIPTS) for j in range(SCRIPTS)]
    quiet = Script(SCRIPTS, seconds, None)
    chosen = [scripts[(i // every) % SCRIPTS] if i % every == 0 else quiet
              for i in range(streams)]
    with ThreadPoolExecutor(16) as pool:
        members = list(pool.map(lambda _: admit(gateway), range(streams)))
    app.clear()
    figures = asyncio.run(play(gateway, members, chosen, seconds))
    t0 = figures.pop("t0")
    expected = {call_uuid(m.call_sid): t0 + chosen[i].key_end
                for i, m in enumerate(members) if chosen[i].key_end is not None}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(r.params.get("ConferenceAction") == "digits"
                                              for r in app.requests_to("/cb")) < len(expected):
        time.sleep(0.2)
    latencies, wrong, seen = [], 0, set()
    for request in app.requests_to("/cb"):
        params = request.params
        if params.get("ConferenceAction") != "digits":
            continue  # the members' enter callbacks
        key_end = expected.get(params.get("CallUUID", ""))
        if key_end is None or params.get("ConferenceDigitsMatch") != "99" \
                or params["CallUUID"] in seen:
            wrong += 1
            continue
        seen.add(params["CallUUID"])
        latencies.append(1000 * (request.received_at - key_end))
    return {
        "streams": streams, "callbacks": len(latencies), "expected": len(expected),
        "wrong": wrong, "presses_per_s": round(len(expected) / spread, 1),
        "latency_p50_ms": round(median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "latency_max_ms": round(max(latencies), 1) if latencies else None,
        "within_target": bool(latencies) and len(latencies) == len(expected)
        and percentile(latencies, 99) <= TARGET_MS,
        "media_cpu_ms_per_stream_s": round(10 * figures["media_cpu_pct"] / streams, 3),
        "media_kb_per_stream": round(figures["media_rss_mb"] * 1024 / streams, 1),
        **figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="250,500,1000")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pressing", type=float, default=0.2,
                        help="share of the streams that press 9 9 (default 0.2)")
    parser.add_argument("--media-processes", type=int, default=1,
                        help="GATEWAY_MEDIA_PROCESSES for the gateway (default 1)")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    print(f"{'streams':>7} {'presses/s':>9} {'callbacks':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'media CPU %':>11} {'ms/stream-s':>11} {'KB/stream':>9} "
          f"{'gateway CPU %':>13} "
          f"{'load CPU %':>10} {'load late p99':>13} {'server lag':>10}")
    with tempfile.TemporaryDirectory(prefix="bench-media-") as workdir, \
            QuietCustomerApp(auth_token=APP_AUTH_TOKEN) as app, contextlib.ExitStack() as stack:
        redis = (stack.enter_context(RedisServer(Path(workdir) / "redis"))
                 if args.store == "redis" else None)
        app.route("/answer", f'<Response><Conference callbackUrl="{app.url("/cb")}" '
                             'digitsMatch="99">bench</Conference></Response>')
        app.route("/cb", body="")
        for streams in [int(n) for n in args.streams.split(",")]:
            store_url = redis.url(db=streams % 16) if redis else None
            with GatewayServer(Path(workdir) / f"n{streams}", store_url=store_url,
                               apps=[app_config(app.url("/answer"))], env={
                                   "GATEWAY_MEDIA_PROCESSES": str(args.media_processes)},
                               ) as gateway:
                r = run(app, gateway, streams, args.seconds, args.pressing)
            results.append(r)
            print(f"{r['streams']:7} {r['presses_per_s']:9} "
                  f"{r['callbacks']:>4}/{r['expected']:<4} "
                  f"{r['latency_p50_ms']!s:>7} {r['latency_p99_ms']!s:>7} "
                  f"{r['latency_max_ms']!s:>7} {r['media_cpu_pct']:11} "
                  f"{r['media_cpu_ms_per_stream_s']:11} {r['media_kb_per_stream']:9} "
                  f"{r['gateway_cpu_pct']:13} {r['load_cpu_pct']:10} "
                  f"{r['load_late_p99_ms']:13} {r['server_tick_lag_ms']!s:>10}"
                  + ("" if r["wrong"] == 0
                                                  else f"  WRONG: {r['wrong']}"))
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "media_e2e",
                                               "seconds": args.seconds,
                                               "media_processes": args.media_processes,
                                               "store": args.store,
                                               "results": results},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
