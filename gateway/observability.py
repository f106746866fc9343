"""What operators see of the gateway: Prometheus metrics, and log lines that name the call.

Metrics (prometheus-client) are counted in every process that does the work (gunicorn workers,
the job worker) and exported by `/metrics`. `gateway serve` gives them one multiprocess
directory (`PROMETHEUS_MULTIPROC_DIR`), emptied at start, so a scrape of any web worker sums
every process; without it (tests, an app built in-process) the process's own registry is served.
Figures that are state rather than events (live rooms and members, deliveries waiting, failed
deliveries, spooled events) are read from the shared store at scrape time, so they are right
whatever process changed them.

Log lines: with `GATEWAY_LOG_FORMAT=json`, each line is one JSON object carrying the CallSid,
CallUUID and ConferenceSid of the request or job it belongs to (set by `log_context`).
"""

from __future__ import annotations

import contextlib
import contextvars
import glob
import json
import logging
import os
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WEBHOOKS = Counter("gateway_webhooks_total", "Twilio webhooks by route and outcome",
                   ["route", "outcome"])
APP_FETCH_SECONDS = Histogram(
    "gateway_app_fetch_seconds", "Time to fetch a Plivo document from a customer app",
    ["app", "outcome"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 13, 15))
TRANSLATION_ERRORS = Counter("gateway_translation_errors_total",
                             "Plivo documents refused, by the element at fault", ["element"])
DELIVERIES = Counter("gateway_deliveries_total",
                     "Callbacks to customer apps by kind and outcome (delivered, failed)",
                     ["kind", "outcome"])
DELIVERY_RETRIES = Counter("gateway_delivery_job_retries_total",
                           "Queued jobs run again after a failure", ["kind"])


class StoreGauges:
    """Gauges read from the shared store at scrape time (correct across processes)."""

    def __init__(self, store, spool=None):
        self.store = store
        self.spool = spool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rooms = members = 0
        with contextlib.suppress(Exception):
            for _, room in self.store.scan("room:"):
                if not room.get("ended"):
                    rooms += 1
                    members += len(room.get("present", ()))
        pending = failed = 0
        with contextlib.suppress(Exception):
            for _, box in self.store.scan("outbox:"):
                pending += len(box.get("items", ()))
            failed = sum(1 for _ in self.store.scan("failed:"))
        yield _gauge("gateway_live_rooms", "Conference rooms in progress", rooms)
        yield _gauge("gateway_live_members", "Members present in rooms in progress", members)
        yield _gauge("gateway_deliveries_pending", "Callbacks waiting in outboxes", pending)
        yield _gauge("gateway_deliveries_failed", "Callbacks kept as finally failed", failed)
        if self.spool is not None:
            spooled = 0
            with contextlib.suppress(Exception):
                spooled = len(self.spool)
            yield _gauge("gateway_spooled_events",
                         "Twilio events kept on this machine while the store is down", spooled)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


class _SizedFiles(multiprocess.MultiProcessCollector):
    """prometheus-client's multiprocess collector, without the files that are still empty.

    A process creates its file and only then sizes it, so a scrape can meet a file of 0
    bytes, and one that a process killed in that moment leaves for good. Read, such a file
    raises and fails the whole scrape with a 500 (prometheus/client_python#1199). It holds no
    value yet, and a file once sized is never made smaller."""

    def __init__(self, registry: CollectorRegistry, path: str):
        super().__init__(registry, path)
        self.directory = path

    def collect(self):
        files = []
        for name in glob.glob(os.path.join(self.directory, "*.db")):
            with contextlib.suppress(OSError):  # gone since the listing
                if os.path.getsize(name):
                    files.append(name)
        return self.merge(files, accumulate=True)


def render_metrics(store, spool=None) -> bytes:
    """The text exposition of every counter (all processes when multiprocess) and the gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _SizedFiles(registry, os.environ["PROMETHEUS_MULTIPROC_DIR"])
    else:
        from prometheus_client import REGISTRY
        registry = REGISTRY
    body = generate_latest(registry)
    gauges = CollectorRegistry()
    gauges.register(StoreGauges(store, spool))
    return body + generate_latest(gauges)


@contextlib.contextmanager
def timed_fetch(app: str) -> Iterator[None]:
    """Observe one fetch from an app; its outcome is `ok` unless it raised."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException:
        outcome = "failed"
        raise
    finally:
        APP_FETCH_SECONDS.labels(app, outcome).observe(time.perf_counter() - started)


# -- log lines that name the call ----------------------------------------------------------------
_CONTEXT: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "gateway_log_context", default=())


@contextlib.contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Within the block, JSON log lines carry these ids (CallSid, CallUUID, ConferenceSid)."""
    token = _CONTEXT.set(tuple((k, v) for k, v in ids.items() if v))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the call's ids, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                "logger": record.name, "message": record.getMessage(), **dict(_CONTEXT.get())}
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)
