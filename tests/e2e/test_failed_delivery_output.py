"""What an operator sees of a callback that finally failed: no credentials in the log line, and a
listing that can be piped into `head` without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.test_callbacks import Call, start_gateway, wait_for_failed
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN


@pytest.fixture
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        yield app


def test_failed_delivery_log_line_and_listing(tmp_path, app):
    url = app.url("/cb").replace("http://", "http://operator:s3cret-pw@") + "?token=q-secret"
    app.route("/answer", f'<Response><Conference callbackUrl="{url}#rc=1&amp;rp=5xx">'
                         "Sales</Conference></Response>")
    app.route("/cb", status=500, body="")
    with start_gateway(tmp_path, app) as gw:
        call = Call(gw)
        call.answer()
        call.event("participant-join")
        assert len(wait_for_failed(gw)) == 1
        logs = gw.logs()
        assert "failed for good" in logs
        assert "s3cret-pw" not in logs and "operator:" not in logs and "q-secret" not in logs

        # The reader goes away before the listing is written: no BrokenPipeError traceback.
        piped = subprocess.run(
            f"{sys.executable} -m gateway.cli deliveries --failed | true", shell=True,
            env=gw.env, cwd=gw.workdir, capture_output=True, text=True, timeout=60)
        assert piped.returncode == 0
        assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr
