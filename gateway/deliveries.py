"""Durable, ordered delivery of the requests Twilio does not wait on (Plivo callbacks).

Each request belongs to a stream (one conference member, one call's hang-up, one room's
recording) and has a number within it. The stream's outbox (`outbox:<stream>` in the shared
store) holds requests until delivered; a `flush` job delivers them strictly in number order, so
a member's enter is never delivered after its exit. Plivo's URL fragment (`#ct=&rt=&tt=&rc=&rp=`)
sets timeouts and retries (app_side.client); what still fails is kept (`failed:<id>`), listed by
`gateway deliveries --failed`, replayed by `gateway deliveries --replay ID`.
At least once: a request leaves the outbox only after its delivery ended.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from .app_side.client import AppRequestError, safe_url
from .jobs import (
    JOB_TTL,
    book,
    finish_with,
    handler,
    job_key,
    needs_queueing,
    queue,
    renew,
    schedule,
)
from .observability import DELIVERIES, log_context

log = logging.getLogger("gateway.deliveries")

# A stream's outbox, and its numbering, live 48 h after their last write. Delivered requests
# leave at once and those that failed for good are kept apart (`failed:`, 30 days), so what
# stays is the watermark (`done`) that recognises a request sent again (a duplicate join
# re-stages its enter): it must outlive every record that can add to the stream, each kept
# 26 h after its own last write (a member, a room, a call), which comes before the outbox's.
# (7 days before: at 30 calls/s that kept 18 million emptied outboxes.) A request the job
# worker has not delivered within 48 h (the worker down that long) is lost with it.
OUTBOX_TTL = 48 * 3600.0
FAILED_TTL = 30 * 24 * 3600.0
GAP_WAIT = 15.0  # a numbered request that never reached the outbox is skipped after this
# How long a request that must follow members' callbacks (the call's hangup) waits for them: a
# member still pending may never join (the caller hung up first); one that joined will leave.
ORDER_WAIT = {"pending": 2.0, "joined": 30.0, "delivering": 60.0}
ORDER_POLL = 0.1


def call_stream(call_sid: str) -> str:
    """The outbox of a call's own requests: background actions (menus, recordings) and its
    hangup request share it, so Plivo's order holds (action before hangup)."""
    return f"call:{call_sid}"


def outbox_key(stream: str) -> str:
    return f"outbox:{stream}"


def enqueue(store, stream: str, number: int, request: dict) -> None:
    """Put request number `number` of `stream` in its outbox and make sure a flush will run.

    request: {"url", "method", "params", "app", "kind"}; the auth token is looked up at
    delivery time (secrets are never stored).
    """
    enqueue_many(store, stream, {number: request})


def enqueue_many(store, stream: str, requests: dict[int, dict]) -> None:
    """`enqueue` for several numbered requests of one stream. The outbox and the booking of
    its flush are written in one transaction (so a crash between the two cannot leave requests
    without a flush), and huey gets a task only when no flush of the stream is running."""
    now = time.time()
    staged: dict = {}
    store.update_many(stage_keys(stream),
                      lambda current: stage(current, stream, requests, now, staged))
    queue_staged(stream, staged, now)


def stage_keys(stream: str) -> dict[str, float]:
    """The keys (and TTLs) a transaction includes to enqueue requests of `stream` with
    `stage`: the stream's outbox and its flush's booking."""
    return {outbox_key(stream): OUTBOX_TTL, job_key(flush_job(stream)): JOB_TTL}


def stage(current: dict, stream: str, requests: dict[int, dict], now: float,
          staged: dict) -> dict:
    """The changes that put these numbered requests in the stream's outbox and book its flush,
    given the transaction's current values (pure; `staged` notes what `queue_staged` needs)."""
    box_key, booking_key = outbox_key(stream), job_key(flush_job(stream))
    box = current[box_key] or {"done": 0, "items": {}}
    for number, request in requests.items():
        if number > box["done"]:
            box["items"][str(number)] = {**request, "queued_at": now}
    staged["booking"] = current[booking_key]
    return {box_key: box,
            booking_key: book(current[booking_key], "flush", {"stream": stream}, now, now)}


def queue_staged(stream: str, staged: dict, now: float) -> None:
    """After the transaction: hand the flush to huey unless one is running."""
    if "booking" in staged and needs_queueing(flush_job(stream), staged["booking"], now):
        queue(flush_job(stream))


def flush_job(stream: str) -> str:
    return f"flush:{stream}"


def enqueue_next(store, stream: str, request: dict) -> int:
    """Number the request after the stream's last one and enqueue it."""
    number = reserve_number(store, stream)
    enqueue(store, stream, number, request)
    return number


def reserve_number(store, stream: str) -> int:
    """A place in the stream for a request that is known to come but has not come yet (a
    Record's action, when Twilio reports the call's end first): fill it with `enqueue`, or give
    it up with `release_number`; a place never filled is skipped after GAP_WAIT."""
    return store.incr(f"outbox-number:{stream}", OUTBOX_TTL)


NOTHING = "nothing"  # the kind of a released place: nothing is sent, the stream goes on


def release_number(store, stream: str, number: int) -> None:
    enqueue(store, stream, number, {"kind": NOTHING})


def _advance(store, stream: str, number: int) -> dict | None:
    """Strike request `number` off; returns the outbox after (what the flush does next)."""
    return store.update(outbox_key(stream), lambda current: _advanced(current, number),
                        OUTBOX_TTL)


def _advanced(current: dict | None, number: int) -> dict | None:
    if current is None:
        return None
    current["items"].pop(str(number), None)
    current["done"] = max(current["done"], number)
    return current


def _flush_reads(job_id: str) -> dict[str, float]:
    """A flush reads its stream's outbox first: in the transaction that claims it."""
    return {outbox_key(job_id.removeprefix(flush_job(""))): OUTBOX_TTL}


@handler("flush", reads=_flush_reads)
def flush(runtime, stream: str, read: dict | None = None) -> None:
    """Deliver the stream's requests in order. `read`: the outbox as the claim read it."""
    store = runtime.store
    box = read[outbox_key(stream)] if read is not None else store.get(outbox_key(stream))
    delivered = 0
    while True:
        if not box or not box["items"]:
            return
        number = box["done"] + 1
        item = box["items"].get(str(number))
        if item is None:
            waiting = [v["queued_at"] for k, v in box["items"].items() if int(k) > number]
            if not waiting:
                return
            age = time.time() - min(waiting)
            if age < GAP_WAIT:
                schedule("flush", {"stream": stream}, job_id=flush_job(stream),
                         delay=GAP_WAIT - age, store=store)
                return
            log.warning("stream %s: request %d never arrived; delivering the next ones",
                        stream, number)
            box = _advance(store, stream, number)
            continue
        if item.get("kind") == NOTHING:
            box = _advance(store, stream, number)
            continue
        if item.get("after_members") and _held_back(runtime, stream, item):
            return
        if delivered:  # the claim's lease covers the first; each further one may take its tt
            renew(store, flush_job(stream))
        deliver(runtime, stream, number, item)
        delivered += 1
        if len(box["items"]) == 1:  # the last one it knows of: struck off as the job ends
            key = outbox_key(stream)
            finish_with(store, {key: OUTBOX_TTL}, lambda current, key=key, number=number: {
                key: _advanced(current[key], number)})
            return  # anything enqueued meanwhile booked the flush again: it runs once more
        box = _advance(store, stream, number)


def _held_back(runtime, stream: str, item: dict) -> bool:
    """True (and a flush booked a moment later) while the members this request must follow
    have callbacks to come; past ORDER_WAIT it goes anyway, with a log line."""
    reason = runtime.members.holding_back(item["after_members"])
    if reason is None:
        return False
    waited = time.time() - item["queued_at"]
    if waited < ORDER_WAIT[reason]:
        schedule("flush", {"stream": stream}, job_id=flush_job(stream), delay=ORDER_POLL,
                 store=runtime.store)
        return True
    log.warning("stream %s: %s sent after %.0f s although a member is still %s", stream,
                item["kind"], waited, reason)
    return False


def deliver(runtime, stream: str, number: int, item: dict) -> bool:
    """One request, with the retries its URL fragment allows. Keeps it as failed if it fails."""
    app = runtime.mappings.app_named(item["app"])
    try:
        if app is None:
            raise LookupError(f"app {item['app']!r} is no longer in the mappings")
        with log_context(CallUUID=item["params"].get("CallUUID"),
                         ConferenceSid=item["params"].get("ConferenceUUID")):
            runtime.client.request(item["url"], item["method"], item["params"],
                                   auth_token=app.auth_token(), allowed_hosts=app.allowed_hosts)
        DELIVERIES.labels(item["kind"], "delivered").inc()
        return True
    except (AppRequestError, LookupError) as exc:
        DELIVERIES.labels(item["kind"], "failed").inc()
        reason = exc.reason if isinstance(exc, AppRequestError) else str(exc)
        failure_id = uuid.uuid4().hex[:12]
        store_failure(runtime.store, failure_id, stream, number, item, reason)
        log.error("delivery %s failed for good: %s %s: %s (kept; replay with `gateway "
                  "deliveries --replay %s`)", failure_id, item["kind"],
                  safe_url(item["url"]), reason, failure_id)
        return False


def store_failure(store, failure_id: str, stream: str, number: int, item: dict,
                  reason: str) -> None:
    store.put(f"failed:{failure_id}", {"id": failure_id, "stream": stream, "number": number,
                                        "request": item, "reason": reason,
                                        "failed_at": time.time()}, FAILED_TTL)


def failed_deliveries(store) -> Iterator[dict]:
    for _, record in store.scan("failed:"):
        yield record


def replay(store, failure_id: str) -> None:
    record = store.get(f"failed:{failure_id}")
    if record is None:
        raise KeyError(failure_id)
    enqueue(store, f"replay:{failure_id}", 1, {**record["request"]})
    store.delete(f"failed:{failure_id}")
