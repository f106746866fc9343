"""Run a test module's independent scenarios at the same time, so the suite takes seconds.

A test decorated with `@concurrently` is a generator: it sets up its own fake gateway (and stream
server, if it asks for `stream_server`), then `yield`s the scenario to run; the transcript comes
back from the `yield` and the rest of the test asserts on it:

    @concurrently
    def test_reject_busy_ends_the_call_busy(gateway):
        gateway.twiml("/twilio/voice", '<Reject reason="busy"/>')
        transcript = yield scenario([call("alice")])
        assert transcript.call_end("alice")["status"] == "busy"

The first such test to run in a module runs the setup and the simulation of every selected one
in parallel threads (each with its own gateway, simulator and ports), then each test resumes its
own generator for the assertions. Tests whose point is timing stay ordinary, sequential tests.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gateway.sim import Transcript
from tests.sim.support import FakeGateway, StreamServer, simulate

TestBody = Callable[..., Generator["Scenario", Transcript, None]]

# module name -> test name -> job; filled at import, run on first use
_REGISTRY: dict[str, dict[str, _Job]] = {}
_LOCK = threading.Lock()
SELECTED: set[str] = set()  # "module::test" names pytest selected (set by conftest)
# Scenarios at once. Every simulator, gateway and callback shares one GIL: past a handful, each
# request waits long enough to upset the timings the scenarios rely on (0.3 s between events).
PARALLEL = 6


@dataclass
class Scenario:
    calls: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)


def scenario(calls: list[dict[str, Any]], **options: Any) -> Scenario:
    """What a concurrent test yields: its calls and `simulate` options (duration, twilio...)."""
    return Scenario(calls, options)


@dataclass
class _Job:
    body: TestBody
    generator: Generator[Scenario, Transcript, None] | None = None
    transcript: Transcript | None = None
    failure: BaseException | None = None
    ran: bool = False

    def run(self) -> None:
        gateway = FakeGateway()
        streams: list[StreamServer] = []
        try:
            wanted = inspect.signature(self.body).parameters
            kwargs: dict[str, Any] = {}
            if "gateway" in wanted:
                kwargs["gateway"] = gateway
            if "stream_server" in wanted:
                streams.append(StreamServer())
                kwargs["stream_server"] = streams[0]
            self.generator = self.body(**kwargs)
            plan = next(self.generator)
            self.transcript = simulate(gateway, plan.calls, **plan.options)
        except BaseException as exc:  # reported by the test itself
            self.failure = exc
        finally:
            gateway.close()
            for server in streams:
                server.close()
            self.ran = True


def _run_module(module: str) -> None:
    with _LOCK:
        jobs = [job for name, job in _REGISTRY.get(module, {}).items()
                if not job.ran and (not SELECTED or f"{module}::{name}" in SELECTED)]
        if not jobs:
            return
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for future in [pool.submit(job.run) for job in jobs]:
                future.result()


def concurrently(body: TestBody) -> Callable[[], None]:
    module, name = body.__module__, body.__name__
    job = _Job(body)
    _REGISTRY.setdefault(module, {})[name] = job

    def test() -> None:
        if not job.ran:
            _run_module(module)
        if not job.ran:  # selected after the batch started: run it alone
            job.run()
        if job.failure is not None:
            raise job.failure
        assert job.generator is not None and job.transcript is not None
        try:
            job.generator.send(job.transcript)
        except StopIteration:
            return
        raise AssertionError(f"{name} yielded more than one scenario")

    # Not functools.wraps: pytest would follow __wrapped__ and try to inject `gateway`.
    test.__name__, test.__qualname__, test.__doc__ = name, name, body.__doc__
    test.__module__ = module
    return test


def elapsed(transcript: Transcript) -> float:
    """How long the run took, from its own clock."""
    return float(transcript.events(type="run-end")[0]["t"])


Run = Generator[Scenario, Transcript, None]  # the return annotation of a concurrent test
