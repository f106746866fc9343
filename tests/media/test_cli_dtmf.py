"""`gateway dtmf FILE`, run as a command on WAV files the test writes."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from gateway.media.tones import KeyTone, sequence
from gateway.media.ulaw import ulaw_encode

PRESSES = [250.0, KeyTone("5", 60), 90.0, KeyTone("#", 80, low_dbm0=-14, high_dbm0=-18), 300.0]
EXPECTED = [("5", 250, 310), ("#", 400, 480)]


def run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "dtmf", str(path)],
                          capture_output=True, text=True, timeout=60)


def keys(result: subprocess.CompletedProcess) -> list[tuple]:
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [tuple(line.values()) for line in lines]


def close_to(found: list[tuple], expected: list[tuple], ms: int = 2) -> bool:
    return len(found) == len(expected) and all(
        f[0] == e[0] and abs(f[1] - e[1]) <= ms and abs(f[2] - e[2]) <= ms and f[3:] == e[3:]
        for f, e in zip(found, expected, strict=True))


def write_pcm(path: Path, rate: int, channels: list[np.ndarray]) -> None:
    frames = np.stack(channels, axis=1).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(len(channels))
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames.tobytes())


def write_ulaw(path: Path, data: bytes, rate: int = 8000) -> None:
    fmt = struct.pack("<HHIIHH", 7, 1, rate, rate, 1, 8) + struct.pack("<H", 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt \
        + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_an_8khz_ulaw_file_prints_one_json_line_per_key(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    write_ulaw(path, ulaw_encode(sequence(PRESSES)))
    result = run(path)
    assert json.loads(result.stdout.splitlines()[0]).keys() == {"digit", "start_ms", "end_ms"}
    assert close_to(keys(result), EXPECTED)


def test_pcm_at_44_1_khz_is_resampled(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    write_pcm(path, 44100, [sequence(PRESSES, rate=44100)])
    assert close_to(keys(run(path)), EXPECTED)


def test_pcm_at_16_khz_with_a_tone_above_8_khz_nyquist_is_filtered(tmp_path: Path) -> None:
    # 6.6 kHz would alias onto 1.4 kHz without the low-pass; it must not disturb the keys.
    signal = sequence(PRESSES, rate=16000)
    hiss = 3000 * np.sin(2 * np.pi * 6600 * np.arange(len(signal)) / 16000)
    path = tmp_path / "call.wav"
    write_pcm(path, 16000, [signal + hiss])
    assert close_to(keys(run(path)), EXPECTED)


def test_stereo_is_heard_channel_by_channel(tmp_path: Path) -> None:
    left = sequence(PRESSES)
    right = sequence([600.0, KeyTone("9", 70), 100.0])
    right = np.concatenate([right, np.zeros(len(left) - len(right))])
    path = tmp_path / "dual.wav"
    write_pcm(path, 8000, [left, right])
    found = keys(run(path))
    assert close_to(found, [(*EXPECTED[0], 1), (*EXPECTED[1], 1), ("9", 600, 670, 2)])


def test_a_silent_file_prints_nothing(tmp_path: Path) -> None:
    path = tmp_path / "quiet.wav"
    write_pcm(path, 8000, [np.zeros(8000)])
    result = run(path)
    assert (result.returncode, result.stdout) == (0, "")


def test_bad_files_say_why_and_exit_1(tmp_path: Path) -> None:
    cases = {
        "missing.wav": None,
        "text.wav": b"hello, not audio",
        "no-data.wav": b"RIFF\x04\x00\x00\x00WAVE",
    }
    float32 = tmp_path / "float.wav"
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 4) + bytes(4)
    float32.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    reasons = {"missing.wav": "No such file", "text.wav": "not a WAV file",
               "no-data.wav": "no valid 'fmt ' chunk", "float.wav": "unsupported encoding"}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    for name, reason in reasons.items():
        result = run(tmp_path / name)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("gateway dtmf: ") and reason in result.stderr
