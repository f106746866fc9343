"""Transcribing recordings for a Plivo `transcriptionUrl`: one small interface, two engines.

    engine.transcribe(wav_bytes) -> text          # raises TranscriptionFailed(reason)

* `twilio`: Twilio's own transcription (`<Record transcribe transcribeCallback>`). It exists only
  for `<Record>` recordings of at most two minutes, and needs a paying Twilio account; its
  callback comes to the gateway, which turns it into Plivo's parameters. Conference and
  session recordings, which Twilio does not transcribe, use the embedded engine.
* `embedded` (the default: it works with no account and no network, for the demo, the tests and
  the simulator): PocketSphinx with the en-US model its wheel ships, run in a child process
  bounded by a timeout, on the recording the gateway fetches from Twilio's media URL.

Either way the app gets Plivo's transcription parameters (`plivo_transcription`), or Plivo's
error form (an empty `transcription` and the reason in `error`) when the recording failed, was
empty, or the engine failed or took too long.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TIMEOUT = 60.0  # seconds for one transcription (PocketSphinx needs ~1 s per 5 s of audio)
MAX_SECONDS = 4 * 3600  # Plivo transcribes recordings up to four hours
MAX_BYTES = 64 * 1024 * 1024  # a recording fetched for transcription is refused above this


class TranscriptionFailed(Exception):
    """The engine could not produce a text; `reason` goes to the app's `error` parameter."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class EmbeddedEngine:
    """An offline recogniser run as a child process: `command + [wav file]` prints the text.

    A child process, not a thread: an engine that hangs or crashes is killed at the timeout
    and never takes a gateway worker with it."""

    command: tuple[str, ...] = (sys.executable, "-m", "gateway.transcription.sphinx")
    timeout: float = DEFAULT_TIMEOUT
    name: str = "embedded"

    def transcribe(self, wav: bytes) -> str:
        with tempfile.NamedTemporaryFile(suffix=".wav", delete=False) as handle:
            handle.write(wav)
            path = handle.name
        try:
            # Its own process group: at the timeout the engine and anything it started go.
            child = subprocess.Popen([*self.command, path], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True, start_new_session=True)
        except OSError as exc:
            os.unlink(path)
            raise TranscriptionFailed(f"Transcription engine could not start: {exc.strerror}") \
                from None
        try:
            out, err = child.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            raise TranscriptionFailed(f"Transcription timed out after {self.timeout:g} s") \
                from None
        finally:
            os.unlink(path)
        if child.returncode != 0:
            last = (err.strip().splitlines() or ["no message"])[-1][:200]
            raise TranscriptionFailed(f"Transcription engine failed: {last}")
        return " ".join(out.split())


def engine_from(command: Sequence[str] | None, timeout: float) -> EmbeddedEngine:
    return EmbeddedEngine(tuple(command), timeout) if command else EmbeddedEngine(timeout=timeout)


def plivo_transcription(*, text: str, duration: int, call_uuid: str, recording_id: str,
                        error: str = "") -> dict[str, str]:
    """The parameters hosted Plivo sends a transcriptionUrl (docs: "Parameters sent to the
    transcription URL"). The gateway charges nothing, so charge and rate are zero."""
    return {
        "transcription": "" if error else text,
        "transcription_charge": "0.00000",
        "transcription_rate": "0.00000",
        "duration": str(max(0, duration)),
        "call_uuid": call_uuid,
        "recording_id": recording_id,
        "error": error,
    }


__all__ = ["DEFAULT_TIMEOUT", "EmbeddedEngine", "TranscriptionFailed", "engine_from",
           "plivo_transcription"]
