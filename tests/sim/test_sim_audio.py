"""The caller's audio on a Media Stream, and the recording files (pure: no servers)."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from gateway.sim.audio import (
    DTMF,
    FRAME_SAMPLES,
    GAP_SECONDS,
    TONE_SECONDS,
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


def test_key_presses_become_80ms_tones_60ms_apart() -> None:
    tones = key_tones([(1.0, "12")])
    assert [(t.key, t.start, round(t.end, 3)) for t in tones] == [
        ("1", 1.0, 1.0 + TONE_SECONDS), ("2", 1.0 + TONE_SECONDS + GAP_SECONDS,
                                          round(1.0 + 2 * TONE_SECONDS + GAP_SECONDS, 3))]


def test_every_key_is_decodable_after_ulaw() -> None:
    keys = "".join(DTMF)
    audio = CallerAudio(key_tones([(0.1, keys)]), [])
    assert keys_in(frames(audio, 0.2 + len(keys) * 0.14)) == keys


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


def test_tone_level_and_twist_are_within_receiver_limits() -> None:
    audio = CallerAudio(key_tones([(0.0, "1")]), [])
    block = audio.pcm(0, 480).astype(float)
    assert keys_in([audio.frame(i * 160) for i in range(10)]) == "1"
    rms_per_tone = np.sqrt(np.mean(block ** 2) / 2)
    level_dbm0 = 20 * np.log10(rms_per_tone * np.sqrt(2) / 32767) + 3.14
    assert -12 < level_dbm0 < -8


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
