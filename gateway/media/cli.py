"""`gateway dtmf FILE`: the keys pressed in a WAV recording, one JSON object per line.

Reads 8 kHz G.711 µ-law WAVs (what Twilio records and streams) as they are, and 16-bit PCM WAVs
at any rate (resampled to 8 kHz with a windowed-sinc polyphase filter, then µ-law encoded as a
phone line would carry them); µ-law at another rate is decoded and resampled the same way. A
file with several channels (Twilio's dual-channel recordings: caller and callee) is heard one
channel at a time and each line says which channel (numbered from 1); a mono file's lines carry
no channel. Times are ms from the start of the file.
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
from dataclasses import dataclass

import numpy as np

from .dtmf import DtmfReceiver
from .tones import RATE
from .ulaw import ULAW_TO_LINEAR, ulaw_encode

FORMAT_PCM = 1
FORMAT_MULAW = 7
FORMAT_EXTENSIBLE = 0xFFFE
FEED_BYTES = 8000  # one second per feed: the receiver takes any length


class WavError(ValueError):
    """The file is not a WAV this command can read; the message says why."""


@dataclass(frozen=True)
class Wav:
    rate: int
    channels: list[np.ndarray]  # linear samples (16-bit scale), or µ-law bytes when `ulaw`
    ulaw: bool


def read_wav(data: bytes) -> Wav:
    """Parses a RIFF/WAVE file's `fmt ` and `data` chunks (PCM 16-bit or µ-law 8-bit)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a WAV file (no RIFF/WAVE header)")
    fmt = payload = None
    offset = 12
    while offset + 8 <= len(data):
        name, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        body = data[offset + 8:offset + 8 + size]
        if name == b"fmt ":
            fmt = body
        elif name == b"data":
            payload = body  # a truncated last chunk is read as far as it goes
        offset += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16:
        raise WavError("no valid 'fmt ' chunk")
    if payload is None:
        raise WavError("no 'data' chunk")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == FORMAT_EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the tag
    if channels < 1 or rate < 1:
        raise WavError(f"impossible format: {channels} channels at {rate} Hz")
    if tag == FORMAT_MULAW and bits == 8:
        frames = np.frombuffer(payload[:len(payload) - len(payload) % channels], np.uint8)
        split = [frames[c::channels] for c in range(channels)]
        if rate == RATE:
            return Wav(rate, split, ulaw=True)
        return Wav(rate, [ULAW_TO_LINEAR[s].astype(np.float64) for s in split], ulaw=False)
    if tag == FORMAT_PCM and bits == 16:
        usable = len(payload) - len(payload) % (2 * channels)
        frames = np.frombuffer(payload[:usable], "<i2").astype(np.float64)
        return Wav(rate, [frames[c::channels] for c in range(channels)], ulaw=False)
    raise WavError(f"unsupported encoding (format tag {tag}, {bits} bits): "
                   "use 8 kHz µ-law or 16-bit PCM")


def resample(samples: np.ndarray, rate_in: int, rate_out: int = RATE,
             zero_crossings: int = 12) -> np.ndarray:
    """Rational-ratio resampling: each output sample is the input under a Kaiser-windowed sinc
    low-pass (cut just below the lower Nyquist frequency), one filter phase per fractional
    position, all outputs of a chunk computed as one gather and one product."""
    if rate_in == rate_out or len(samples) == 0:
        return samples.astype(np.float64)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    cutoff = 0.5 * min(1.0, rate_out / rate_in) * 0.94  # cycles per input sample
    half = math.ceil(zero_crossings / (2 * cutoff))  # taps either side, in input samples
    taps = np.arange(-half + 1, half + 1)
    phases = np.arange(up) / up  # where an output falls between two input samples

    def kernel(tau: np.ndarray) -> np.ndarray:
        window = np.i0(8.0 * np.sqrt(np.clip(1 - (tau / half) ** 2, 0, None))) / np.i0(8.0)
        return 2 * cutoff * np.sinc(2 * cutoff * tau) * window

    filters = kernel(taps[None, :] - phases[:, None])  # (up, taps)
    padded = np.concatenate([np.zeros(half), samples, np.zeros(half + 1)])
    count = len(samples) * up // down
    out = np.empty(count)
    for start in range(0, count, 4096):
        k = np.arange(start, min(count, start + 4096))
        whole, phase = np.divmod(k * down, up)
        index = whole[:, None] + taps[None, :] + half
        out[k] = np.einsum("kt,kt->k", padded[index], filters[phase])
    return out


def channel_ulaw(wav: Wav, channel: int) -> bytes:
    samples = wav.channels[channel]
    if wav.ulaw:
        return samples.tobytes()
    return ulaw_encode(resample(samples, wav.rate))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gateway dtmf", description="Print the DTMF keys in a WAV file as JSON lines.")
    parser.add_argument("file", help="a WAV file: 8 kHz µ-law, or 16-bit PCM at any rate")
    args = parser.parse_args(argv)
    try:
        with open(args.file, "rb") as handle:
            wav = read_wav(handle.read())
    except (OSError, WavError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        print(f"gateway dtmf: {args.file}: {reason}", file=sys.stderr)
        return 1
    for channel in range(len(wav.channels)):
        receiver = DtmfReceiver()
        audio = channel_ulaw(wav, channel)
        digits = []
        for offset in range(0, len(audio), FEED_BYTES):
            digits += receiver.feed(audio[offset:offset + FEED_BYTES])
        for digit in digits + receiver.flush():
            line = {"digit": digit.digit, "start_ms": digit.start_ms, "end_ms": digit.end_ms}
            if len(wav.channels) > 1:
                line["channel"] = channel + 1
            print(json.dumps(line), flush=False)
    sys.stdout.flush()
    return 0
