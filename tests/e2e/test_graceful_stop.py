"""Stopping the gateway (SIGTERM, as a deploy or a supervisor does): calls in flight are answered,
and connections that only wait for their next request (Twilio and load balancers keep them open)
are let go at once instead of holding every web worker until gunicorn's graceful timeout."""

from __future__ import annotations

import os
import signal
import threading

import requests
from lxml import etree

from tests.e2e.test_callbacks import Call
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, GatewayServer, app_config

ANSWER = "<Response><Speak>Still here.</Speak></Response>"


def test_a_stopping_gateway_answers_the_call_in_flight_and_lets_idle_connections_go(tmp_path):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        app.route("/answer", ANSWER, delay=2.0)  # the call in flight when the stop comes
        gw = GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))], web_only=True)
        with gw:
            idle = [requests.Session() for _ in range(4)]  # kept-alive, between requests
            for session in idle:
                assert session.get(gw.url + "/healthz", timeout=10).status_code == 200
            answered: list[requests.Response] = []
            in_flight = threading.Thread(target=lambda: answered.append(Call(gw).answer()))
            in_flight.start()
            app.wait_for(lambda reqs: any(r.path == "/answer" for r in reqs), timeout=15)

            os.killpg(gw.process.pid, signal.SIGTERM)
            in_flight.join(30)
            code = gw.process.wait(30)

            assert answered and answered[0].status_code == 200
            assert [v.tag for v in etree.fromstring(answered[0].content)] == ["Say"]
            assert code == 0
            # Each web worker ended by itself; one that kept connections open past gunicorn's
            # graceful timeout (10 s) is killed by the master instead and never says this.
            assert gw.logs().count("Worker exiting") == 2
