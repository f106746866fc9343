"""`Simulator`: the pieces wired together (engine thread, webhook workers, REST server).

    with Simulator("http://127.0.0.1:8000", account_sid=AC, auth_token=TOKEN) as sim:
        transcript = sim.run(load_scenario("scenarios/two-callers.toml"))
        assert transcript.ok, transcript.errors

`run` returns once every call has ended and every callback was delivered, or at the scenario's
`duration` (calls still up are then hung up and their last callbacks get a short grace period).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from types import TracebackType
from urllib.parse import urljoin

from .engine import Options, Switchboard
from .loop import EventLoop
from .playback import Timing
from .rest import RestApi
from .scenario import Scenario
from .transcript import Event, Transcript
from .webhooks import Deliveries, Webhooks

DRAIN_SECONDS = 5.0  # after the last call ended: time left for callbacks still on their way


class Simulator:
    """A local Twilio for one gateway. Start it, run scenarios, stop it."""

    def __init__(self, gateway_url: str, *, account_sid: str | None = None,
                 auth_token: str | None = None, api_port: int = 0,
                 voice_path: str = "/twilio/voice", status_path: str | None = "/twilio/status",
                 webhook_timeout: float = 15.0, play_seconds: float = 1.0,
                 workers: int = 32, echo: Callable[[Event], None] | None = None):
        account_sid = account_sid or os.environ.get("TWILIO_ACCOUNT_SID")
        auth_token = auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
        if not account_sid or not auth_token:
            raise ValueError("the simulator needs the account SID and auth token the gateway "
                             "uses (arguments, or TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)")
        self.gateway_url = gateway_url.rstrip("/")
        self.account_sid = account_sid
        self.echo = echo
        self.transcript = Transcript(echo)
        self.loop = EventLoop()
        self.loop.on_error = self._internal_error
        self.webhooks = Webhooks(auth_token, self.transcript, timeout=webhook_timeout,
                                 workers=workers)
        self.deliveries = Deliveries(self.webhooks, on_failure=self._callback_failed)
        self.rest = RestApi(account_sid=account_sid, auth_token=auth_token, loop=self.loop,
                            switchboard=lambda: self.switchboard,
                            transcript=lambda: self.transcript, port=api_port)
        options = Options(
            account_sid=account_sid,
            voice_url=urljoin(self.gateway_url + "/", voice_path.lstrip("/")),
            status_url=(urljoin(self.gateway_url + "/", status_path.lstrip("/"))
                        if status_path else None),
            timing=Timing(play_seconds=play_seconds), api_base=self.rest.base_url)
        self.switchboard = Switchboard(options, self.loop, self.webhooks, self.deliveries,
                                       self.transcript)
        self._started = False

    @property
    def api_base_url(self) -> str:
        """Point twilio-python here: `client.api.base_url = sim.api_base_url`."""
        return self.rest.base_url

    @property
    def api_port(self) -> int:
        return self.rest.port

    def start(self) -> Simulator:
        if not self._started:
            self.loop.start()
            self.rest.start()
            self._started = True
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        # Stopping must not fail because the engine already did.
        with contextlib.suppress(Exception):
            self.loop.call(self.switchboard.end_all, "simulator stopped", timeout=5.0)
        self.deliveries.wait_idle(2.0)
        self._join_streams(2.0)
        self.rest.stop()
        self.loop.stop()
        self.webhooks.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def run(self, scenario: Scenario) -> Transcript:
        """Play a scenario in real time; return its transcript."""
        self.start()
        transcript = Transcript(self.echo)
        self.transcript = transcript
        self.webhooks.transcript = transcript
        transcript.record("run-start", scenario=scenario.source, calls=len(scenario.calls),
                          duration=scenario.duration, gateway=self.gateway_url,
                          api=self.api_base_url)
        self.loop.call(self.switchboard.begin, scenario, transcript)
        deadline = time.monotonic() + scenario.duration
        reason = "every call ended"
        while True:
            if self.loop.call(lambda: self.switchboard.done) and self.deliveries.pending == 0:
                break
            if time.monotonic() >= deadline:
                reason = "scenario duration reached"
                self.loop.call(self.switchboard.end_all, reason)
                break
            time.sleep(0.05)
        delivered = self.deliveries.wait_idle(min(DRAIN_SECONDS, self.webhooks.timeout + 1))
        self._join_streams(3.0)
        if not delivered:
            transcript.record("warning", code=0, reason=f"{self.deliveries.pending} callback(s) "
                              "still undelivered when the run ended")
        transcript.record("run-end", reason=reason, ok=transcript.ok,
                          errors=len(transcript.errors),
                          failed_calls=len(transcript.failed_calls))
        return transcript

    def _join_streams(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        streams = self.loop.call(lambda: [s for c in self.switchboard.calls.values()
                                          for s in c.streams.values()]) if self._started else []
        for stream in streams:
            stream.stop()
            stream.join(max(0.0, deadline - time.monotonic()))

    def _callback_failed(self, request, error) -> None:  # type: ignore[no-untyped-def]
        codes = {"conference-event": 16011, "status": 15003, "recording": 15003,
                 "stream-status": 15003, "action": error.code}
        code = codes.get(request.kind, error.code) if error.status else error.code
        self.transcript.record("error", call=request.call, code=code, reason=error.reason,
                               url=request.url, kind=request.kind)

    def _internal_error(self, exc: BaseException, where: str) -> None:
        self.transcript.record("error", code=0, kind="internal",
                               reason=f"simulator bug in {where}: {exc!r}")
