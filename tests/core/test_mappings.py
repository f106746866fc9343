"""Routing files: `gateway check-mappings` reports every error with its file and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.mappings import MappingsInvalid, check_mappings, load_mappings

GOOD = """
[[app]]
name = "support"
account = "MA00000000000000000001"
numbers = ["+14155550100", "+14155550101"]
answer_url = "https://app.example.com/answer"
hangup_url = "https://app.example.com/hangup"
auth_token_env = "SUPPORT_TOKEN"
allowed_hosts = ["app.example.com"]
"""
ENV = {"SUPPORT_TOKEN": "t", "OTHER_TOKEN": "t"}


def write(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def errors_of(tmp_path: Path, env=ENV, **files: str) -> list[str]:
    _, errors = check_mappings(write(tmp_path, **files), env)
    return [f"{Path(e.file).name}: {e.key}: {e.reason}" for e in errors]


def test_a_good_file_routes_its_numbers(tmp_path):
    mappings = load_mappings(write(tmp_path, **{"a.toml": GOOD}), ENV)
    app = mappings.app_for_number("+14155550101")
    assert app.name == "support" and app.answer_method == "POST" and app.hangup_method == "POST"
    assert mappings.app_for_number("14155550100") is app  # '+' tolerated
    assert mappings.app_for_number("+19999999999") is None
    assert app.auth_token(ENV) == "t"


def test_every_error_is_reported_with_file_and_key(tmp_path):
    bad = GOOD.replace('"https://app.example.com/hangup"', '"ftp://app.example.com/h"')
    bad = bad.replace('numbers = ["+14155550100", "+14155550101"]', 'numbers = ["4155550100"]')
    bad += 'colour = "blue"\n'
    errors = errors_of(tmp_path, **{"a.toml": bad})
    assert "a.toml: app[0].colour: unknown key" in " ".join(errors)
    assert any("app[0].numbers[0]" in e and "E.164" in e for e in errors)
    assert any("app[0].hangup_url" in e and "not an absolute http(s) URL" in e for e in errors)
    assert len(errors) == 3


def test_duplicate_numbers_across_files(tmp_path):
    other = GOOD.replace('name = "support"', 'name = "sales"').replace(
        "SUPPORT_TOKEN", "OTHER_TOKEN")
    errors = errors_of(tmp_path, **{"a.toml": GOOD, "b.toml": other})
    assert any("b.toml" in e and "+14155550100 is already routed to app 'support'" in e
               for e in errors)


def test_token_variable_must_be_set(tmp_path):
    errors = errors_of(tmp_path, env={}, **{"a.toml": GOOD})
    assert errors == ["a.toml: app[0].auth_token_env: environment variable SUPPORT_TOKEN is "
                      "not set"]


@pytest.mark.parametrize(("change", "key", "reason"), [
    (('answer_url = "https://app.example.com/answer"', ""), "answer_url", "is required"),
    (('allowed_hosts = ["app.example.com"]', 'allowed_hosts = ["other.example.com"]'),
     "answer_url", "not in allowed_hosts"),
    (('allowed_hosts = ["app.example.com"]', 'allowed_hosts = ["bad host!"]'),
     "allowed_hosts[0]", "not a host name"),
    (('hangup_url = "https://app.example.com/hangup"',
      'hangup_url = "https://app.example.com/hangup"\nhangup_method = "PUT"'),
     "hangup_method", "GET or POST"),
    (('account = "MA00000000000000000001"', 'account = "MA 1"'), "account", "Plivo auth ID"),
    (('allowed_hosts = ["app.example.com"]', 'allowed_hosts = ["app.example.com"]\ncheck = "yes"'),
     "check", "must be true or false"),
])
def test_bad_values(tmp_path, change, key, reason):
    errors = errors_of(tmp_path, **{"a.toml": GOOD.replace(*change)})
    assert any(f"app[0].{key}" in e and reason in e for e in errors), errors


def test_check_apps_is_opt_in_per_app(tmp_path):
    opted = GOOD + "check = true\n"
    assert load_mappings(write(tmp_path, **{"a.toml": opted}), ENV).apps[0].check is True
    assert load_mappings(write(tmp_path, **{"a.toml": GOOD}), ENV).apps[0].check is False


def test_not_toml_and_empty_directory(tmp_path):
    assert "not valid TOML" in errors_of(tmp_path, **{"a.toml": "[[app]\nname="})[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no *.toml routing file" in check_mappings(empty, ENV)[1][0].reason


def test_load_raises_with_all_errors(tmp_path):
    with pytest.raises(MappingsInvalid) as info:
        load_mappings(write(tmp_path, **{"a.toml": GOOD}), {})
    assert len(info.value.errors) == 1


def test_cli_exit_status_and_output(tmp_path):
    path = write(tmp_path, **{"a.toml": GOOD})
    ok = subprocess.run([sys.executable, "-m", "gateway.cli", "check-mappings", str(path)],
                        capture_output=True, text=True, env={"SUPPORT_TOKEN": "x",
                                                             "PATH": "/usr/bin:/bin"},
                        timeout=60)
    assert ok.returncode == 0 and "1 app(s), 2 number(s)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "gateway.cli", "check-mappings", str(path)],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                         timeout=60)
    assert bad.returncode == 1
    assert "a.toml: app[0].auth_token_env: environment variable SUPPORT_TOKEN is not set" in (
        bad.stderr)


def test_the_shipped_example_is_valid_once_its_token_is_set():
    root = Path(__file__).resolve().parents[2]
    apps, errors = check_mappings(root / "mappings", {"SUPPORT_PLIVO_AUTH_TOKEN": "x"})
    assert errors == [] and apps[0].numbers == ("+14155550100",)


def test_sms_from_is_the_optional_sender_of_messages_and_must_be_e164(tmp_path):
    for name in ("set", "unset", "bad"):
        (tmp_path / name).mkdir()
    with_sender = load_mappings(write(tmp_path / "set", **{
        "a.toml": GOOD + 'sms_from = "+14155550199"\n'}), ENV)
    assert with_sender.app_named("support").sms_from == "+14155550199"
    without = load_mappings(write(tmp_path / "unset", **{"a.toml": GOOD}), ENV)
    assert without.app_named("support").sms_from is None  # the called number sends
    errors = errors_of(tmp_path / "bad", **{"a.toml": GOOD + 'sms_from = "4155550199"\n'})
    assert errors == ["a.toml: app[0].sms_from: '4155550199' is not an E.164 number like "
                      "+14155550100 (the Twilio number <Message> sends from)"]
