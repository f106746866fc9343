"""The keypad and the tone generator: the frequencies, levels and twist a test asks for."""

from __future__ import annotations

import numpy as np

from gateway.media.tones import (
    DTMF,
    KEYS,
    KeyTone,
    amplitude_to_dbm0,
    dbm0_to_amplitude,
    power_to_dbm0,
    sequence,
    white_noise,
)


def test_the_keypad_has_sixteen_keys_on_q23_frequencies() -> None:
    assert KEYS == "123A456B789C*0#D"
    assert DTMF["1"] == (697.0, 1209.0) and DTMF["D"] == (941.0, 1633.0)


def test_level_conversions_are_inverse_and_full_scale_is_3_14_dbm0() -> None:
    assert round(dbm0_to_amplitude(3.14)) == 32767
    assert abs(amplitude_to_dbm0(dbm0_to_amplitude(-25.0)) + 25.0) < 1e-9
    tone = KeyTone("5", 1000, low_dbm0=-10, high_dbm0=-200).samples()
    assert abs(power_to_dbm0(float(np.mean(tone ** 2))) + 10.0) < 0.01


def test_twist_lowers_the_high_tone_and_offsets_move_the_frequencies() -> None:
    tone = KeyTone.at_level("1", 1000, -10.0, twist_db=8.0, low_offset=0.015, high_offset=-0.015)
    assert tone.low_dbm0 == -10.0 and tone.high_dbm0 == -18.0
    spectrum = np.abs(np.fft.rfft(tone.samples()))  # 1 Hz bins over one second
    low, high = int(spectrum[:1000].argmax()), 1000 + int(spectrum[1000:].argmax())
    assert (low, high) == (round(697 * 1.015), round(1209 * 0.985))
    n = np.arange(8000)
    level = {f: abs(np.dot(tone.samples(), np.exp(-2j * np.pi * f * n / 8000)))
             for f in tone.frequencies}
    assert abs(20 * np.log10(level[697 * 1.015] / level[1209 * 0.985]) - 8.0) < 0.05


def test_white_noise_has_the_asked_total_power() -> None:
    noise = white_noise(np.random.default_rng(0), 80000, -20.0)
    assert abs(power_to_dbm0(float(np.mean(noise ** 2))) + 20.0) < 0.1


def test_a_sequence_is_tones_and_pauses_end_to_end() -> None:
    assert len(sequence([KeyTone("1", 50), 40.0, KeyTone("2", 60)])) == 8 * 150
