"""The DTMF receiver against ITU-T Q.24's figures, on synthesised key presses.

Every signal goes through a G.711 µ-law round trip and reaches the receiver in 20 ms chunks
(160 bytes, as Twilio sends them) after a random lead-in, so tones fall at random offsets
within the receiver's blocks; phases are random. These are short spot checks: the full sweep
over every key and many values is `benchmarks/bench_dtmf_quality.py`.
"""

from __future__ import annotations

import numpy as np
import pytest

from gateway.media.dtmf import Digit, DtmfReceiver, ReceiverBank
from gateway.media.tones import KEYS, KeyTone, sequence, white_noise
from gateway.media.ulaw import ulaw_encode
from gateway.sim.audio import speech_like

RNG = np.random.default_rng(20261130)


def press(key: str, ms: float = 60, level: float = -10.0, twist: float = 0.0,
          **offsets: float) -> KeyTone:
    """A key at random phases."""
    return KeyTone.at_level(key, ms, level, twist, low_phase=RNG.uniform(0, 2 * np.pi),
                            high_phase=RNG.uniform(0, 2 * np.pi), **offsets)


def line(parts: list[KeyTone | float], noise_dbm0: float | None = None) -> tuple[bytes, int]:
    """Tones and pauses after a random lead-in, µ-law encoded; returns the lead-in in samples."""
    lead = int(RNG.integers(80, 400))
    signal = np.concatenate([np.zeros(lead), sequence(parts), np.zeros(800)])
    if noise_dbm0 is not None:
        signal = signal + white_noise(RNG, len(signal), noise_dbm0)
    return ulaw_encode(signal), lead


def heard(data: bytes, chunk: int = 160) -> list[Digit]:
    receiver = DtmfReceiver()
    digits = []
    for offset in range(0, len(data), chunk):
        digits += receiver.feed(data[offset:offset + chunk])
    return digits + receiver.flush()


def keys(data: bytes) -> str:
    return "".join(d.digit for d in heard(data))


def test_every_key_is_heard_once_with_its_times() -> None:
    parts: list[KeyTone | float] = []
    for key in KEYS:
        parts += [press(key, 50), 50.0]
    data, lead = line(parts)
    digits = heard(data)
    assert "".join(d.digit for d in digits) == KEYS
    for index, digit in enumerate(digits):
        start = lead / 8 + index * 100
        assert abs(digit.start_ms - start) <= 2 and abs(digit.end_ms - (start + 50)) <= 2


@pytest.mark.parametrize(("low", "high"), [(0.015, 0.0), (-0.015, 0.0), (0.0, 0.015),
                                           (0.0, -0.015), (0.015, -0.015), (-0.015, 0.015)])
def test_tones_within_1_5_percent_are_accepted(low: float, high: float) -> None:
    for key in "1D5#":
        data, _ = line([press(key, 50, low_offset=low, high_offset=high)])
        assert keys(data) == key


@pytest.mark.parametrize(("low", "high"), [(0.035, 0.0), (-0.035, 0.0), (0.0, 0.035),
                                           (0.0, -0.035), (0.035, 0.035)])
def test_a_tone_3_5_percent_off_is_never_accepted(low: float, high: float) -> None:
    for key in "1D5#":  # 697 Hz at -3.5 % is the one spandsp still takes
        data, _ = line([press(key, 200, low_offset=low, high_offset=high)])
        assert keys(data) == ""


@pytest.mark.parametrize("twist", [8.0, -4.0])
def test_8_db_normal_and_4_db_reverse_twist_are_accepted(twist: float) -> None:
    for key in "1D5#0":
        data, _ = line([press(key, 50, level=-10.0, twist=twist)])
        assert keys(data) == key


def test_40_ms_is_always_heard_and_23_ms_never() -> None:
    for key in KEYS[::3]:
        for _ in range(3):
            data, _ = line([press(key, 40)])
            assert keys(data) == key
            data, _ = line([press(key, 23)])
            assert keys(data) == ""


def test_a_10_ms_interruption_is_bridged_and_a_40_ms_pause_splits() -> None:
    for key in "19#":
        tone = press(key, 60)
        data, _ = line([tone, 10.0, tone])
        assert keys(data) == key
        data, _ = line([press(key, 40), 40.0, press(key, 40)])
        assert keys(data) == key * 2


@pytest.mark.parametrize("level", [-3.0, -25.0])
def test_levels_from_minus_3_to_minus_25_dbm0_are_accepted(level: float) -> None:
    for key in "1D5#":
        data, _ = line([press(key, 50, level=level)])
        assert keys(data) == key


def test_minus_55_dbm0_is_never_accepted() -> None:
    data, _ = line([press(key, 200, level=-55.0) for key in "1D5#"])
    assert keys(data) == ""


def test_every_key_is_heard_at_6_db_snr() -> None:
    # Total tone power -7 dBm0 (two tones at -10); white noise over 0-4 kHz 6 dB below it.
    parts: list[KeyTone | float] = []
    for key in KEYS:
        parts += [press(key, 50), 60.0]
    data, _ = line(parts, noise_dbm0=-13.0)
    assert keys(data) == KEYS


@pytest.mark.parametrize("snr", [3.0, 0.0, -6.0, -20.0])
def test_no_wrong_digit_at_any_snr(snr: float) -> None:
    parts: list[KeyTone | float] = []
    for key in KEYS:
        parts += [press(key, 60), 60.0]
    data, _ = line(parts, noise_dbm0=-7.0 - snr)
    got = keys(data)
    assert set(got) <= set(KEYS)
    assert got == "".join(k for k in KEYS if k in got)  # only the keys pressed, in order


def chord(t: np.ndarray, notes: tuple[float, ...]) -> np.ndarray:
    """Notes with an instrument's harmonics and a little vibrato, each swelling and fading."""
    out = np.zeros_like(t)
    for index, note in enumerate(notes):
        vibrato = 0.004 * np.sin(2 * np.pi * 5.5 * t + index)
        swell = 0.5 + 0.5 * np.sin(2 * np.pi * 0.4 * t + 2 * index)
        for harmonic in (1, 2, 3, 4):
            out += swell * np.sin(2 * np.pi * harmonic * note * (t + vibrato / 5.5)) / harmonic
    return out


def test_no_digit_in_speech_music_or_noise() -> None:
    t = np.arange(8000 * 20) / 8000
    speech = speech_like(t)
    music = 2500 * chord(t, (698.46, 880.0, 1174.66, 1479.98))  # F5 A5 D6 F#6: near 697, 1477
    noise = white_noise(RNG, len(t), -15.0)
    for signal in (speech, music, noise, speech + noise / 4):
        assert keys(ulaw_encode(signal)) == ""


def test_a_digit_is_reported_within_30_ms_of_its_end() -> None:
    data, _ = line([press("7", 80)])
    receiver = DtmfReceiver()
    for offset in range(0, len(data), 160):
        digits = receiver.feed(data[offset:offset + 160])
        if digits:
            (digit,) = digits
            reported_ms = (offset + 160) / 8
            assert digit.digit == "7" and reported_ms - digit.end_ms <= 30 + 20
            return
    pytest.fail("no digit")


def test_the_bank_hears_what_single_receivers_hear() -> None:
    streams = {}
    for index in range(12):
        parts: list[KeyTone | float] = []
        for key in RNG.choice(list(KEYS), 5):
            parts += [press(str(key), float(RNG.integers(40, 90))), float(RNG.integers(40, 90))]
        streams[f"s{index}"] = line(parts, noise_dbm0=-30.0)[0]
    bank = ReceiverBank()
    for stream_id in streams:
        bank.open(stream_id)
    together: dict[str, list[Digit]] = {stream_id: [] for stream_id in streams}
    longest = max(len(d) for d in streams.values())
    for offset in range(0, longest, 160):
        frames = {sid: data[offset:offset + 160] for sid, data in streams.items()
                  if offset < len(data)}
        for sid, digits in bank.feed(frames).items():
            together[sid] += digits
    for sid in streams:
        together[sid] += bank.close(sid)
    assert together == {sid: heard(data) for sid, data in streams.items()}
    assert all(len(digits) == 5 for digits in together.values())


def test_chunk_sizes_do_not_change_what_is_heard() -> None:
    data, _ = line([press("3", 45), 45.0, press("A", 70)], noise_dbm0=-35.0)
    expected = heard(data)
    assert [d.digit for d in expected] == ["3", "A"]
    for chunk in (1, 7, 39, 41, 333, len(data)):
        assert heard(data, chunk) == expected


def test_empty_frames_are_harmless_and_reset_restarts_the_clock() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(b"") == [] and receiver.flush() == []
    data, _ = line([press("9", 60)])
    assert receiver.feed(data[:300]) == []
    receiver.reset()  # a gap: the half-heard start is dropped
    tail = ulaw_encode(np.concatenate([np.zeros(160), press("9", 60).samples(), np.zeros(800)]))
    digits = receiver.feed(tail)
    assert [(d.digit, d.start_ms) for d in digits] == [("9", 20)]


def test_a_key_still_held_at_the_end_is_flushed() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(ulaw_encode(np.concatenate([np.zeros(80), press("B", 500).samples()]))) \
        == []
    (digit,) = receiver.flush()
    assert (digit.digit, digit.start_ms, digit.end_ms) == ("B", 10, 510)


def test_ten_thousand_keys_in_a_burst() -> None:
    pattern: list[KeyTone | float] = []
    for key in KEYS:
        pattern += [KeyTone(key, 45), 45.0]
    data = ulaw_encode(np.tile(sequence(pattern), 625))  # 10,000 presses, 15 minutes
    receiver = DtmfReceiver()
    digits = receiver.feed(data) + receiver.flush()
    assert "".join(d.digit for d in digits) == KEYS * 625


def test_bad_calls_say_what_is_wrong_and_change_nothing() -> None:
    bank = ReceiverBank()
    bank.open("a")
    with pytest.raises(ValueError, match="already open"):
        bank.open("a")
    data, _ = line([press("5", 60)])
    with pytest.raises(KeyError, match="'b' is not open"):
        bank.feed({"a": data, "b": data})
    with pytest.raises(TypeError, match="must be bytes"):
        bank.feed({"a": "5"})  # type: ignore[dict-item]
    assert [d.digit for d in bank.feed({"a": data})["a"]] == ["5"]  # nothing was half-fed
    with pytest.raises(KeyError):
        bank.close("b")


def test_a_bank_fed_ragged_frames_hears_what_single_receivers_hear() -> None:
    # Streams joining late, sending uneven chunks (a backlog, a short last frame) in one feed.
    streams = {f"r{index}": line([press(key, 55), 50.0, press("0", 45)], noise_dbm0=-40.0)[0]
               for index, key in enumerate("1472")}
    sizes = {"r0": 160, "r1": 37, "r2": 480, "r3": 160}
    bank = ReceiverBank(capacity=1)  # grows as streams open
    together: dict[str, list[Digit]] = {sid: [] for sid in streams}
    offsets = dict.fromkeys(streams, 0)
    for step in range(400):
        if step == 3:
            bank.open("r3")  # joins late: its clock starts now
        for sid in ("r0", "r1", "r2"):
            if step == 0:
                bank.open(sid)
        frames = {}
        for sid, data in streams.items():
            if sid in bank and offsets[sid] < len(data):
                frames[sid] = data[offsets[sid]:offsets[sid] + sizes[sid]]
                offsets[sid] += sizes[sid]
        if not frames:
            break
        for sid, digits in bank.feed(frames).items():
            together[sid] += digits
    for sid in streams:
        together[sid] += bank.close(sid)
    assert together == {sid: heard(data, sizes[sid]) for sid, data in streams.items()}
    assert ["".join(d.digit for d in digits) for digits in together.values()] == \
        ["10", "40", "70", "20"]
