"""A small Goertzel DTMF decoder for tests: µ-law frames in, the keys heard out, in order."""

from __future__ import annotations

import math

import numpy as np

from gateway.sim.audio import COLUMNS, KEYPAD, ROWS, ulaw_decode

BLOCK = 160  # 20 ms


def goertzel_power(block: np.ndarray, freq: float, rate: int = 8000) -> float:
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in block:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def block_key(block: np.ndarray) -> str | None:
    energy = float(np.dot(block, block))
    if energy < 1e6:  # far below a -10 dBm0 tone pair
        return None
    rows = [goertzel_power(block, f) for f in ROWS]
    cols = [goertzel_power(block, f) for f in COLUMNS]
    r, c = int(np.argmax(rows)), int(np.argmax(cols))
    # each peak well above the rest of its group, and the pair holding most of the energy
    if sorted(rows)[-2] * 6 > rows[r] or sorted(cols)[-2] * 6 > cols[c]:
        return None
    if (rows[r] + cols[c]) * 2 / len(block) < 0.6 * energy:
        return None
    return KEYPAD[r][c]


def keys_in(payloads: list[bytes]) -> str:
    """Keys heard in consecutive 20 ms µ-law frames; a key counts once per press."""
    pcm = np.concatenate([ulaw_decode(p).astype(np.float64) for p in payloads])
    heard, previous = [], None
    for start in range(0, len(pcm) - BLOCK + 1, BLOCK):
        key = block_key(pcm[start:start + BLOCK])
        if key is not None and key != previous:
            heard.append(key)
        previous = key
    return "".join(heard)
