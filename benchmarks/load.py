"""A bounded load generator for loopback HTTP servers, and CPU accounting of process groups.

`closed_loop` keeps `concurrency` requests in flight (one thread and one kept-alive
http.client connection each: far cheaper per request than `requests`, so the client takes less
of the machine's two cores from the servers it measures) until every prepared request was sent
or the time limit passed. Requests are prepared before the clock starts (bodies encoded,
Twilio signatures computed). Only 127.0.0.1 is ever targeted.

`group_cpu_seconds(pgid)` sums user+system CPU of every live process in a process group (a
gunicorn master and its workers), read from /proc, so a benchmark can report CPU per request;
`group_cpu_by_role` splits it by command line, `process_cpu_seconds(pid)` reads one process.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Shot:
    """One prepared request: a path and a form body with its headers."""

    path: str
    body: bytes
    headers: dict[str, str]
    tag: str = ""  # what the caller needs to match the answer (e.g. the CallSid)


def twilio_shot(base_url: str, path: str, params: dict[str, str], validator: RequestValidator,
                tag: str = "") -> Shot:
    """A POST signed as Twilio signs it, for the URL `base_url + path`."""
    signature = validator.compute_signature(base_url + path, params)
    return Shot(path, urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1"}, tag)


@dataclass
class Outcome:
    """What one round of load produced. Times in seconds (perf_counter / monotonic)."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of the ok requests
    statuses: Counter = field(default_factory=Counter)
    first_error: str = ""
    sent_at: dict[str, float] = field(default_factory=dict)  # tag -> monotonic send time

    @property
    def throughput(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


def closed_loop(base_url: str, shots: Sequence[Shot], *, concurrency: int, time_limit: float,
                check: Callable[[int, bytes], bool] = lambda status, body: status < 300,
                timeout: float = 30.0) -> Outcome:
    """Send `shots` with `concurrency` in flight; stop early after `time_limit` seconds."""
    target = urlsplit(base_url)
    if target.hostname != LOOPBACK:
        raise ValueError(f"the load generator only targets {LOOPBACK}, not {target.hostname}")
    outcome = Outcome()
    lock = threading.Lock()
    queue = iter(shots)
    start = threading.Barrier(concurrency + 1)
    finished = [0.0] * concurrency
    began = [0.0]

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(LOOPBACK, target.port, timeout=timeout)
        latencies, statuses, sent_at = [], Counter(), {}
        ok = errors = sent = 0
        error_text = ""
        start.wait()
        deadline = time.monotonic() + time_limit
        while time.monotonic() < deadline:
            with lock:
                shot = next(queue, None)
            if shot is None:
                break
            sent += 1
            t0 = time.perf_counter()
            if shot.tag:
                sent_at[shot.tag] = time.monotonic()
            try:
                connection.request("POST", shot.path, shot.body, shot.headers)
                response = connection.getresponse()
                body = response.read()
                statuses[response.status] += 1
                if check(response.status, body):
                    ok += 1
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
                    error_text = error_text or f"HTTP {response.status}: {body[:200]!r}"
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                errors += 1
                error_text = error_text or repr(exc)
                connection.close()
        finished[index] = time.perf_counter()
        connection.close()
        with lock:
            outcome.sent += sent
            outcome.ok += ok
            outcome.errors += errors
            outcome.latencies.extend(latencies)
            outcome.statuses.update(statuses)
            outcome.sent_at.update(sent_at)
            outcome.first_error = outcome.first_error or error_text

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    began[0] = time.perf_counter()
    for thread in threads:
        thread.join(time_limit + timeout + 5)
    outcome.elapsed = max(finished) - began[0]
    return outcome


def paced(base_url: str, shots: Sequence[Shot], *, rate: float, time_limit: float,
          check: Callable[[int, bytes], bool] = lambda status, body: status < 300,
          timeout: float = 30.0) -> Outcome:
    """Send `shots` one after another at `rate` per second (open loop from one connection:
    a slow answer delays the next send, which is then sent at once)."""
    target = urlsplit(base_url)
    if target.hostname != LOOPBACK:
        raise ValueError(f"the load generator only targets {LOOPBACK}, not {target.hostname}")
    outcome = Outcome()
    connection = http.client.HTTPConnection(LOOPBACK, target.port, timeout=timeout)
    began = time.perf_counter()
    deadline = time.monotonic() + time_limit
    for index, shot in enumerate(shots):
        if time.monotonic() > deadline:
            break
        delay = began + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        outcome.sent += 1
        t0 = time.perf_counter()
        if shot.tag:
            outcome.sent_at[shot.tag] = time.monotonic()
        try:
            connection.request("POST", shot.path, shot.body, shot.headers)
            response = connection.getresponse()
            body = response.read()
            outcome.statuses[response.status] += 1
            if check(response.status, body):
                outcome.ok += 1
                outcome.latencies.append(time.perf_counter() - t0)
            else:
                outcome.errors += 1
                outcome.first_error = outcome.first_error or f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            outcome.errors += 1
            outcome.first_error = outcome.first_error or repr(exc)
            connection.close()
    outcome.elapsed = time.perf_counter() - began
    connection.close()
    return outcome


_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by one process (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def group_cpu_by_role(pgid: int, role: Callable[[str], str] = lambda cmdline: "all"
                      ) -> dict[str, float]:
    """User + system CPU seconds used so far by the live processes of process group `pgid`,
    summed per `role(cmdline)` (one process's command line, NUL-separated as in /proc)."""
    totals: Counter = Counter()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()
            # After the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt
            # cmajflt utime stime ...
            if int(fields[2]) != pgid:
                continue
            name = role((stat.parent / "cmdline").read_bytes().decode(errors="replace"))
        except OSError:  # the process ended meanwhile
            continue
        totals[name] += int(fields[11]) + int(fields[12])
    return {name: ticks / _TICKS for name, ticks in totals.items()}


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds used so far by the live processes of process group `pgid`."""
    return sum(group_cpu_by_role(pgid).values())
