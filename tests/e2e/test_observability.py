"""What operators see: /metrics in Prometheus format summed over every gunicorn worker and the job
worker, liveness apart from readiness, and JSON log lines that name the call."""

from __future__ import annotations

import json

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_callbacks import Call, conference_answer
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, GatewayServer, app_config


def samples(gw: GatewayServer) -> dict[tuple[str, tuple], float]:
    response = requests.get(gw.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        yield app


def test_metrics_count_every_process_and_read_state_from_the_store(tmp_path, app):
    conference_answer(app)
    app.route("/cb", body="")
    app.route("/broken", '<Response><Conference maxMembers="0">R</Conference></Response>')
    apps = [app_config(app.url("/answer")),
            app_config(app.url("/broken"), name="broken", numbers=("+14155550199",))]
    with GatewayServer(tmp_path, apps=apps) as gw:
        calls = [Call(gw) for _ in range(6)]  # spread over both gunicorn workers
        for call in calls:
            assert call.answer().status_code == 200
        calls[0].event("participant-join")
        bad = Call(gw)
        bad.params["To"] = bad.params["Called"] = "+14155550199"
        bad.answer()
        assert gw.signed_post("/twilio/voice", calls[1].params, signature="forged"
                              ).status_code == 403
        app.wait_for(lambda reqs: any(r.path == "/cb" for r in reqs), timeout=15)

        found = samples(gw)
        assert value(found, "gateway_webhooks_total", route="twilio.voice", outcome="ok") == 6
        assert value(found, "gateway_webhooks_total", route="twilio.voice",
                     outcome="app-failed") == 1
        assert value(found, "gateway_webhooks_total", route="twilio.voice",
                     outcome="forbidden") == 1
        assert value(found, "gateway_webhooks_total", route="twilio.conference_events",
                     outcome="ok") == 1
        assert value(found, "gateway_app_fetch_seconds_count", app="support", outcome="ok") == 6
        assert value(found, "gateway_translation_errors_total", element="Conference") == 1
        assert value(found, "gateway_live_rooms") == 1
        assert value(found, "gateway_live_members") == 1
        assert value(found, "gateway_spooled_events") == 0
        # The enter callback was delivered by the job worker, a process of its own.
        for _ in range(50):
            if value(found, "gateway_deliveries_total", kind="enter", outcome="delivered"):
                break
            found = samples(gw)
        assert value(found, "gateway_deliveries_total", kind="enter", outcome="delivered") == 1


def test_liveness_apart_from_readiness(tmp_path, app, redis_server_factory):
    redis = redis_server_factory()
    with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))],
                       store_url=redis.url()) as gw:
        assert requests.get(gw.url + "/readyz", timeout=5).status_code == 200
        redis.stop()
        assert requests.get(gw.url + "/readyz", timeout=10).status_code == 503
        assert requests.get(gw.url + "/livez", timeout=5).status_code == 200


def test_json_log_lines_carry_the_call_ids(tmp_path, app):
    app.route("/answer", status=500, body="")
    with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))],
                       env={"GATEWAY_LOG_FORMAT": "json"}) as gw:
        call = Call(gw)
        call.answer()
        lines = [json.loads(line) for line in gw.logs().splitlines()
                 if line.startswith("{") and call.sid in line]
        failure = [line for line in lines if line["level"] == "ERROR"]
        assert failure, gw.logs()[-2000:]
        assert failure[0]["CallSid"] == call.sid
        assert len(failure[0]["CallUUID"]) == 36 and failure[0]["logger"] == "gateway.twilio"


def test_a_metrics_file_left_empty_does_not_fail_the_scrape(tmp_path, app):
    """A process creates its metrics file before sizing it: a scrape can meet it empty, and a
    process killed in that moment leaves it so for good (prometheus/client_python#1199)."""
    conference_answer(app)
    metrics_dir = tmp_path / "metrics"
    with GatewayServer(tmp_path / "gw", apps=[app_config(app.url("/answer"))],
                       env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as gw:
        (metrics_dir / "counter_4194304.db").touch()  # a pid that will not come back
        (metrics_dir / "histogram_4194304.db").touch()
        assert Call(gw).answer().status_code == 200
        found = samples(gw)  # 200, and what the live processes counted
        assert value(found, "gateway_webhooks_total", route="twilio.voice", outcome="ok") == 1
