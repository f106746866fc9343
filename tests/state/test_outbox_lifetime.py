"""How long a stream's outbox is kept: long enough to recognise a request sent again, no longer.

An emptied outbox keeps only its watermark (the last number delivered). It must outlive every
record that can add to its stream, or a duplicate event arriving late would be delivered again;
beyond that it is only weight in the store. Runs on SQLite and on a real Redis.
"""

from __future__ import annotations

import pytest

from gateway import deliveries, jobs
from gateway.calls import CALL_TTL
from gateway.conference.members import MEMBER_TTL, ROOM_TTL
from gateway.dial.forwards import SEEN_TTL as DIAL_SEEN_TTL
from gateway.jobqueue import queue_for
from tests.state.test_call_end_race import seconds_left

HOUR = 3600.0


@pytest.fixture(autouse=True)
def queue_beside_the_store(store_url, monkeypatch):
    """Flush jobs go to the queue that goes with the test's store; nothing runs them here."""
    monkeypatch.setattr(jobs.run_job, "huey", queue_for(store_url))


def test_an_outbox_outlives_every_record_that_adds_to_its_stream():
    assert max(MEMBER_TTL, ROOM_TTL, CALL_TTL, DIAL_SEEN_TTL) < deliveries.OUTBOX_TTL


def test_an_emptied_outbox_keeps_its_watermark_for_48_hours_not_a_week(store, store_url):
    stream = deliveries.call_stream("CA1")
    request = {"url": "http://127.0.0.1:9/cb", "method": "POST", "params": {}, "app": "support",
               "kind": "hangup"}
    number = deliveries.enqueue_next(store, stream, request)
    deliveries._advance(store, stream, number)  # delivered: struck off, as the flush does

    box = store.get(deliveries.outbox_key(stream))
    assert box == {"done": number, "items": {}}
    assert 47 * HOUR < seconds_left(store_url, deliveries.outbox_key(stream)) <= 48 * HOUR
    # The same request staged again (a duplicate event) is recognised and not queued again.
    deliveries.enqueue(store, stream, number, request)
    assert store.get(deliveries.outbox_key(stream))["items"] == {}
