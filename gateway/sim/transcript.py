"""The record of one simulated run: every request sent and answer received, every conference
event, REST call, stream message summary, what each caller heard, and how each call ended.

Events are plain dicts with a `type` and `t` (seconds since the run started), so that the CLI can
print them one JSON object per line and tests can filter them:

    transcript.events(type="heard", call="alice")   # `events` is a list you can also call
    transcript.heard("alice")                       # [(kind, detail), ...]
    transcript.ok, transcript.errors                # errors = events of type "error"
    transcript.failed_calls                         # events of type "call-failed"

A run is ok when it has no error and no failed call. A call fails when Twilio reports an error
(an "error" event) or when the server that answered marked its TwiML as an apology for a call it
could not serve: the `Gateway-Call-Failed` response header (Twilio itself reads only the body
and Content-Type; see docs/simulator.md). The caller still hears the apology, as on Twilio.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]

CALL_FAILED_HEADER = "Gateway-Call-Failed"


class EventList(list[Event]):
    """A list of events that can also be called to filter it: `events(type="heard", call="a")`."""

    def __call__(self, type: str | None = None, **match: Any) -> list[Event]:
        return [e for e in self
                if (type is None or e.get("type") == type)
                and all(e.get(key) == value for key, value in match.items())]


class Transcript:
    """Thread-safe: the engine, the webhook workers, the REST server and streams all record."""

    def __init__(self, echo: Callable[[Event], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._t0 = clock()
        self._echo = echo
        self.events = EventList()

    def restart_clock(self) -> None:
        self._t0 = self._clock()

    def elapsed(self) -> float:
        return self._clock() - self._t0

    def record(self, type: str, **fields: Any) -> Event:
        with self._lock:
            event: Event = {"type": type, "t": round(self._clock() - self._t0, 3), **fields}
            self.events.append(event)
            if self._echo is not None:
                self._echo(event)
        return event

    @property
    def errors(self) -> list[Event]:
        return self.events(type="error")

    @property
    def failed_calls(self) -> list[Event]:
        return self.events(type="call-failed")

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_calls

    def heard(self, call: str) -> list[tuple[str, str]]:
        """What `call` heard, in order: [(kind, detail), ...]."""
        return [(e["kind"], e["detail"]) for e in self.events(type="heard", call=call)]

    def call_end(self, call: str) -> Event | None:
        ends = self.events(type="call-end", call=call)
        return ends[-1] if ends else None

    def json_lines(self) -> str:
        with self._lock:
            return "".join(json.dumps(e, sort_keys=False) + "\n" for e in self.events)
