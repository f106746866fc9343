"""What a simulated caller sounds like on a Media Stream, and the recording files (pure numpy).

`CallerAudio` renders the caller's inbound track as 8 kHz G.711 µ-law, 160 samples (20 ms) per
frame: line noise, a speech-like signal while the caller talks (several harmonics of a gliding
pitch under a syllabic envelope, never a pure tone), and in-band DTMF for each key press.

Key presses vary as real phones send them, always within ITU-T Q.23 (the sender: the frequency
pairs, ±1.8 % frequency tolerance) and inside what a Q.24 receiver must accept (AT&T column:
±1.5 %, twist 8 dB normal / 4 dB reverse, -3 to -25 dBm0 per tone, 40 ms tones and pauses).
Each call's phone has its own level (-16 to -4 dBm0 for the low tone), twist (3 dB reverse to
6 dB normal), frequency errors (within ±1.5 % per tone) and starting phases; each key press
lasts 50-150 ms with 50-150 ms between presses (a dialler's 50 ms to a thumb's 150), its level
wobbling by ±0.5 dB. The line's noise is -68 to -55 dBm0. Everything is drawn from a random
generator seeded by the call (`key_tones`' seed, `CallerAudio`'s seed), so a scenario replays
identically. See docs/simulator.md, "Caller tones".

The µ-law codec and the keypad live in `gateway.media` (one copy in the codebase). `wav_bytes`
and `mp3_bytes` build small but valid files for the simulated Recordings resource; `spoken_wav`
puts what a caller said into one, spoken by espeak-ng (a system package; without it, the
speech-like signal stands in for the words).
"""

from __future__ import annotations

import io
import math
import subprocess
import wave
import zlib
from dataclasses import dataclass

import numpy as np

from gateway.media.tones import DTMF, RATE, KeyTone, white_noise
from gateway.media.ulaw import ulaw_decode, ulaw_encode

__all__ = ["DTMF", "FRAME_SAMPLES", "RATE", "CallerAudio", "Tone", "key_tones", "mp3_bytes",
           "speech_like", "ulaw_decode", "ulaw_encode", "wav_bytes"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz, the frame size Twilio sends
# What a phone's key presses may be (see the module docstring): Q.23 senders, Q.24 receivers.
TONE_MS = (50.0, 150.0)
GAP_MS = (50.0, 150.0)
LOW_TONE_DBM0 = (-16.0, -4.0)
TWIST_DB = (-3.0, 6.0)  # low tone minus high tone: positive is "normal" (high tone weaker)
FREQUENCY_ERROR = 0.015
LEVEL_WOBBLE_DB = 0.5
LINE_NOISE_DBM0 = (-68.0, -55.0)


@dataclass(frozen=True)
class Tone:
    """One key press as heard on the line: [start, end) in seconds of scenario time, and the
    tone pair the caller's phone sends for it."""

    key: str
    start: float
    end: float
    sound: KeyTone | None = None  # None: both tones at -10 dBm0, exact frequencies

    def samples(self, t: np.ndarray) -> np.ndarray:
        """The tone at scenario times `t` (zero outside [start, end))."""
        sound = self.sound or KeyTone(self.key)
        inside = (t >= self.start) & (t < self.end)
        return np.where(inside, sound.wave(t - self.start), 0.0)


def key_tones(presses: list[tuple[float, str]], seed: int | None = None) -> list[Tone]:
    """Scenario key presses (at, digits) -> the tones one phone sends for them, varied within
    Q.23/Q.24 (see the module docstring). Without a seed the presses themselves seed it, so the
    same scenario always sounds the same."""
    if seed is None:
        seed = zlib.crc32(repr(sorted(presses)).encode())
    rng = np.random.default_rng(seed)
    level = rng.uniform(*LOW_TONE_DBM0)
    twist = rng.uniform(*TWIST_DB)
    low_error, high_error = rng.uniform(-FREQUENCY_ERROR, FREQUENCY_ERROR, 2)
    tones = []
    for at, digits in presses:
        start = at
        for key in digits.upper():
            length = rng.uniform(*TONE_MS) / 1000
            wobble = rng.uniform(-LEVEL_WOBBLE_DB, LEVEL_WOBBLE_DB)
            low_phase, high_phase = rng.uniform(0, 2 * math.pi, 2)
            sound = KeyTone(key, length * 1000, level + wobble, level + wobble - twist,
                            float(low_error), float(high_error), float(low_phase),
                            float(high_phase))
            tones.append(Tone(key, start, start + length, sound))
            start += length + rng.uniform(*GAP_MS) / 1000
    return tones


class CallerAudio:
    """Renders one caller's inbound audio; frames must be asked for in increasing order."""

    def __init__(self, tones: list[Tone], speech: list[tuple[float, float]], seed: int = 0):
        self.tones = tones
        self.speech = speech
        self._noise = np.random.default_rng(seed)
        self.noise_dbm0 = float(self._noise.uniform(*LINE_NOISE_DBM0))

    def pcm(self, first_sample: int, count: int = FRAME_SAMPLES) -> np.ndarray:
        n = np.arange(first_sample, first_sample + count)
        t = n / RATE
        signal = white_noise(self._noise, count, self.noise_dbm0)
        start, end = t[0], t[-1] + 1 / RATE
        for s_from, s_to in self.speech:
            if s_from < end and s_to > start:
                inside = (t >= s_from) & (t < s_to)
                signal += np.where(inside, speech_like(t - s_from), 0.0)
        for tone in self.tones:
            if tone.start < end and tone.end > start:
                signal += tone.samples(t)
        return np.clip(np.round(signal), -32768, 32767).astype(np.int16)

    def frame(self, first_sample: int) -> bytes:
        """160 µ-law bytes starting at `first_sample` (sample 0 = scenario time 0)."""
        return ulaw_encode(self.pcm(first_sample))


def speech_like(t: np.ndarray) -> np.ndarray:
    """A voiced, vowel-like signal: 16 harmonics of a gliding pitch, shaped by three formants,
    under a ~4 Hz syllabic envelope. `t` is seconds since the talker started."""
    # Pitch glides between about 95 and 165 Hz; its phase is the closed-form integral of f0.
    f0 = 130 + 25 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 1.9 * t)
    phase = 2 * np.pi * (130 * t - 25 / (2 * np.pi * 0.7) * np.cos(2 * np.pi * 0.7 * t)
                         - 10 / (2 * np.pi * 1.9) * np.cos(2 * np.pi * 1.9 * t))
    out = np.zeros_like(t)
    for k in range(1, 17):
        freq = k * f0
        weight = sum(np.exp(-(((freq - centre) / width) ** 2))
                     for centre, width in ((550, 250), (1500, 400), (2500, 500))) + 0.05
        out += np.where(freq < 3800, weight * np.sin(k * phase), 0.0) / k ** 0.5
    envelope = np.sin(np.pi * 4.3 * t) ** 2 * (0.65 + 0.35 * np.sin(2 * np.pi * 0.9 * t + 1.0))
    return 2200.0 * out * envelope


def wav_bytes(seconds: float) -> bytes:
    """A mono 8 kHz 16-bit PCM WAV of quiet line noise, `seconds` long (at most 60 s)."""
    return _wav(_noise(seconds))


def _noise(seconds: float) -> np.ndarray:
    count = int(RATE * max(0.1, min(seconds, 60.0)))
    return white_noise(np.random.default_rng(1), count, -65.0).round().astype(np.int16)


def spoken(text: str) -> np.ndarray | None:
    """`text` spoken by espeak-ng at 8 kHz, or None when espeak-ng is not installed."""
    try:
        done = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "--stdout", text],
                              capture_output=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    with wave.open(io.BytesIO(done.stdout)) as voice:
        rate = voice.getframerate()
        samples = np.frombuffer(voice.readframes(voice.getnframes()), dtype="<i2")
    positions = np.arange(0, len(samples), rate / RATE)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.int16)


def spoken_wav(seconds: float, speech: tuple[tuple[float, float, str], ...]) -> bytes:
    """A recording `seconds` long with each (start, end, text) said from `start` on: the text
    spoken by espeak-ng, else the speech-like signal for start..end."""
    signal = _noise(seconds).astype(np.float64)
    for start, end, text in speech:
        first = int(max(0.0, start) * RATE)
        if first >= len(signal):
            continue
        voice = spoken(text) if text else None
        if voice is None:
            t = np.arange(int((end - start) * RATE)) / RATE
            voice = speech_like(t)
        part = voice[:len(signal) - first]
        signal[first:first + len(part)] += part
    return _wav(np.clip(np.round(signal), -32768, 32767).astype(np.int16))


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


# MPEG-1 Layer III, 32 kbit/s, 32 kHz, mono, no CRC: 144-byte frames of 1152 samples (36 ms).
# An all-zero side information block decodes as silence, so header + zeros is a valid frame.
_MP3_HEADER = bytes((0xFF, 0xFB, 0x18, 0xC0))
_MP3_FRAME = _MP3_HEADER + bytes(140)
_MP3_FRAME_SECONDS = 1152 / 32000


def mp3_bytes(seconds: float) -> bytes:
    """A silent MP3 about `seconds` long (at most 60 s)."""
    frames = max(1, math.ceil(max(0.1, min(seconds, 60.0)) / _MP3_FRAME_SECONDS))
    return _MP3_FRAME * frames
