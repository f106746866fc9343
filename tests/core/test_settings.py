"""Configuration from the environment: a missing or invalid setting stops the start, named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError

GOOD = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "secret-token",
        "GATEWAY_PUBLIC_URL": "https://gw.example.com/",
        "GATEWAY_MAPPINGS": str(Path(__file__).resolve().parents[2] / "mappings")}


def test_defaults_and_secret_kept_out_of_repr():
    settings = Settings.from_env(GOOD)
    assert settings.public_url == "https://gw.example.com"
    assert settings.store_url == "sqlite:///gateway.db" and settings.port == 8000
    assert settings.twilio_api_base_url is None and settings.webhook_budget == 13.0
    assert "secret-token" not in repr(settings)
    assert settings.max_call_seconds == 14400  # Twilio's 4 h, written on every Dial


def test_transcription_runs_offline_unless_told_otherwise():
    settings = Settings.from_env(GOOD)
    assert (settings.transcription, settings.transcription_timeout,
            settings.transcription_command) == ("embedded", 60.0, ())
    chosen = Settings.from_env({**GOOD, "GATEWAY_TRANSCRIPTION": "twilio",
                                "GATEWAY_TRANSCRIPTION_COMMAND": "my-asr --lang 'en US'"})
    assert chosen.transcription == "twilio"
    assert chosen.transcription_command == ("my-asr", "--lang", "en US")


def test_the_call_length_cap_can_be_lowered():
    assert Settings.from_env({**GOOD, "GATEWAY_MAX_CALL_SECONDS": "3600"}).max_call_seconds == 3600


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("TWILIO_ACCOUNT_SID", "", "is not set"),
    ("TWILIO_ACCOUNT_SID", "ACxyz", "AC followed by 32 hex digits"),
    ("TWILIO_AUTH_TOKEN", "", "is not set"),
    ("GATEWAY_PUBLIC_URL", "gw.example.com", "absolute http(s) URL"),
    ("GATEWAY_PUBLIC_URL", "https://gw.example.com/?x=1", "without query"),
    ("GATEWAY_STORE_URL", "postgres://db/x", "sqlite:///PATH or redis://HOST:PORT/DB"),
    ("PORT", "eighty", "not a TCP port number"),
    ("PORT", "70000", "not a TCP port number"),
    ("TWILIO_API_BASE_URL", "localhost:9000", "absolute http(s) URL"),
    ("GATEWAY_WEBHOOK_BUDGET", "20", "between 0.5 and 14.5"),
    ("GATEWAY_MAPPINGS", "/nonexistent/dir", "does not exist"),
    ("GATEWAY_MAX_CALL_SECONDS", "14401", "from 1 to 14400"),
    ("GATEWAY_MAX_CALL_SECONDS", "0", "from 1 to 14400"),
    ("GATEWAY_MAX_CALL_SECONDS", "2h", "whole number of seconds"),
    ("GATEWAY_TRANSCRIPTION", "whisper", "one of embedded, twilio"),
    ("GATEWAY_TRANSCRIPTION_TIMEOUT", "0.5", "from 1 to 3600"),
    ("GATEWAY_TRANSCRIPTION_TIMEOUT", "soon", "from 1 to 3600"),
    ("GATEWAY_MEDIA_URL", "https://gw.example.com/twilio/media", "wss:// URL without query"),
    ("GATEWAY_MEDIA_URL", "wss://gw.example.com/twilio/media?member=1", "without query"),
    ("GATEWAY_MEDIA_PORT", "0", "not a TCP port number"),
    ("GATEWAY_MEDIA_PROCESSES", "0", "from 1 to 64"),
])
def test_bad_setting_is_named(variable, value, reason):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**GOOD, variable: value})
    assert info.value.variable == variable and reason in str(info.value)


def test_side_streams_default_to_the_public_url_and_the_next_port():
    settings = Settings.from_env({**GOOD, "PORT": "9000"})
    assert settings.media_url is None and settings.stream_server_port == 9001
    chosen = Settings.from_env({**GOOD, "GATEWAY_MEDIA_URL": "wss://media.example.com/twilio/media",
                                "GATEWAY_MEDIA_PORT": "9443"})
    assert chosen.media_url == "wss://media.example.com/twilio/media"
    assert chosen.stream_server_port == 9443


def test_serve_refuses_to_start_and_names_the_variable(tmp_path):
    env = {k: v for k, v in GOOD.items() if k != "TWILIO_AUTH_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "serve"], env={
        **env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60,
        cwd=tmp_path)  # where the default store (and its job queue) would be
    assert result.returncode == 2
    assert "TWILIO_AUTH_TOKEN: is not set" in result.stderr


def test_the_side_stream_server_refuses_to_start_and_names_the_variable(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "media"], env={
        **GOOD, "GATEWAY_MEDIA_URL": "https://gw.example.com/twilio/media",
        "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "GATEWAY_MEDIA_URL" in result.stderr and "wss://" in result.stderr
