"""`gateway simulate`: JSON lines on stdout, exit status by what the gateway answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main as gateway_main
from gateway.sim.cli import simulate_main
from tests.sim.support import ACCOUNT_SID, AUTH_TOKEN, FakeGateway

SCENARIO = """
duration = 3.0
[[call]]
name = "alice"
from = "+14155550101"
to = "+14155550100"
hangup_at = 0.5
"""


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "alice.toml"
    path.write_text(SCENARIO)
    return path


def lines(out: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in out.splitlines()]


def test_simulate_prints_one_json_object_per_line(
        credentials: None, scenario: Path, gateway: FakeGateway,
        capsys: pytest.CaptureFixture[str]) -> None:
    gateway.twiml("/twilio/voice", "<Say>Welcome</Say>")
    status = simulate_main([str(scenario), "--gateway", gateway.base])
    events = lines(capsys.readouterr().out)
    assert status == 0
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run-start" and kinds[-1] == "run-end"
    assert {"call-start", "sent", "received", "heard", "call-end"} <= set(kinds)
    heard = [e for e in events if e["type"] == "heard"]
    assert heard[0] == {"type": "heard", "t": heard[0]["t"], "call": "alice", "kind": "say",
                        "detail": "Welcome", "voice": "man", "language": "en-US", "loop": 1}


def test_simulate_is_wired_as_a_gateway_subcommand(
        credentials: None, scenario: Path, gateway: FakeGateway,
        capsys: pytest.CaptureFixture[str]) -> None:
    gateway.twiml("/twilio/voice", "<Hangup/>")
    assert gateway_main(["simulate", str(scenario), "--gateway", gateway.base]) == 0
    assert lines(capsys.readouterr().out)[-1]["ok"] is True


def test_a_gateway_answering_5xx_exits_non_zero(
        credentials: None, scenario: Path, gateway: FakeGateway,
        capsys: pytest.CaptureFixture[str]) -> None:
    gateway.routes["/twilio/voice"] = ("oops", 502, "text/plain")
    # The caller stays on the line until the run ends: on a busy machine the answer can take
    # longer than the default scenario's 0.5 s before she hangs up.
    scenario.write_text(SCENARIO.replace("hangup_at = 0.5", "hangup_at = 2.9"))
    assert simulate_main([str(scenario), "--gateway", gateway.base]) == 1
    errors = [e for e in lines(capsys.readouterr().out) if e["type"] == "error"]
    assert errors[0]["code"] == 11200


def test_a_gateway_that_is_down_exits_non_zero_quickly(
        credentials: None, scenario: Path, capsys: pytest.CaptureFixture[str]) -> None:
    down = FakeGateway()
    down.close()
    assert simulate_main([str(scenario), "--gateway", down.base, "--timeout", "2"]) == 1
    assert lines(capsys.readouterr().out)[-1]["type"] == "run-end"


def test_an_invalid_scenario_is_rejected_with_file_key_and_reason(
        credentials: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SCENARIO.replace("hangup_at", "hang_up_at"))
    assert simulate_main([str(path), "--gateway", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: call[0].hang_up_at: unknown key" in err


def test_an_unmapped_number_is_rejected_before_any_call(
        credentials: None, scenario: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "apps.toml").write_text(
        '[[app]]\nname = "other"\naccount = "MA1"\nnumbers = ["+14155550199"]\n'
        'answer_url = "http://127.0.0.1:9/answer"\nauth_token_env = "SIM_UNSET"\n'
        'allowed_hosts = ["127.0.0.1"]\n')
    status = simulate_main([str(scenario), "--gateway", "http://127.0.0.1:9",
                            "--mappings", str(mappings)])
    assert status == 2
    assert "call[0].to: +14155550100 is not routed" in capsys.readouterr().err


def test_credentials_are_required(scenario: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    assert simulate_main([str(scenario), "--gateway", "http://127.0.0.1:9"]) == 2
    assert "TWILIO_AUTH_TOKEN" in capsys.readouterr().err


def test_the_api_port_is_the_one_asked_for(
        credentials: None, scenario: Path, gateway: FakeGateway,
        capsys: pytest.CaptureFixture[str]) -> None:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway.twiml("/twilio/voice", "<Hangup/>")
    assert simulate_main([str(scenario), "--gateway", gateway.base, "--api-port",
                          str(port)]) == 0
    assert lines(capsys.readouterr().out)[0]["api"] == f"http://127.0.0.1:{port}"
