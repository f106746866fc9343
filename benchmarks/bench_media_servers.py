"""Which WebSocket server should hold the side streams? Three candidates under the same load.

Each candidate receives N concurrent Twilio-shaped streams (connected, start, then one `media`
message of 160 µ-law bytes every 20 ms per stream) and does the same minimal work per message
(JSON parse, base64 decode, count); at the end each stream sends `stop` and the server answers
with the number of frames it got. Measured over a steady window: the server's CPU (all its
processes, % of one core), its memory, frames lost, and how long the server takes to answer every
`stop` (its backlog: a server that keeps up answers at once).

- `asyncio`: one process, the `websockets` package's asyncio server (already a dependency);
- `gthread`: flask-sock under gunicorn's gthread worker (2 workers, a thread per stream);
- `gevent`: flask-sock under gunicorn's gevent worker (2 workers, a greenlet per stream).

flask-sock and gevent are not project dependencies: a candidate whose package is missing is
reported as skipped, with the pip command. The load (`ws_load`) writes pre-built frames, so it
costs far less than the servers it measures; its own CPU is reported too.

    .venv/bin/python -m benchmarks.bench_media_servers [--streams 250,1000] [--hold 5]
        [--candidates asyncio,gthread,gevent] [--json out.json]

gthread runs a thread per stream: at 2000 streams (2 workers × 1032 threads) it drove this
machine's load average past 300 and starved every other process on it, so mind what you ask.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time

from benchmarks.ws_load import (
    close_frame,
    cpu_seconds,
    frame,
    group_pids,
    open_stream,
    read_frame,
    rss_mb,
)

PATH = "/twilio/media"
PAYLOAD = base64.b64encode(bytes(range(160))).decode()
CANDIDATES = ("asyncio", "gthread", "gevent")
NEEDS = {"gthread": ("flask_sock",), "gevent": ("flask_sock", "gevent")}


# -- the candidates' handlers (the same work in each) -------------------------------------------
def handle_text(raw: str, count: int) -> tuple[int, bool]:
    """One message: returns (frames so far, stopped?)."""
    message = json.loads(raw)
    event = message.get("event")
    if event == "media":
        base64.b64decode(message["media"]["payload"], validate=True)
        return count + 1, False
    return count, event == "stop"


async def _asyncio_handler(connection) -> None:
    count = 0
    async for raw in connection:
        count, stopped = handle_text(raw, count)
        if stopped:
            await connection.send(str(count))
            return


async def _asyncio_serve(port: int) -> None:
    from websockets.asyncio.server import serve
    async with serve(_asyncio_handler, "127.0.0.1", port, compression=None, max_size=2 ** 16,
                     ping_interval=20, ping_timeout=20):
        await asyncio.Event().wait()


def flask_app():
    """The flask-sock app gunicorn runs (`benchmarks.bench_media_servers:flask_app()`)."""
    from flask import Flask
    from flask_sock import Sock

    app = Flask("bench-media")
    sock = Sock(app)

    @sock.route(PATH)
    def media(ws):
        count = 0
        while True:
            raw = ws.receive()
            if raw is None:
                return
            count, stopped = handle_text(raw, count)
            if stopped:
                ws.send(str(count))
                return
    return app


def start_server(candidate: str, port: int, streams: int) -> subprocess.Popen:
    if candidate == "asyncio":
        command = [sys.executable, "-m", "benchmarks.bench_media_servers", "--serve", str(port)]
    else:
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                   "--workers", "2", "--no-control-socket", "--timeout", "120",
                   "--log-level", "warning"]
        if candidate == "gthread":
            command += ["--worker-class", "gthread", "--threads", str(streams // 2 + 32)]
        else:
            command += ["--worker-class", "gevent", "--worker-connections", str(streams + 64)]
        command.append("benchmarks.bench_media_servers:flask_app()")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(0.5)  # gunicorn: let every worker boot
                return process
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode()[-2000:])
        time.sleep(0.1)
    raise RuntimeError(f"{candidate} did not listen on {port}")


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


# -- the load ------------------------------------------------------------------------------------
async def run_load(port: int, streams: int, hold: float, server_pid: int) -> dict:
    start = frame(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
                              "start": {"streamSid": "MZ1", "tracks": ["inbound"],
                                        "customParameters": {}}}))
    media = [frame(json.dumps({"event": "media", "sequenceNumber": str(i + 2), "streamSid": "MZ1",
                               "media": {"track": "inbound", "chunk": str(i + 1),
                                         "timestamp": str(i * 20), "payload": PAYLOAD}}))
             for i in range(round((hold + 3) * 50))]
    stop = frame(json.dumps({"event": "stop", "sequenceNumber": "0", "streamSid": "MZ1"}))
    connections = []
    semaphore = asyncio.Semaphore(64)

    async def one():
        async with semaphore:
            connections.append(await open_stream("127.0.0.1", port, PATH))
    await asyncio.gather(*(one() for _ in range(streams)))
    for _, writer in connections:
        writer.write(start)
    loop = asyncio.get_running_loop()
    pids = group_pids(server_pid)
    t0 = loop.time()
    ticks = round((hold + 1.5) * 50)
    lag_max = 0.0
    cpu_from = wall_from = None
    client_from = time.process_time()
    for tick in range(ticks):
        due = t0 + tick * 0.02
        await asyncio.sleep(max(0.0, due - loop.time()))
        lag_max = max(lag_max, loop.time() - due) if tick > 5 else lag_max
        data = media[tick]
        for _, writer in connections:
            if not writer.is_closing():  # a server that gave up on a stream: Twilio stops too
                writer.write(data)
        if tick == 75:  # 1.5 s of warm-up, then the measured window
            cpu_from, wall_from = cpu_seconds(pids), time.monotonic()
    cpu = cpu_seconds(pids) - cpu_from
    wall = time.monotonic() - wall_from
    memory = rss_mb(pids)
    client_cpu = time.process_time() - client_from
    stopped_at = time.monotonic()
    for _, writer in connections:
        if not writer.is_closing():
            writer.write(stop)

    async def answer(reader):
        try:
            opcode, payload = await asyncio.wait_for(read_frame(reader), 60)
            return int(payload) if opcode == 1 else -1
        except (TimeoutError, asyncio.IncompleteReadError, ValueError, ConnectionError):
            return -1
    counts = await asyncio.gather(*(answer(reader) for reader, _ in connections))
    drain = time.monotonic() - stopped_at
    for _, writer in connections:
        writer.write(close_frame())
        writer.close()
    lost = sum(ticks - c for c in counts if c >= 0) + ticks * sum(1 for c in counts if c < 0)
    return {"streams": streams, "server_cpu_pct": round(100 * cpu / wall, 1),
            "cpu_ms_per_stream_s": round(1000 * cpu / wall / streams, 3),
            "rss_mb": round(memory, 1), "kb_per_stream": round(memory * 1024 / streams, 1),
            "frames_lost": lost, "drain_ms": round(drain * 1000), "processes": len(pids),
            "client_cpu_pct": round(100 * client_cpu / (ticks * 0.02), 1),
            "client_lag_max_ms": round(lag_max * 1000, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="250,1000")
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--json")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_asyncio_serve(args.serve))
        return 0
    import resource
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = []
    print(f"{'candidate':9} {'streams':>7} {'server CPU %':>12} {'ms CPU/stream-s':>15} "
          f"{'RSS MB':>7} {'KB/stream':>9} {'lost':>6} {'drain ms':>8} {'load CPU %':>10}")
    for streams in [int(n) for n in args.streams.split(",")]:
        for candidate in args.candidates.split(","):
            missing = [m for m in NEEDS.get(candidate, ()) if importlib.util.find_spec(m) is None]
            if missing:
                print(f"{candidate:9} {streams:7}  skipped: {', '.join(missing)} not installed "
                      "(pip install flask-sock gevent)")
                results.append({"candidate": candidate, "streams": streams,
                                "skipped": f"missing {missing}"})
                continue
            port = free_port()
            process = start_server(candidate, port, streams)
            try:
                figures = asyncio.run(run_load(port, streams, args.hold, process.pid))
            except Exception as exc:  # a candidate that falls over is a result too
                figures = {"streams": streams, "failed": f"{type(exc).__name__}: {exc}"}
            finally:
                stop_server(process)
            results.append({"candidate": candidate, **figures})
            if "failed" in figures:
                print(f"{candidate:9} {streams:7}  failed: {figures['failed'][:80]}")
                continue
            print(f"{candidate:9} {streams:7} {figures['server_cpu_pct']:12} "
                  f"{figures['cpu_ms_per_stream_s']:15} {figures['rss_mb']:7} "
                  f"{figures['kb_per_stream']:9} {figures['frames_lost']:6} "
                  f"{figures['drain_ms']:8} {figures['client_cpu_pct']:10}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "media_servers", "hold_s": args.hold,
                       "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
