"""Configuration: read once from the environment into one typed, validated `Settings` object.

Missing or invalid settings stop the start with a message naming the variable. Secrets (the
Twilio auth token) are kept out of `repr` so they never reach a log line.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_STORE_URL = "sqlite:///gateway.db"
DEFAULT_MAPPINGS = "mappings"
DEFAULT_PORT = 8000
DEFAULT_WEBHOOK_BUDGET = 13.0  # seconds; Twilio gives up on a webhook after 15 s
DEFAULT_APP_MAX_FETCHES = 50  # per app, per web process: see gateway/app_side/guard.py
TWILIO_MAX_CALL_SECONDS = 14400  # Twilio ends any call after 4 h (Dial timeLimit's maximum)
TRANSCRIPTION_ENGINES = ("embedded", "twilio")
DEFAULT_TRANSCRIPTION_TIMEOUT = 60.0


class SettingsError(ValueError):
    """A setting is missing or invalid; `variable` names the environment variable."""

    def __init__(self, variable: str, reason: str):
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


@dataclass(frozen=True)
class Settings:
    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    public_url: str
    mappings_path: Path = Path(DEFAULT_MAPPINGS)
    store_url: str = DEFAULT_STORE_URL
    port: int = DEFAULT_PORT
    twilio_api_base_url: str | None = None
    webhook_budget: float = DEFAULT_WEBHOOK_BUDGET
    bind_host: str = "0.0.0.0"
    max_call_seconds: int = TWILIO_MAX_CALL_SECONDS
    transcription: str = "embedded"
    transcription_timeout: float = DEFAULT_TRANSCRIPTION_TIMEOUT
    transcription_command: tuple[str, ...] = ()
    media_url: str | None = None     # side streams' wss:// URL (None: from public_url)
    media_port: int | None = None    # the stream server's port (None: port + 1)
    app_max_fetches: int = DEFAULT_APP_MAX_FETCHES
    media_processes: int = 1         # side-stream processes sharing that port

    @property
    def stream_server_port(self) -> int:
        return self.media_port if self.media_port is not None else self.port + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(name, "is not set")
            return value

        sid = required("TWILIO_ACCOUNT_SID")
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
            raise SettingsError("TWILIO_ACCOUNT_SID", "must be AC followed by 32 hex digits")
        token = required("TWILIO_AUTH_TOKEN")
        public_url = _http_url("GATEWAY_PUBLIC_URL", required("GATEWAY_PUBLIC_URL"))
        api_base = env.get("TWILIO_API_BASE_URL", "").strip() or None
        if api_base:
            api_base = _http_url("TWILIO_API_BASE_URL", api_base)
        store_url = env.get("GATEWAY_STORE_URL", "").strip() or DEFAULT_STORE_URL
        if not re.match(r"^(sqlite:///.+|rediss?://.+)$", store_url):
            raise SettingsError("GATEWAY_STORE_URL", "must be sqlite:///PATH or "
                                "redis://HOST:PORT/DB")
        port_text = env.get("PORT", "").strip() or str(DEFAULT_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SettingsError("PORT", f"{port_text!r} is not a TCP port number")
        budget_text = env.get("GATEWAY_WEBHOOK_BUDGET", "").strip() or str(DEFAULT_WEBHOOK_BUDGET)
        try:
            budget = float(budget_text)
        except ValueError:
            raise SettingsError("GATEWAY_WEBHOOK_BUDGET", "must be a number of seconds") from None
        if not 0.5 <= budget <= 14.5:
            raise SettingsError("GATEWAY_WEBHOOK_BUDGET", "must be between 0.5 and 14.5 seconds "
                                "(Twilio waits 15 s)")
        bind_host = env.get("GATEWAY_BIND", "").strip() or "0.0.0.0"
        try:
            ipaddress.ip_address(bind_host)
        except ValueError:
            raise SettingsError("GATEWAY_BIND", f"{bind_host!r} is not an IP address to "
                                "listen on (e.g. 127.0.0.1)") from None
        max_call = env.get("GATEWAY_MAX_CALL_SECONDS", "").strip() or str(TWILIO_MAX_CALL_SECONDS)
        if not max_call.isdigit() or not 1 <= int(max_call) <= TWILIO_MAX_CALL_SECONDS:
            raise SettingsError("GATEWAY_MAX_CALL_SECONDS", f"{max_call!r} must be a whole number "
                                f"of seconds from 1 to {TWILIO_MAX_CALL_SECONDS} (Twilio ends "
                                "every call after 4 hours)")
        transcription = env.get("GATEWAY_TRANSCRIPTION", "").strip() or "embedded"
        if transcription not in TRANSCRIPTION_ENGINES:
            raise SettingsError("GATEWAY_TRANSCRIPTION", f"{transcription!r} must be one of "
                                + ", ".join(TRANSCRIPTION_ENGINES))
        timeout_text = (env.get("GATEWAY_TRANSCRIPTION_TIMEOUT", "").strip()
                        or str(DEFAULT_TRANSCRIPTION_TIMEOUT))
        try:
            transcription_timeout = float(timeout_text)
        except ValueError:
            transcription_timeout = -1.0
        if not 1.0 <= transcription_timeout <= 3600.0:
            raise SettingsError("GATEWAY_TRANSCRIPTION_TIMEOUT", "must be a number of seconds "
                                "from 1 to 3600")
        # Another offline recogniser (a command that prints the text of the WAV file it is
        # given), instead of the PocketSphinx one the gateway ships.
        command = tuple(shlex.split(env.get("GATEWAY_TRANSCRIPTION_COMMAND", "").strip()))
        media_url = env.get("GATEWAY_MEDIA_URL", "").strip() or None
        if media_url:
            parts = urlsplit(media_url)
            if parts.scheme not in ("wss", "ws") or not parts.netloc or parts.query \
                    or parts.fragment:
                # Twilio refuses a query string in a Stream url (members go in <Parameter>s).
                raise SettingsError("GATEWAY_MEDIA_URL", f"{media_url!r} must be an absolute "
                                    "wss:// URL without query (e.g. wss://gw.example.com"
                                    "/twilio/media)")
        media_port_text = env.get("GATEWAY_MEDIA_PORT", "").strip()
        if media_port_text and (not media_port_text.isdigit()
                                or not 0 < int(media_port_text) < 65536):
            raise SettingsError("GATEWAY_MEDIA_PORT", f"{media_port_text!r} is not a TCP port "
                                "number")
        if not media_port_text and int(port_text) == 65535:
            raise SettingsError("GATEWAY_MEDIA_PORT", "PORT is 65535: set the stream server's "
                                "port explicitly")
        processes_text = env.get("GATEWAY_MEDIA_PROCESSES", "").strip() or "1"
        if not processes_text.isdigit() or not 1 <= int(processes_text) <= 64:
            raise SettingsError("GATEWAY_MEDIA_PROCESSES", f"{processes_text!r} must be a number "
                                "of processes from 1 to 64")
        mappings = Path(env.get("GATEWAY_MAPPINGS", "").strip() or DEFAULT_MAPPINGS)
        if not mappings.exists():
            raise SettingsError("GATEWAY_MAPPINGS", f"{mappings} does not exist")
        fetches = env.get("GATEWAY_APP_MAX_FETCHES", "").strip() or str(DEFAULT_APP_MAX_FETCHES)
        if not fetches.isdigit() or not 1 <= int(fetches) <= 10_000:
            raise SettingsError("GATEWAY_APP_MAX_FETCHES", f"{fetches!r} must be a whole number "
                                "from 1 to 10000 (requests to one app in flight per process)")
        return cls(
            twilio_account_sid=sid, twilio_auth_token=token, public_url=public_url,
            mappings_path=mappings, store_url=store_url, port=int(port_text),
            twilio_api_base_url=api_base, webhook_budget=budget, bind_host=bind_host,
            max_call_seconds=int(max_call), app_max_fetches=int(fetches),
            transcription=transcription, transcription_timeout=transcription_timeout,
            transcription_command=command,
            media_url=media_url, media_port=int(media_port_text) if media_port_text else None,
            media_processes=int(processes_text),
        )


def _http_url(variable: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(variable, f"{value!r} must be an absolute http(s) URL without query")
    return value.rstrip("/")
