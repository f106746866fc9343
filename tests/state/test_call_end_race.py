"""A call's end is never undone by a save that comes after it (issue 9, "replays").

A caller may hang up while a slow app is still answering: Twilio's final status is processed
(the call flagged ended, its hangup request queued) before the request that loaded the call saves
its copy. That save must keep the end: otherwise a repeated final status queues a second hangup
request and the record lives 26 h instead of 1. Every test runs on SQLite and on a real Redis,
with `hangups.call_ended` as the status callback runs it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import redis

from gateway import deliveries, jobs
from gateway.calls import CALL_TTL, ENDED_CALL_TTL, CallRecord, Calls, call_key
from gateway.hangups import call_ended
from gateway.jobqueue import queue_for
from gateway.mappings import Mappings, PlivoApp

APP = PlivoApp(name="support", account="MA1", numbers=("+14155550100",),
               answer_url="http://127.0.0.1:9/answer", hangup_url="http://127.0.0.1:9/hangup",
               auth_token_env="SUPPORT_TOKEN", allowed_hosts=("127.0.0.1",))
MAPPINGS = Mappings(apps=(APP,), by_number={"+14155550100": APP}, by_name={"support": APP})


@pytest.fixture(autouse=True)
def queue_beside_the_store(store_url, monkeypatch):
    """Flush jobs go to the queue that goes with the test's store, as in the gateway (not to
    the default `gateway-queue.db` of the working directory); nothing runs them here."""
    monkeypatch.setattr(jobs.run_job, "huey", queue_for(store_url))


def new_call(call_sid: str) -> CallRecord:
    return CallRecord(call_sid=call_sid, app="support", call_uuid="uuid-" + call_sid,
                      params={"CallUUID": "uuid-" + call_sid, "To": "+14155550100"})


def final_status(call_sid: str) -> dict[str, str]:
    return {"CallSid": call_sid, "CallStatus": "completed", "CallDuration": "3"}


def end(calls: Calls, store, call_sid: str) -> str:
    return call_ended(final_status(call_sid), calls=calls, mappings=MAPPINGS, store=store)


def hangups_queued(store, call_sid: str) -> int:
    box = store.get(deliveries.outbox_key(deliveries.call_stream(call_sid))) or {"items": {}}
    return sum(item.get("kind") == "hangup" for item in box["items"].values())


def seconds_left(store_url: str, key: str) -> float:
    """The key's remaining TTL, read from the backend itself."""
    if store_url.startswith("sqlite:///"):
        with sqlite3.connect(store_url[len("sqlite:///"):]) as conn:
            (expires_at,) = conn.execute("SELECT expires_at FROM kv WHERE key = ?",
                                         (key,)).fetchone()
        return expires_at - time.time()
    return redis.Redis.from_url(store_url).pttl("gw:v:" + key) / 1000


def test_a_slow_first_answer_saved_after_the_end_keeps_the_call_ended(store, store_url):
    calls = Calls(store)
    answering = new_call("CA1")
    assert calls.claim(answering)
    # The app is slow; the caller hangs up and Twilio's final status is processed meanwhile.
    assert end(calls, store, "CA1") == "hangup"
    # Then the answer is translated and the runner saves the copy it has held all along.
    answering.step, answering.played, answering.answered_at = 1, True, time.time()
    calls.save(answering)

    saved = calls.get("CA1")
    assert saved.ended and saved.hangup_queued
    assert saved.step == 1 and saved.played  # what the answer changed is kept too
    assert seconds_left(store_url, call_key("CA1")) <= ENDED_CALL_TTL
    # Twilio sends its final status again: the same end, nothing more for the app.
    assert end(calls, store, "CA1") == "duplicate"
    assert hangups_queued(store, "CA1") == 1


def test_a_save_before_the_end_is_flagged_by_it(store, store_url):
    calls = Calls(store)
    call = new_call("CA2")
    assert calls.claim(call)
    call.step = 1
    calls.save(call)
    assert seconds_left(store_url, call_key("CA2")) > ENDED_CALL_TTL  # a live call: CALL_TTL
    assert end(calls, store, "CA2") == "hangup"
    assert calls.get("CA2").ended and calls.get("CA2").step == 1
    assert seconds_left(store_url, call_key("CA2")) <= ENDED_CALL_TTL


def ended_during_its_record(calls: Calls, store, call_sid: str) -> tuple[CallRecord, int]:
    """A call whose caller hung up during its `<Record>` "r1": the copy loaded before the end,
    and the place the end kept for the Record's action before the hangup request."""
    call = new_call(call_sid)
    call.records = {"r1": {"kind": "here", "action": "http://127.0.0.1:9/done"}}
    assert calls.claim(call)
    assert end(calls, store, call_sid) == "hangup"
    return call, calls.get(call_sid).records["r1"]["action_number"]


def test_a_late_save_keeps_the_place_kept_for_a_records_action(store):
    """The caller hung up during `<Record>`: the end kept a place for the Record's action
    before the hangup request; a copy saved afterwards must not lose it (the action would
    then be queued after the hangup request, and the kept place left empty)."""
    calls = Calls(store)
    call, kept = ended_during_its_record(calls, store, "CA3")
    call.step = 2
    calls.save(call)
    assert calls.get("CA3").records["r1"]["action_number"] == kept
    assert calls.claim_record_action("CA3", "r1") == kept


def test_a_records_action_after_the_end_keeps_the_ended_calls_ttl(store, store_url):
    calls = Calls(store)
    _, kept = ended_during_its_record(calls, store, "CA6")
    assert calls.claim_record_action("CA6", "r1", ended=True) == kept
    assert calls.get("CA6").records["r1"]["answered"]
    assert seconds_left(store_url, call_key("CA6")) <= ENDED_CALL_TTL


def test_an_unknown_calls_end_refuses_its_later_voice_webhook(store):
    """Twilio said the call is over before any worker claimed it: a voice webhook for it
    served afterwards must not start the app (it would never get a hangup request)."""
    calls = Calls(store)
    assert end(calls, store, "CA4") == "unknown"
    assert not calls.claim(new_call("CA4"))
    assert calls.get("CA4") is None
    assert end(calls, store, "CA4") == "unknown"  # the same end again changes nothing


def test_a_live_call_is_saved_with_the_live_ttl(store, store_url):
    calls = Calls(store)
    call = new_call("CA5")
    assert calls.claim(call)
    call.step = 3
    calls.save(call)
    assert calls.get("CA5").step == 3
    assert seconds_left(store_url, call_key("CA5")) > CALL_TTL - 60


def test_saves_racing_ends_never_undo_one(store):
    """Every interleaving, for real: one thread saves each call's first answer while another
    processes its end; whichever comes first, each call ends up ended with one hangup."""
    calls = Calls(store)
    sids = [f"CA{i:032d}" for i in range(30)]
    copies = {sid: new_call(sid) for sid in sids}
    for sid in sids:
        assert calls.claim(copies[sid])
    start = threading.Barrier(2)

    def answer_all() -> None:
        start.wait()
        for sid in sids:
            copies[sid].step, copies[sid].played = 1, True
            calls.save(copies[sid])

    def end_all() -> None:
        start.wait()
        for sid in sids:
            end(calls, store, sid)

    threads = [threading.Thread(target=answer_all), threading.Thread(target=end_all)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for sid in sids:
        saved = calls.get(sid)
        assert saved.ended and saved.hangup_queued and saved.step == 1, sid
        assert end(calls, store, sid) == "duplicate"
        assert hangups_queued(store, sid) == 1
