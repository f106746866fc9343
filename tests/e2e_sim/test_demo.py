"""`gateway demo` as users (and CI) run it: a subprocess, no configuration, nothing else running.

It must tell every example's story and exit 0 in under a minute, exit non-zero when a promise is
broken (a demo that hides a failure is worse than none), and leave nothing behind, also when
interrupted.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from plivo.utils.signature_v3 import validate_v3_signature

from gateway.app_side.signing import signature_headers
from gateway.sim.demo import report, run_demo
from gateway.sim.example_app import ExampleApp

pytestmark = pytest.mark.slow

DEMO = [sys.executable, "-m", "gateway.cli", "demo"]
CI_BUDGET = 60.0  # seconds: the bound for the whole demo


def parts_started(stderr: str) -> tuple[str, Path]:
    """The gateway URL and the temporary directory the demo announced on stderr."""
    gateway = re.search(r"^gateway\s+(http://\S+)", stderr, re.M)
    workdir = re.search(r"SQLite in (\S+)\)", stderr)
    assert gateway and workdir, stderr
    return gateway.group(1), Path(workdir.group(1))


def gateway_is_down(url: str) -> bool:
    try:
        requests.get(url + "/healthz", timeout=2)
    except requests.RequestException:
        return True
    return False


def test_demo_tells_each_example_and_exits_0_within_a_minute():
    started = time.monotonic()
    done = subprocess.run(DEMO, capture_output=True, text=True, timeout=CI_BUDGET * 2)
    took = time.monotonic() - started
    print(f"gateway demo took {took:.1f} s")  # reported with -s; the bound is asserted below
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for n, title in enumerate(["A simple conference", "A moderated conference",
                               "Join a conference muted", "Bridging incoming calls",
                               "Call on hold", "Combining with other attributes",
                               "Using callbackUrl",
                               "An IVR in front of a room, voicemail after it"], start=1):
        assert f"== Example {n}: {title} " in done.stdout
    assert "[FAIL]" not in done.stdout
    assert "OK: 8 example(s), 15 calls, every promise kept" in done.stdout
    # the story says who joined which room as the app wrote it, what they heard, what the app got
    assert "guest      joins room '9876'" in done.stdout
    assert "guest      hears, while waiting, \"Thanks for waiting.\"" in done.stdout
    assert "gets callbackUrl /confevents/ for heidi: ConferenceAction=enter" in done.stdout
    assert ("gets callbackUrl /confevents/ for heidi: ConferenceAction=digits, ConferenceName="
            "MyRoom, ConferenceMemberID=1, ConferenceDigitsMatch=99") in done.stdout
    # the IVR: a key chooses, the room is met, the voicemail is recorded and transcribed
    assert "gets the menu's action /ivr/choice/ for kim: Digits=2" in done.stdout
    assert "judy       joins room 'Team Room'" in done.stdout
    assert "gets the Record action /ivr/recorded/ for kim: RecordingDuration=" in done.stdout
    assert "gets the transcriptionUrl for kim: \"" in done.stdout
    assert "the transcriptionUrl got Plivo's transcription parameters once" in done.stdout
    gateway, workdir = parts_started(done.stderr)
    assert not workdir.exists() and gateway_is_down(gateway)
    assert took < CI_BUDGET


def test_demo_json_prints_the_transcript_and_keep_keeps_the_directory():
    done = subprocess.run([*DEMO, "--example", "6", "--json", "--keep"], capture_output=True,
                          text=True, timeout=CI_BUDGET)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["type"] == "run-start" and lines[-1]["type"] == "demo-end"
    assert lines[-1]["ok"] is True and lines[-1]["examples"] == [6]
    heard = [(e["kind"], e["detail"]) for e in lines
             if e["type"] == "heard" and e["call"] == "grace"]
    assert ("say", "You left the conference. This is the next step. Goodbye.") in heard
    assert [e["path"] for e in lines if e["type"] == "app-request"] == [
        "/answer/6/caller", "/nextstep/", "/hangup/"]
    assert {e["status"] for e in lines if e["type"] == "check"} == {"ok"}
    _, workdir = parts_started(done.stderr)
    try:
        assert f"kept {workdir}" in done.stderr
        assert (workdir / "gateway.log").is_file()
        assert (workdir / "mappings" / "demo.toml").is_file()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_demo_stops_everything_it_started(signum):
    demo = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr = ""
    try:
        deadline = time.monotonic() + 45
        while "playing" not in stderr and time.monotonic() < deadline:
            line = demo.stderr.readline()
            if not line:
                break
            stderr += line
        assert "playing" in stderr, stderr
        demo.send_signal(signum)
        _, rest = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=10)
    assert demo.returncode == 130, stderr + rest
    assert "interrupted" in rest
    gateway, workdir = parts_started(stderr)
    assert not workdir.exists()
    assert gateway_is_down(gateway)


def test_a_broken_promise_fails_the_demo_and_is_named(tmp_path):
    run = run_demo([6, 8], tmp_path, io.StringIO())
    out = io.StringIO()
    assert report(run, [6, 8], 1.0, False, out) == 0, out.getvalue()
    # The same run, had the app never been asked for the Redirect, had a signature failed, and
    # had the voicemail's transcription never arrived.
    broken = dataclasses.replace(run, requests=[
        dataclasses.replace(r, signature_ok=False, signature_problem="V3 does not match")
        if r.path == "/hangup/" and r.params.get("From", "").endswith("0601") else r
        for r in run.requests if r.path not in ("/nextstep/", "/ivr/transcription/")])
    out = io.StringIO()
    assert report(broken, [6, 8], 1.0, False, out) == 1
    story = out.getvalue()
    assert "FAILED: 3 promise(s) not kept" in story
    assert "example 6: the app served the <Redirect> URL once" in story
    assert "grace: /hangup/ signature rejected (V3 does not match)" in story
    assert "example 8: the transcriptionUrl got Plivo's transcription parameters once" in story
    out = io.StringIO()
    assert report(broken, [6, 8], 1.0, True, out) == 1
    assert json.loads(out.getvalue().splitlines()[-1])["ok"] is False


def test_example_app_serves_the_examples_and_refuses_a_bad_signature():
    url_path = "/answer/2/participant"
    params = {"CallUUID": "c0ffee00-0000-4000-8000-000000000001", "Event": "StartApp"}
    with ExampleApp("demo-app-token") as example_app:
        url = example_app.url(url_path)
        good = signature_headers("POST", url, params, "demo-app-token")
        # What the app accepts, the plivo SDK accepts too.
        assert validate_v3_signature("POST", url, good["X-Plivo-Signature-V3-Nonce"],
                                     "demo-app-token", good["X-Plivo-Signature-V3"], params)
        answer = requests.post(url, data=params, headers=good, timeout=5)
        assert answer.status_code == 200
        assert 'waitSound="' + example_app.url("/waitmusic/") + '"' in answer.text
        forged = signature_headers("POST", url, params, "someone-elses-token")
        assert requests.post(url, data=params, headers=forged, timeout=5).status_code == 403
        unsigned = requests.post(example_app.url("/hangup/"), data=params, timeout=5)
        assert unsigned.status_code == 403
        assert [(r.path, r.signature_ok) for r in example_app.requests] == [
            (url_path, True), (url_path, False), ("/hangup/", False)]
