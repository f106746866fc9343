"""The embedded transcription engine: PocketSphinx in a child process, bounded, offline.

Real audio (the simulator's recording file, words spoken by espeak-ng), the real recogniser, real
child processes for an engine that hangs or fails.
"""

from __future__ import annotations

import shutil
import time

import pytest

from gateway.sim.audio import spoken_wav
from gateway.transcription import EmbeddedEngine, TranscriptionFailed, plivo_transcription


@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng (installed by scripts/test.sh) speaks the test's words")
def test_spoken_words_are_recognised_from_a_telephone_recording():
    wav = spoken_wav(5.0, ((0.5, 4.5, "hello this is john please call me back tomorrow"),))
    text = EmbeddedEngine().transcribe(wav)
    assert "tomorrow" in text.split()


def test_line_noise_alone_gives_no_words():
    assert EmbeddedEngine().transcribe(spoken_wav(2.0, ())) == ""


def test_a_file_that_is_not_a_wav_is_an_engine_failure():
    with pytest.raises(TranscriptionFailed) as failed:
        EmbeddedEngine().transcribe(b"ID3 this is an mp3, not a wav")
    assert failed.value.reason.startswith("Transcription engine failed: not a readable WAV")


def test_an_engine_that_hangs_is_killed_at_its_timeout():
    started = time.monotonic()
    with pytest.raises(TranscriptionFailed) as failed:
        EmbeddedEngine(("sh", "-c", "sleep 30", "engine"), timeout=1.0).transcribe(b"RIFF")
    assert failed.value.reason == "Transcription timed out after 1 s"
    assert time.monotonic() - started < 20  # the engine would have slept 30 s


def test_an_engine_that_cannot_start_is_reported():
    with pytest.raises(TranscriptionFailed) as failed:
        EmbeddedEngine(("/nonexistent/recogniser",)).transcribe(b"RIFF")
    assert failed.value.reason.startswith("Transcription engine could not start")


def test_plivos_error_form_keeps_every_name_and_drops_the_text():
    params = plivo_transcription(text="ignored", duration=-3, call_uuid="u", recording_id="r",
                                 error="Recording is empty")
    assert params == {"transcription": "", "transcription_charge": "0.00000",
                      "transcription_rate": "0.00000", "duration": "0", "call_uuid": "u",
                      "recording_id": "r", "error": "Recording is empty"}
