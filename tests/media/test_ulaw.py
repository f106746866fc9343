"""G.711 µ-law: bit-exact with CPython's (deprecated) audioop, which we no longer need."""

from __future__ import annotations

import warnings

import numpy as np

from gateway.media.ulaw import MAX_LINEAR, ulaw_decode, ulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # only to check ours against CPython's


def test_encoder_matches_audioop_for_every_16_bit_sample() -> None:
    every = np.arange(-32768, 32768, dtype=np.int16)
    assert ulaw_encode(every) == audioop.lin2ulaw(every.tobytes(), 2)


def test_decoder_matches_audioop_for_every_byte() -> None:
    every = bytes(range(256))
    decoded = ulaw_decode(every)
    assert decoded.dtype == np.float64
    assert decoded.astype(np.int16).tobytes() == audioop.ulaw2lin(every, 2)
    assert np.abs(decoded).max() == MAX_LINEAR


def test_floats_are_rounded_and_hot_signals_saturate_instead_of_wrapping() -> None:
    assert ulaw_encode(np.array([99.6])) == ulaw_encode(np.array([100], np.int16))
    assert ulaw_encode(np.array([1e6, -1e6])) == ulaw_encode(np.array([32767, -32768]))


def test_empty_input_gives_empty_output() -> None:
    assert ulaw_encode(np.zeros(0)) == b""
    assert ulaw_decode(b"").shape == (0,)
