"""The beep Plivo plays for `playBeep`, generated once and served by the gateway.

A 0.25 s 1 kHz tone, 8 kHz 16-bit mono WAV (what Twilio plays on a phone line without
transcoding loss). Served without a signature check: Twilio fetches `<Play>` URLs with a plain GET,
unsigned, and the file holds nothing private.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import wave

from flask import Blueprint, Response

from ..translate.context import BEEP_PATH

RATE = 8000
SECONDS = 0.25
FREQUENCY = 1000.0
AMPLITUDE = 0.5

blueprint = Blueprint("sounds", __name__)


@functools.cache
def beep_wav() -> bytes:
    samples = int(RATE * SECONDS)
    ramp = int(RATE * 0.01)  # 10 ms fade in and out: no click at either end
    frames = bytearray()
    for n in range(samples):
        envelope = min(1.0, n / ramp, (samples - 1 - n) / ramp)
        value = AMPLITUDE * envelope * math.sin(2 * math.pi * FREQUENCY * n / RATE)
        frames += struct.pack("<h", int(value * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()


@blueprint.get(BEEP_PATH)
def beep() -> Response:
    return Response(beep_wav(), mimetype="audio/wav",
                    headers={"Cache-Control": "public, max-age=86400"})
