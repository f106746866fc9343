"""The DTMF keypad (ITU-T Q.23), signal levels in dBm0, and a key-tone generator.

One place for the frequencies and the level arithmetic that the simulator (a caller's keys),
the receiver's tests and the benchmarks share. Levels follow G.711: a full-scale sine is
+3.14 dBm0 (spandsp's `DBM0_MAX_SINE_POWER`), on the 16-bit scale of `gateway.media.ulaw`.
A tone's level is per frequency; twist is the low tone's level minus the high tone's, so a
positive twist is "normal" (the high tone weaker, as long lines make it) and a negative one is
"reverse" (Q.24 receivers accept 8 dB normal and 4 dB reverse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)  # the low group, Hz
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)  # the high group, Hz
KEYPAD = ("123A", "456B", "789C", "*0#D")  # KEYPAD[row][column]
KEYS = "".join(KEYPAD)
DTMF: dict[str, tuple[float, float]] = {
    key: (ROWS[r], COLUMNS[c]) for r, keys in enumerate(KEYPAD) for c, key in enumerate(keys)
}

FULL_SCALE_DBM0 = 3.14  # the level of a sine whose peak is FULL_SCALE
FULL_SCALE = 32767.0


def dbm0_to_amplitude(level_dbm0: float) -> float:
    """Peak amplitude (16-bit scale) of a sine at `level_dbm0`."""
    return FULL_SCALE * 10 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20)


def amplitude_to_dbm0(amplitude: float) -> float:
    """Level of a sine whose peak amplitude (16-bit scale) is `amplitude`."""
    return FULL_SCALE_DBM0 + 20 * math.log10(amplitude / FULL_SCALE)


def power_to_dbm0(mean_square: float) -> float:
    """Level of any signal from its mean square (a sine of peak A has mean square A²/2)."""
    return FULL_SCALE_DBM0 + 10 * math.log10(mean_square / (FULL_SCALE ** 2 / 2))


def white_noise(rng: np.random.Generator, count: int, level_dbm0: float) -> np.ndarray:
    """Gaussian white noise over 0-4 kHz whose total power is `level_dbm0`."""
    rms = FULL_SCALE / math.sqrt(2) * 10 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20)
    return rng.normal(0.0, rms, count)


@dataclass(frozen=True)
class KeyTone:
    """One key's tone pair as a phone sends it: levels per tone, frequency errors (fractions of
    the nominal frequency, 0.015 = +1.5 %), starting phases (radians) and a duration."""

    key: str
    duration_ms: float = 80.0
    low_dbm0: float = -10.0
    high_dbm0: float = -10.0
    low_offset: float = 0.0
    high_offset: float = 0.0
    low_phase: float = 0.0
    high_phase: float = 0.0

    @classmethod
    def at_level(cls, key: str, duration_ms: float, level_dbm0: float, twist_db: float = 0.0,
                 **more: float) -> KeyTone:
        """A tone whose low tone is at `level_dbm0` and high tone `twist_db` below it."""
        return cls(key.upper(), duration_ms, level_dbm0, level_dbm0 - twist_db, **more)

    @property
    def frequencies(self) -> tuple[float, float]:
        low, high = DTMF[self.key.upper()]
        return low * (1 + self.low_offset), high * (1 + self.high_offset)

    def wave(self, seconds: np.ndarray) -> np.ndarray:
        """The pair at `seconds` since the tone began (not gated by the duration)."""
        low, high = self.frequencies
        return (dbm0_to_amplitude(self.low_dbm0)
                * np.sin(2 * np.pi * low * seconds + self.low_phase)
                + dbm0_to_amplitude(self.high_dbm0)
                * np.sin(2 * np.pi * high * seconds + self.high_phase))

    def samples(self, rate: int = RATE) -> np.ndarray:
        """The whole tone at `rate` samples per second (float64, 16-bit scale)."""
        count = round(self.duration_ms * rate / 1000)
        return self.wave(np.arange(count) / rate)


def sequence(parts: list[KeyTone | float], rate: int = RATE) -> np.ndarray:
    """Tones and silences (a float is a pause in ms) one after another, as one signal."""
    chunks = [part.samples(rate) if isinstance(part, KeyTone)
              else np.zeros(round(part * rate / 1000)) for part in parts]
    return np.concatenate(chunks) if chunks else np.zeros(0)
