"""The embedded engine's child process: `python -m gateway.transcription.sphinx FILE.wav`.

Reads a WAV (Twilio serves 8 kHz 16-bit mono; any rate and channel count is accepted), brings
it to the 16 kHz mono the en-US model expects, decodes it with PocketSphinx and prints the text
on stdout. The model comes from the pocketsphinx wheel itself: nothing is downloaded.
Exit status 2 with a reason on stderr when the file is not a WAV it can read.
"""

from __future__ import annotations

import sys
import wave

import numpy as np

MODEL_RATE = 16000


def read_wav(path: str) -> np.ndarray:
    """16-bit PCM samples at 16 kHz mono."""
    with wave.open(path, "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{wav.getsampwidth() * 8}-bit audio: only 16-bit PCM is read")
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != MODEL_RATE and len(samples):
        # Linear interpolation is enough for speech band-limited by the phone line (<4 kHz).
        positions = np.arange(0, len(samples), rate / MODEL_RATE)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.asarray(samples, dtype=np.int16)


def transcribe(samples: np.ndarray) -> str:
    from pocketsphinx import Decoder  # imported here: ~1 s, only in the child process

    decoder = Decoder(samprate=MODEL_RATE, loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw(samples.tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis is not None else ""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gateway.transcription.sphinx FILE.wav", file=sys.stderr)
        return 2
    try:
        samples = read_wav(argv[0])
    except (OSError, EOFError, ValueError, wave.Error) as exc:
        print(f"not a readable WAV file: {exc}", file=sys.stderr)
        return 2
    print(transcribe(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
