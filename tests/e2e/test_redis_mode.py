"""Redis mode: the gateway on a real redis-server, and Redis going away mid-conference.

While Redis is down the gateway reports unhealthy, Twilio still gets valid answers (a spoken
apology for calls; 204 for events, which are spooled locally), and once Redis is back nothing
is lost: the spooled events are processed in order and their callbacks delivered.
"""

from __future__ import annotations

import time

import pytest
import requests
from lxml import etree

from tests.e2e.test_callbacks import Call, conference_answer, settled_store
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, GatewayServer, app_config

pytestmark = pytest.mark.redis


def health(gw: GatewayServer) -> int:
    return requests.get(gw.url + "/healthz", timeout=10).status_code


def wait_health(gw: GatewayServer, status: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while health(gw) != status:
        assert time.monotonic() < end, f"/healthz never answered {status}"
        time.sleep(0.2)


def test_conference_callbacks_through_redis(tmp_path, redis_url):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/cb", body="")
        with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))],
                           store_url=redis_url) as gw:
            assert requests.get(gw.url + "/healthz", timeout=5).json()["store"].startswith(
                "redis://")
            call = Call(gw)
            call.answer()
            call.event("participant-join")
            call.event("participant-leave")
            app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2,
                         timeout=15)
            assert [r.params["ConferenceAction"] for r in app.requests_to("/cb")] == [
                "enter", "exit"]


def test_redis_stopped_and_restarted_mid_conference_loses_nothing(tmp_path,
                                                                  redis_server_factory):
    redis = redis_server_factory(appendonly=True)
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/cb", body="")
        with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))],
                           store_url=redis.url()) as gw:
            first, second = Call(gw), Call(gw)
            first.answer()
            second.answer()
            first.event("participant-join")
            second.event("participant-join")
            app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2,
                         timeout=15)
            # Each enter's job strikes it off once the app has it: Redis stopped in between
            # would send that enter again, which at-least-once delivery allows (not the point).
            settled_store(gw)

            redis.stop()
            wait_health(gw, 503)
            # Twilio still gets valid answers: an apology for a new call, 204 for events.
            newcomer = Call(gw)
            tree = etree.fromstring(newcomer.answer().content)
            assert [v.tag for v in tree] == ["Say", "Hangup"]
            first.event("participant-leave")
            second.event("participant-leave")
            assert "spooled" in gw.logs()

            redis.start()
            wait_health(gw, 200)
            app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 4,
                         timeout=30)
            by_call = {}
            for r in app.requests_to("/cb"):
                by_call.setdefault(r.params["CallUUID"], []).append(
                    r.params["ConferenceAction"])
            assert sorted(by_call.values()) == [["enter", "exit"], ["enter", "exit"]]


def test_events_spooled_while_redis_is_down_drain_by_themselves(tmp_path, redis_server_factory):
    redis = redis_server_factory(appendonly=True)
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/cb", body="")
        with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))],
                           store_url=redis.url()) as gw:
            call = Call(gw)
            call.answer()
            redis.stop()
            call.event("participant-join")
            call.event("participant-leave")
            assert "spooled" in gw.logs()
            time.sleep(2)  # the job worker's queue polls fail meanwhile
            redis.start()
            # No request and no health probe from here on: the spool drains by itself.
            app.wait_for(lambda reqs: len([r for r in reqs if r.path == "/cb"]) >= 2,
                         timeout=30)
            assert [r.params["ConferenceAction"] for r in app.requests_to("/cb")] == [
                "enter", "exit"]
            # The outage is told in a line or two, not a traceback per failed poll of the queue.
            assert 1 <= gw.logs().count("Error reading from queue") <= 2
            assert "Error reading from queue: " in gw.logs()
