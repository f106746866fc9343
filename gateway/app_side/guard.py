"""Per-app limits on the voice path: how many fetches one app may have in flight, and a circuit
breaker that answers at once while an app is known to be down.

Every web process serves many apps from one pool of connections and greenlets (or threads). An
app that hangs would otherwise gather ever more of them, each waiting out Twilio's budget; one
that is down would make every caller wait for a connect timeout. `AppGuard.admit` is asked
before each fetch Twilio waits on, keyed by the app and the origin (scheme, host, port) fetched
from, so an app's fallback URL on another host is judged apart from its answer URL:

- **limit**: at most `max_in_flight` fetches per app and origin at once in this process; one
  more is refused at once (kind "busy"), so the caller hears the apology (or the fallback URL's
  document) now instead of queueing behind a hanging app.
- **breaker**: `failures_to_open` consecutive failures (no connection, no answer in time, the
  total time used up, or HTTP 5xx: the app is down or drowning) open the circuit; while open,
  fetches are refused at once (kind "down"). After `cool_down` seconds one fetch goes through
  as a probe (half-open); its success closes the circuit, its failure opens it for another
  cool-down. A 4xx, an invalid document or a refused host says the app is up and does not
  count, nor resets the count.

State is per process (each gunicorn worker learns on its own); no I/O here, and the clock is
injected, so the rules are tested without waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from .client import AppRequestError, safe_url

# 5 in a row: one timeout is a blip, a handful with no success between them is an app that is
# down; at the rate a busy app takes calls, five come within a second or two of each other.
DEFAULT_FAILURES_TO_OPEN = 5
# 10 s: short beside a call (a recovering app gets callers back within seconds), long beside
# the fetches it saves (each would have waited up to the 13 s budget).
DEFAULT_COOL_DOWN = 10.0
# Per app and origin, per web process: far above what a healthy app needs (an app answering in
# 200 ms serves 250 calls/s at 50 in flight), low enough that a hanging one cannot gather the
# process's connections.
DEFAULT_MAX_IN_FLIGHT = 50

FAILURE_KINDS = frozenset({"ct", "rt", "tt", "5xx"})


@dataclass
class _Circuit:
    in_flight: int = 0
    failures: int = 0  # consecutive
    open_until: float | None = None  # None: closed
    probing: bool = False  # half-open: one fetch is finding out


class AppGuard:
    """Admits or refuses fetches per (app, origin); see the module doc. Thread-safe."""

    def __init__(self, *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 failures_to_open: int = DEFAULT_FAILURES_TO_OPEN,
                 cool_down: float = DEFAULT_COOL_DOWN,
                 clock: Callable[[], float] = time.monotonic):
        if max_in_flight < 1 or failures_to_open < 1 or cool_down <= 0:
            raise ValueError("max_in_flight and failures_to_open must be >= 1, cool_down > 0")
        self.max_in_flight = max_in_flight
        self.failures_to_open = failures_to_open
        self.cool_down = cool_down
        self._clock = clock
        self._circuits: dict[tuple[str, str], _Circuit] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def admit(self, app: str, url: str) -> Iterator[None]:
        """Run the block as one fetch for `app` from `url`, or raise AppRequestError (kind "busy"
        or "down") at once. An AppRequestError raised by the block is the verdict on the app;
        anything else leaves its record as it was."""
        key = (app, _origin(url))
        probe = self._enter(key, url)
        outcome: bool | None = None
        try:
            yield
            outcome = True
        except AppRequestError as exc:
            outcome = False if exc.kind in FAILURE_KINDS else None
            raise
        finally:
            self._leave(key, outcome, probe)

    def state(self, app: str, url: str) -> str:
        """"closed", "open" or "half-open", for logs and tests."""
        with self._lock:
            circuit = self._circuits.get((app, _origin(url)))
            if circuit is None or circuit.open_until is None:
                return "closed"
            return "half-open" if (circuit.probing or self._clock() >= circuit.open_until) \
                else "open"

    def _enter(self, key: tuple[str, str], url: str) -> bool:
        with self._lock:
            circuit = self._circuits.setdefault(key, _Circuit())
            probe = False
            if circuit.open_until is not None:
                wait = circuit.open_until - self._clock()
                if wait > 0 or circuit.probing:
                    raise AppRequestError(
                        safe_url(url), f"not asked: the app failed {circuit.failures} times in a "
                        f"row (circuit open; next try in {max(wait, 0):.0f} s)", "down")
                circuit.probing = probe = True
            if circuit.in_flight >= self.max_in_flight:
                if probe:
                    circuit.probing = False
                raise AppRequestError(
                    safe_url(url), f"not asked: {circuit.in_flight} requests to this app are "
                    f"already waiting (limit {self.max_in_flight} per process)", "busy")
            circuit.in_flight += 1
            return probe

    def _leave(self, key: tuple[str, str], succeeded: bool | None, probe: bool) -> None:
        with self._lock:
            circuit = self._circuits[key]
            circuit.in_flight -= 1
            if probe:  # a probe that told nothing (e.g. a 4xx) lets the next fetch probe again
                circuit.probing = False
            if succeeded:
                circuit.failures, circuit.open_until = 0, None
            elif succeeded is False:
                circuit.failures += 1
                if circuit.failures >= self.failures_to_open or probe:
                    circuit.open_until = self._clock() + self.cool_down
            if circuit.in_flight == 0 and circuit.failures == 0 and circuit.open_until is None:
                del self._circuits[key]  # nothing to remember: keep the table small


@lru_cache(maxsize=1024)  # pure, and asked twice per fetch for the same few URLs
def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url
