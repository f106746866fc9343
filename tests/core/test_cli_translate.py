"""`gateway translate`: TwiML on stdout, the report on stderr, non-zero exit on invalid XML."""

from __future__ import annotations

import subprocess
import sys

from lxml import etree


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "translate", *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_translate_prints_twiml_and_report():
    result = run("-", stdin='<Response><Speak>Hi</Speak><Conference beep="false">r</Conference>'
                            "<MultiPartyCall>m</MultiPartyCall></Response>")
    assert result.returncode == 0
    first = result.stdout.splitlines()[0]
    tree = etree.fromstring(first.encode())
    assert [v.tag for v in tree] == ["Say", "Dial"]
    assert "{gateway}/twilio/conference/left" in first
    assert "<Conference beep> ignored" in result.stderr
    assert "<MultiPartyCall> not-yet" in result.stderr


def test_translate_shows_what_runs_after_the_conference():
    result = run("-", stdin='<Response><Conference hangupOnStar="true">plivo</Conference>'
                            "<Redirect>http://www.foo.com/nextstep/</Redirect></Response>")
    lines = result.stdout.splitlines()
    assert "when the member leaves the room" in lines[1]
    assert "{gateway}/twilio/continue?step=1" in lines[2]
    assert "fetches http://www.foo.com/nextstep/" in lines[3]
    assert len(run("--first", "-", stdin="<Response><Conference>r</Conference><Speak>x</Speak>"
                   "</Response>").stdout.splitlines()) == 1


def test_invalid_xml_exits_non_zero_with_line_and_reason(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text('<Response>\n<Conference maxMembers="lots">r</Conference>\n</Response>')
    result = run(str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "line 2, <Conference maxMembers>: 'lots' is not an integer" in result.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    result = run(str(tmp_path / "nope.xml"))
    assert result.returncode == 2 and "cannot read" in result.stderr
