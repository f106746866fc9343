"""The caller's audio on a Media Stream, and the recording files (pure: no servers)."""

from __future__ import annotations

import io
import itertools
import wave

import numpy as np
import pytest

from gateway.sim.audio import (
    DTMF,
    FRAME_SAMPLES,
    CallerAudio,
    key_tones,
    mp3_bytes,
    ulaw_decode,
    wav_bytes,
)
from tests.sim.dtmf_probe import keys_in


def frames(audio: CallerAudio, seconds: float, start: float = 0.0) -> list[bytes]:
    first = round(start * 8000)
    count = round(seconds * 8000 / FRAME_SAMPLES)
    return [audio.frame(first + i * FRAME_SAMPLES) for i in range(count)]


def test_key_presses_vary_like_real_phones_within_q23_and_q24() -> None:
    presses = [(1.0, "123"), (3.0, "#0*")]
    tones = key_tones(presses, seed=7)
    assert [t.key for t in tones] == list("123#0*")
    assert tones[0].start == 1.0 and tones[3].start == 3.0
    for tone, following in itertools.pairwise(tones):
        assert 0.05 <= tone.end - tone.start <= 0.15
        if following.start < 3.0 or tone.start >= 3.0:  # the same string of digits
            assert 0.05 <= following.start - tone.end <= 0.15
    sounds = [t.sound for t in tones]
    assert all(abs(s.low_offset) <= 0.015 and abs(s.high_offset) <= 0.015 for s in sounds)
    assert all(-3 <= s.low_dbm0 - s.high_dbm0 <= 6 for s in sounds)  # twist
    assert all(-25 <= level <= -3 for s in sounds for level in (s.low_dbm0, s.high_dbm0))
    assert key_tones(presses, seed=7) == tones  # reproducible
    assert key_tones(presses) == key_tones(presses)  # seeded by the presses without a seed
    assert key_tones(presses, seed=8) != tones


def test_every_key_is_decodable_after_ulaw_whatever_the_phone() -> None:
    keys = "".join(DTMF)
    for seed in range(6):
        tones = key_tones([(0.1, keys)], seed=seed)
        audio = CallerAudio(tones, [], seed=seed)
        assert keys_in(frames(audio, tones[-1].end + 0.1)) == keys


def test_frames_are_160_bytes_and_quiet_without_keys_or_speech() -> None:
    audio = CallerAudio([], [])
    frame = audio.frame(0)
    assert len(frame) == 160
    assert np.abs(ulaw_decode(frame)).max() < 200  # low-level line noise


def test_speech_is_loud_not_a_pure_tone_and_not_a_key() -> None:
    audio = CallerAudio([], [(0.0, 2.0)])
    payloads = frames(audio, 2.0)
    pcm = np.concatenate([ulaw_decode(p).astype(float) for p in payloads])
    assert np.sqrt(np.mean(pcm ** 2)) > 300
    spectrum = np.abs(np.fft.rfft(pcm[4000:8000]))
    peaks = np.sum(spectrum > spectrum.max() * 0.1)
    assert peaks > 10  # many harmonics, not one or two tones
    assert keys_in(payloads) == ""


@pytest.mark.parametrize("key", ["5", "*", "#"])
def test_a_key_pressed_during_speech_is_still_heard(key: str) -> None:
    audio = CallerAudio(key_tones([(0.5, key)]), [(0.0, 1.0)])
    assert key in keys_in(frames(audio, 1.0))


def test_a_tone_is_rendered_at_its_phones_level_and_twist() -> None:
    (tone,) = key_tones([(0.0, "1")], seed=3)
    audio = CallerAudio([tone], [])
    block = audio.pcm(0, 400).astype(float)  # 50 ms: inside the tone
    n = np.arange(400) / 8000
    low, high = tone.sound.frequencies
    levels = [20 * np.log10(2 * abs(np.dot(block, np.exp(-2j * np.pi * f * n))) / 400
                            / 32767) + 3.14 for f in (low, high)]
    assert abs(levels[0] - tone.sound.low_dbm0) < 0.6
    assert abs(levels[1] - tone.sound.high_dbm0) < 0.6


def test_wav_recording_is_a_valid_8khz_mono_file() -> None:
    with wave.open(io.BytesIO(wav_bytes(2.0))) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (1, 8000, 2)
        assert wav.getnframes() == 16000


def test_mp3_recording_is_a_sequence_of_mpeg_frames() -> None:
    data = mp3_bytes(1.0)
    assert len(data) % 144 == 0
    for offset in range(0, len(data), 144):
        header = data[offset:offset + 4]
        assert header[0] == 0xFF and header[1] & 0xE0 == 0xE0  # frame sync
        assert header[1] & 0x06 == 0x02  # layer III
    assert len(data) // 144 == 28  # 28 frames of 36 ms cover one second
