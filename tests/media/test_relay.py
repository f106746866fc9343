"""The relay's pure parts: the signed settings a `start` must carry, and the audio conversions
between Twilio's 8 kHz µ-law and Plivo's L16 at 8 or 16 kHz."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gateway.media.relay import RelayRefused, from_app_audio, relay_settings, to_app_audio
from gateway.media.tokens import stream_token, token_key
from gateway.media.ulaw import ulaw_decode, ulaw_encode

KEY = token_key("twilio-token")
SETTINGS = json.dumps({"url": "wss://bot.example.com/s", "callSid": "CA1", "app": "bot"})


def parameters(text: str = SETTINGS, token: str | None = None) -> dict[str, str]:
    return {"relay0": text[:20], "relay1": text[20:],
            "relay_token": token if token is not None else stream_token(KEY, text)}


def test_signed_settings_are_read_back_from_their_pieces():
    assert relay_settings(KEY, parameters(), "CA1")["url"] == "wss://bot.example.com/s"


@pytest.mark.parametrize(("params", "call_sid", "reason"), [
    (parameters(token="forged"), "CA1", "no valid relay token"),
    (parameters(SETTINGS.replace("bot.example", "evil.example"), token=stream_token(
        KEY, SETTINGS)), "CA1", "no valid relay token"),
    (parameters(), "CA2", "for another call"),
    ({"relay_token": "x"}, "CA1", "no valid relay token"),
])
def test_settings_the_gateway_did_not_sign_are_refused(params, call_sid, reason):
    with pytest.raises(RelayRefused, match=reason):
        relay_settings(KEY, params, call_sid)


def tone(seconds: float = 0.02) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return ulaw_encode(8000 * np.sin(2 * np.pi * 440 * t))


def test_mulaw_passes_through_both_ways():
    audio = tone()
    assert to_app_audio(audio, "audio/x-mulaw;rate=8000") == audio
    assert from_app_audio(audio, "audio/x-mulaw", 8000) == audio


def test_l16_8k_is_16_bit_little_endian_and_comes_back_the_same():
    audio = tone()
    pcm = to_app_audio(audio, "audio/x-l16;rate=8000")
    assert len(pcm) == 2 * len(audio)
    assert np.array_equal(np.frombuffer(pcm, "<i2"), ulaw_decode(audio).astype(np.int16))
    assert from_app_audio(pcm, "audio/x-l16", 8000) == audio


def test_l16_16k_doubles_the_samples_and_halves_them_back_close_to_the_original():
    audio = tone(0.1)
    pcm = to_app_audio(audio, "audio/x-l16;rate=16000")
    assert len(pcm) == 4 * len(audio)
    back = ulaw_decode(from_app_audio(pcm, "audio/x-l16", 16000))
    original = ulaw_decode(audio)
    assert len(back) == len(original)
    assert np.abs(back - original).mean() < 0.1 * np.abs(original).mean()
