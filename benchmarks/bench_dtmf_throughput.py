"""DTMF receiver throughput: real-time 8 kHz channels per CPU core.

Ours: a `ReceiverBank` of N streams fed as a server feeds it, one 20 ms µ-law frame (160 bytes)
per stream per call, every stream in one `feed`. The audio is realistic: each stream plays one
of 32 pre-rendered minutes of a caller (line noise, speech-like talk, a key press every couple
of seconds, through µ-law), from its own offset. CPU time is process time with BLAS pinned to
one thread, so "per core" is honest: channels = N × audio seconds / CPU seconds.

spandsp (Debian's libspandsp2, `dtmf_rx`, when installed): one channel at a time, as a C
receiver runs, on the same audio, called through ctypes with one second (8000 samples) per
call so that the Python call overhead stays out of its figure (a second figure with 160-sample
calls shows what that overhead costs).

    .venv/bin/python -m benchmarks.bench_dtmf_throughput [--streams 1000,5000,20000] [--seconds 10]
"""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import ctypes  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.bench_dtmf_quality import Spandsp, spandsp_or_none  # noqa: E402
from gateway.media.dtmf import ReceiverBank  # noqa: E402
from gateway.media.tones import KEYS, RATE, KeyTone, white_noise  # noqa: E402
from gateway.media.ulaw import ULAW_TO_LINEAR, ulaw_encode  # noqa: E402
from gateway.sim.audio import speech_like  # noqa: E402

FRAME = 160
POOL = 32
POOL_SECONDS = 60


def caller(seconds: int, rng: np.random.Generator, keys: bool = True) -> bytes:
    """A caller's minute: noise, talk spurts and (with `keys`) a key every 1-3 s."""
    count = seconds * RATE
    t = np.arange(count) / RATE
    signal = white_noise(rng, count, rng.uniform(-65, -45))
    talking = (np.sin(2 * np.pi * rng.uniform(0.05, 0.15) * t + rng.uniform(0, 6)) > 0.3)
    signal += np.where(talking, speech_like(t) * rng.uniform(0.3, 1.5), 0.0)
    at = rng.uniform(0.2, 1.0) if keys else seconds
    while at < seconds - 0.3:
        tone = KeyTone.at_level(str(rng.choice(list(KEYS))), rng.uniform(50, 120),
                                rng.uniform(-20, -5), rng.uniform(-3, 6))
        start = int(at * RATE)
        samples = tone.samples()
        signal[start:start + len(samples)] += samples
        at += rng.uniform(1.0, 3.0)
    return ulaw_encode(signal)


def ours(streams: int, seconds: float, pool: list[bytes]) -> tuple[float, int]:
    """CPU seconds to hear `seconds` of audio on `streams` streams, and the digits heard."""
    bank = ReceiverBank(capacity=streams)
    ids = [f"MZ{i:032x}" for i in range(streams)]
    for stream_id in ids:
        bank.open(stream_id)
    rng = np.random.default_rng(1)
    sources = [pool[i % len(pool)] for i in range(streams)]
    offsets = rng.integers(0, POOL_SECONDS * RATE // FRAME - 1, streams) * FRAME
    ticks = int(seconds * RATE / FRAME)
    digits = 0
    cpu = 0.0
    for tick in range(ticks):
        frames = {}
        for index, stream_id in enumerate(ids):
            at = (offsets[index] + tick * FRAME) % (POOL_SECONDS * RATE - FRAME)
            frames[stream_id] = sources[index][at:at + FRAME]
        started = time.process_time()
        found = bank.feed(frames)
        cpu += time.process_time() - started
        digits += sum(len(d) for d in found.values())
    return cpu, digits


def theirs(spandsp: Spandsp, seconds: float, pool: list[bytes], chunk: int) -> float:
    """CPU seconds per second of audio for spandsp, one channel at a time."""
    lib = spandsp.lib
    total_cpu, total_audio = 0.0, 0.0
    buffer = ctypes.create_string_buffer(128)
    for data in pool[:8]:
        pcm = np.ascontiguousarray(ULAW_TO_LINEAR[np.frombuffer(data, np.uint8)])
        pcm = pcm[:int(seconds * RATE)] if seconds < POOL_SECONDS else pcm
        state = lib.dtmf_rx_init(None, None, None)
        base = pcm.ctypes.data
        step = ctypes.sizeof(ctypes.c_int16)
        pointers = [ctypes.cast(base + offset * step, ctypes.POINTER(ctypes.c_int16))
                    for offset in range(0, len(pcm), chunk)]
        started = time.process_time()
        for pointer in pointers:
            lib.dtmf_rx(state, pointer, chunk)
            lib.dtmf_rx_get(state, buffer, 127)
        total_cpu += time.process_time() - started
        total_audio += len(pcm) / RATE
        lib.dtmf_rx_free(state)
    return total_cpu / total_audio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="1000,5000,20000")
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per stream")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    pools = {"a key every 1-3 s": [caller(POOL_SECONDS, rng) for _ in range(POOL)],
             "talk and noise, no keys": [caller(POOL_SECONDS, rng, keys=False)
                                         for _ in range(POOL // 4)]}
    print("| receiver | audio | streams | audio per stream | CPU s | "
          "real-time channels per core |")
    print("|---|---|---|---|---|---|")
    for label, pool in pools.items():
        for streams in (int(s) for s in args.streams.split(",")):
            cpu, digits = ours(streams, args.seconds, pool)
            print(f"| ours (ReceiverBank, 20 ms frames) | {label} | {streams} | "
                  f"{args.seconds:.0f} s | {cpu:.2f} | {streams * args.seconds / cpu:,.0f} "
                  f"({digits} digits) |", flush=True)
    pool = pools["a key every 1-3 s"]
    spandsp = spandsp_or_none()
    if spandsp is None:
        print("| spandsp | - | - | - | - | not installed (apt-get install libspandsp2) |")
    else:
        for chunk in (8000, FRAME):
            per_second = theirs(spandsp, POOL_SECONDS, pool, chunk)
            print(f"| spandsp dtmf_rx, one channel, {chunk}-sample calls | a key every 1-3 s | "
                  f"1 | 8 x 60 s | {per_second * 480:.2f} | {1 / per_second:,.0f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
