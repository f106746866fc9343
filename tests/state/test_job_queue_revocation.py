"""The job queue runs a task without huey's revocation bookkeeping, on both queues.

huey reads its store before every task (was it revoked?) and deletes the task's revocation key
after every run. The gateway never revokes (a job that must not run is struck off its book in
the store), so its queue does neither: two operations on the queue's store per job fewer. What
the queue's store saw is read from the real thing: SQLite's statement trace, Redis's own
command counters.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from gateway.jobqueue import GatewayRedisHuey, queue_for


def queue_with_a_task(url: str):
    """queue_for's queue for `url`; on Redis under a name of its own, since the tests share one
    redis-server: a job worker of another test's gateway, killed a moment before, may still be
    waiting on the gateway's queue there and would take the task."""
    queue = queue_for(url)
    if isinstance(queue, GatewayRedisHuey):
        queue = GatewayRedisHuey(f"revocation-{uuid.uuid4().hex}", url=url, results=False,
                                 utc=True)
    ran: list[str] = []

    @queue.task()
    def note(word: str) -> None:
        ran.append(word)

    return queue, note, ran


def test_the_embedded_queue_runs_a_task_without_touching_revocation_keys(tmp_path: Path):
    queue, note, ran = queue_with_a_task(f"sqlite:///{tmp_path / 'state.db'}")
    note("hello")
    statements: list[str] = []
    queue.storage.conn.set_trace_callback(statements.append)
    queue.execute(queue.dequeue())
    assert ran == ["hello"]
    assert statements, "the dequeue itself goes through the traced connection"
    # huey keeps revocations (and results, which the gateway does not store) in table kv.
    assert [s for s in statements if " kv" in s] == []


@pytest.mark.redis
def test_the_redis_queue_runs_a_task_without_touching_revocation_keys(redis_url: str):
    queue, note, ran = queue_with_a_task(redis_url)
    server = redis.Redis.from_url(redis_url)

    def calls(command: str) -> int:
        return server.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0)

    note("hello")
    before = {command: calls(command) for command in ("hmget", "hget", "hdel")}
    queue.execute(queue.dequeue())
    assert ran == ["hello"]
    # RedisHuey keeps revocations in a hash: read with HMGET, cleaned up with HDEL.
    assert {command: calls(command) for command in before} == before


def test_revoking_is_refused_rather_than_ignored(tmp_path: Path):
    queue, note, _ = queue_with_a_task(f"sqlite:///{tmp_path / 'state.db'}")
    with pytest.raises(NotImplementedError, match="strike the job off"):
        queue.revoke_all(note.task_class)
    with pytest.raises(NotImplementedError):
        queue.revoke_by_id("some-task")
