"""`gateway check-apps` against a real app on loopback: a signed dry run of each opted-in app's
answer URL, and a report of what would run, what cannot, and every URL outside allowed_hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, APP_TOKEN_ENV, app_config, write_mappings


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        yield customer_app


@pytest.fixture(autouse=True)
def fresh(app):
    app.clear()


def check_apps(tmp_path: Path, apps: list[dict], *args: str) -> subprocess.CompletedProcess:
    write_mappings(tmp_path / "mappings", apps)
    env = {**os.environ, APP_TOKEN_ENV: APP_AUTH_TOKEN}
    return subprocess.run([sys.executable, "-m", "gateway.cli", "check-apps",
                           str(tmp_path / "mappings"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_a_good_app_is_fetched_once_as_a_marked_signed_dry_run(app, tmp_path):
    app.route("/answer", f'<Response><Speak>Welcome</Speak><Conference callbackUrl="'
                         f'{app.url("/cb")}" waitSound="{app.url("/music")}">Sales</Conference>'
                         "</Response>")
    result = check_apps(tmp_path, [app_config(app.url("/answer"), check=True)])
    assert result.returncode == 0, result.stdout + result.stderr
    (request,) = app.requests_to("/answer")
    assert request.signatures_valid and request.method == "POST"
    assert request.headers.get("Gateway-Dry-Run") == "check-apps"
    p = request.params
    assert p["CallUUID"].startswith("check-apps-") and "dry run" in p["CallerName"]
    assert (p["To"], p["Event"], p["CallStatus"]) == ("14155550100", "StartApp", "ringing")
    out = result.stdout
    assert "app support (" in out and "dry run" in out
    assert "<Conference room> translated" in out and "<Conference callbackUrl> emulated" in out
    assert f"<Conference waitSound> the gateway would request {app.url('/music')}" in out
    assert out.splitlines()[-1] == "1 app(s) checked, 0 problem(s)"


def test_elements_it_cannot_run_and_urls_outside_allowed_hosts_are_problems(app, tmp_path):
    app.route("/answer", '<Response>\n<Conference action="https://elsewhere.example/left">Sales'
                         "</Conference>\n<MultiPartyCall role=\"ai-agent\">m</MultiPartyCall>\n"
                         "<Redirect>http://10.1.2.3/next?token=secret</Redirect>\n</Response>")
    result = check_apps(tmp_path, [app_config(app.url("/answer"), check=True)])
    assert result.returncode == 1
    problems = [line.strip() for line in result.stdout.splitlines() if "PROBLEM" in line]
    assert any("line 3: <MultiPartyCall> cannot run on the gateway" in p for p in problems)
    assert any("<Conference action> https://elsewhere.example/left: host 'elsewhere.example' "
               "is not in allowed_hosts" in p for p in problems)
    assert any("<Redirect (its URL)> http://10.1.2.3/next" in p for p in problems)
    assert "secret" not in result.stdout  # URLs are reported without their query
    assert len(problems) == 3
    assert result.stdout.splitlines()[-1] == "1 app(s) checked, 3 problem(s)"


def test_a_document_made_only_of_elements_it_cannot_run_is_a_problem(app, tmp_path):
    app.route("/answer", '<Response><MultiPartyCall role="ai-agent">sales</MultiPartyCall>'
                         "\n<Stream>wss://stream.elsewhere.example/s</Stream></Response>")
    result = check_apps(tmp_path, [app_config(app.url("/answer"), check=True)])
    assert result.returncode == 1 and "line 1: <MultiPartyCall> cannot run" in result.stdout
    assert "line 2: <Stream> cannot run on the gateway: the stream URL's host " in result.stdout


def test_apps_that_did_not_opt_in_are_never_requested(app, tmp_path):
    apps = [app_config(app.url("/answer"), check=True),
            app_config(app.url("/private"), name="private", numbers=("+14155550999",))]
    app.route("/answer", "<Response><Speak>Hi</Speak></Response>")
    result = check_apps(tmp_path, apps)
    assert result.returncode == 0
    assert app.count("/private") == 0
    assert "app private: not checked (add `check = true`" in result.stdout


@pytest.mark.parametrize(("body", "status", "reason"), [
    ("oops", 500, "failed: HTTP 500"),
    ("<Response><Say>TwiML</Say></Response>", 200, "invalid Plivo XML: line 1, <Say>"),
])
def test_a_failing_or_invalid_answer_url_is_a_problem(app, tmp_path, body, status, reason):
    app.route("/answer", body, status=status)
    result = check_apps(tmp_path, [app_config(app.url("/answer"), check=True)])
    assert result.returncode == 1 and reason in result.stdout


def test_invalid_routing_files_stop_before_any_request(app, tmp_path):
    result = check_apps(tmp_path, [app_config(app.url("/answer"), check="yes")])
    assert result.returncode == 2 and "check: must be true or false" in result.stderr
    assert app.count() == 0


def test_menus_and_voicemail_are_reported_with_every_url_the_gateway_would_request(app, tmp_path):
    app.route("/answer", f'<Response><GetDigits action="{app.url("/choice")}" '
                         'invalidDigitsSound="https://cdn.example/invalid.mp3">'
                         "<Speak>Press 1</Speak></GetDigits>\n"
                         f'<Record action="{app.url("/saved")}" '
                         'transcriptionUrl="https://transcripts.example/t"/></Response>')
    result = check_apps(tmp_path, [app_config(app.url("/answer"), check=True)])
    out = result.stdout
    assert f"<GetDigits action> the gateway would request {app.url('/choice')}" in out
    assert f"<Record action> the gateway would request {app.url('/saved')}" in out
    # The invalid-digits sound is played by Twilio (a <Play>): allowed_hosts does not apply.
    assert "invalid.mp3" not in out
    problems = [line.strip() for line in out.splitlines() if "PROBLEM" in line]
    assert problems == ["PROBLEM line 2: <Record transcriptionUrl> https://transcripts.example/t: "
                        "host 'transcripts.example' is not in allowed_hosts (the gateway would "
                        "refuse to fetch it)"]
    assert result.returncode == 1
