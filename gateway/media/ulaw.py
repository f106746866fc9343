"""G.711 µ-law <-> linear PCM, numpy only (CPython's `audioop` is gone from Python 3.13).

Linear samples are on the 16-bit scale: decoding yields float64 values in ±32124 (the largest
µ-law magnitude), the same numbers `audioop.ulaw2lin(data, 2)` gives. Encoding works on the
14-bit value as CPython's `st_14linear2ulaw` does, so it is bit-exact with `audioop.lin2ulaw`
for every 16-bit input (a plain 16-bit encoder with bias 0x84 differs on a few hundred inputs).
"""

from __future__ import annotations

import numpy as np

MAX_LINEAR = 32124  # |decode(0x00)| = |decode(0x80)|

# One table for the 256 codes (Sun g711.c / spandsp `ulaw_to_linear`): complement the byte,
# rebuild the segment's biased magnitude, remove the bias, apply the sign.
_u = (~np.arange(256)) & 0xFF
_t = (((_u & 0x0F) << 3) + 0x84) << ((_u & 0x70) >> 4)
ULAW_TO_LINEAR = np.where(_u & 0x80, 0x84 - _t, _t - 0x84).astype(np.int16)
ULAW_TO_FLOAT32 = ULAW_TO_LINEAR.astype(np.float32)  # what the DTMF receiver reads through
ULAW_TO_LINEAR.flags.writeable = False
ULAW_TO_FLOAT32.flags.writeable = False
# Two codes at a time (read as one little-endian uint16): half the lookups, twice as fast.
_PAIRS = np.empty((65536, 2), np.float32)
_PAIRS[:, 0] = ULAW_TO_FLOAT32[np.arange(65536) & 0xFF]
_PAIRS[:, 1] = ULAW_TO_FLOAT32[np.arange(65536) >> 8]
_PAIRS.flags.writeable = False
_PAIRS_64 = _PAIRS.view(np.uint64).ravel()  # a pair as one 8-byte item: a plain 1-D gather
del _u, _t

_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def ulaw_decode(data: bytes) -> np.ndarray:
    """µ-law bytes -> float64 linear samples in ±32124 (16-bit scale, not normalised)."""
    return ULAW_TO_LINEAR[np.frombuffer(data, dtype=np.uint8)].astype(np.float64)


def ulaw_to_float32(codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """µ-law codes (uint8 array, any shape) -> float32 linear samples of the same shape (into
    `out` when given: a float32 array of as many elements); the receiver's hot path."""
    codes = np.ascontiguousarray(codes, np.uint8)
    direct = out is not None and out.dtype == np.float32 and out.flags.c_contiguous
    result = out.reshape(codes.shape) if direct else np.empty(codes.shape, np.float32)
    if codes.size % 2 or not codes.shape or codes.shape[-1] % 2:
        result[...] = ULAW_TO_FLOAT32[codes]
    else:
        np.take(_PAIRS_64, codes.view("<u2").ravel(), out=result.reshape(-1).view(np.uint64))
    if out is None or direct:
        return out if direct else result
    out.reshape(codes.shape)[...] = result
    return out


def ulaw_encode(samples: np.ndarray) -> bytes:
    """Linear samples on the 16-bit scale -> µ-law bytes. Floats are rounded to the nearest
    integer and everything is clipped to int16 first, so a hot signal saturates, never wraps."""
    values = np.asarray(samples)
    if values.dtype.kind == "f":
        values = np.round(values)
    value = np.clip(values, -32768, 32767).astype(np.int32) >> 2
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), 8159) + 0x21
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude, side="left")
    mantissa = (magnitude >> np.minimum(segment + 1, 8)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8).tobytes()
