"""`gateway translate`: TwiML on stdout, the report on stderr, non-zero exit on invalid XML and
on a document that reaches an element the gateway cannot run."""

from __future__ import annotations

import subprocess
import sys

from lxml import etree


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "translate", *args],
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_translate_prints_twiml_and_report():
    result = run("-", stdin='<Response><Speak>Hi</Speak><Conference beep="false">r</Conference>'
                            "</Response>")
    assert result.returncode == 0
    first = result.stdout.splitlines()[0]
    tree = etree.fromstring(first.encode())
    assert [v.tag for v in tree] == ["Say", "Dial"]
    assert "{gateway}/twilio/conference/left" in first
    assert "<Conference beep> ignored" in result.stderr


def test_an_element_the_gateway_cannot_run_exits_non_zero_naming_element_and_line():
    result = run("-", stdin='<Response><Speak>Hi</Speak>\n<Conference>r</Conference>\n'
                            '<MultiPartyCall role="ai-agent">m</MultiPartyCall></Response>')
    assert result.returncode == 1
    first, after_room, refused = result.stdout.splitlines()
    assert [v.tag for v in etree.fromstring(first.encode())] == ["Say", "Dial"]
    assert "when the member leaves the room of line 2" in after_room
    assert "apology" in refused and "<MultiPartyCall> on line 3 cannot run" in refused
    assert "line 3: <MultiPartyCall> cannot run on the gateway: role ai-agent" in result.stderr
    assert result.stderr.splitlines()[-1].endswith(
        "cannot run on the gateway: <MultiPartyCall> on line 3")


def test_a_document_made_only_of_elements_it_cannot_run_is_not_an_empty_response():
    result = run("-", stdin="<Response><MultiPartyCall role=\"ai-agent\">m</MultiPartyCall>"
                             "</Response>")
    assert result.returncode == 1
    assert "<Response" not in result.stdout
    assert "line 1: <MultiPartyCall> cannot run on the gateway" in result.stderr


def dial_time_limit(result: subprocess.CompletedProcess) -> str:
    return etree.fromstring(result.stdout.splitlines()[0].encode()).find("Dial").get("timeLimit")


def test_the_call_length_cap_is_written_on_every_dial_and_configurable():
    room = "<Response><Conference>r</Conference></Response>"
    assert dial_time_limit(run("-", stdin=room)) == "14400"
    assert dial_time_limit(run("--max-call-seconds", "3600", "-", stdin=room)) == "3600"
    too_long = run("--max-call-seconds", "14401", "-", stdin="<Response/>")
    assert too_long.returncode == 2 and "--max-call-seconds" in too_long.stderr


def test_translate_shows_what_runs_after_the_conference():
    result = run("-", stdin='<Response><Conference hangupOnStar="true">plivo</Conference>'
                            "<Redirect>http://www.foo.com/nextstep/</Redirect></Response>")
    lines = result.stdout.splitlines()
    assert "when the member leaves the room" in lines[1]
    assert "{gateway}/twilio/continue?step=1" in lines[2]
    assert "fetches http://www.foo.com/nextstep/" in lines[3]
    assert len(run("--first", "-", stdin="<Response><Conference>r</Conference><Speak>x</Speak>"
                   "</Response>").stdout.splitlines()) == 1


def test_translate_shows_what_runs_after_a_recording():
    result = run("-", stdin='<Response><Record action="http://a.example/saved" redirect="false"/>'
                            "<Speak>Goodbye</Speak></Response>")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "<Record action=\"{gateway}/twilio/record?rec=0-0\"" in lines[0]
    assert lines[1] == "<!-- when the recording of line 1 ends: -->"
    assert "<Say" in lines[2] and "Goodbye" in lines[2]
    assert "<Record action> emulated" in result.stderr


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


def test_a_forward_says_what_comes_when_it_ends():
    result = run("-", stdin='<Response><Dial action="https://a.example/d" redirect="false">'
                            "<Number>14155550100</Number></Dial><Speak>Bye</Speak></Response>")
    assert result.returncode == 0
    assert "<!-- when the forward of line 1 ends: -->" in result.stdout
    assert "<Say" in result.stdout.splitlines()[-1]


def test_digits_match_shows_the_side_stream_and_its_stop_after_the_room():
    result = run("-", stdin='<Response><Conference digitsMatch="99" callbackUrl='
                            '"http://a.example/cb">r</Conference><Speak>Bye</Speak></Response>')
    assert result.returncode == 0
    first, _, after = result.stdout.splitlines()
    start, _dial = etree.fromstring(first.encode())
    stream = start.find("Stream")
    assert stream.get("url") == "{gateway-wss}/twilio/media"
    assert {p.get("name"): p.get("value") for p in stream} == {
        "member": "member-0-{CallSid}", "token": "{token}"}
    stop, say = etree.fromstring(after.encode())
    assert (stop.tag, stop.find("Stream").get("name"), say.tag) == (
        "Stop", "member-0-{CallSid}", "Say")
    assert "<Conference digitsMatch> emulated" in result.stderr
