"""Every document of the Plivo SDK's XML tests translates, is refused with Plivo's own reason, or
is refused by the gateway naming the element it cannot run; none crashes.

The corpus lives in ../shared/corpus (data extracted from plivo-python's tests). Its outcome per
document is pinned here, so a change in what translates is a visible, deliberate change.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.plivoxml import PlivoXMLError, UnsupportedElement, parse_document
from gateway.translate import ElementCannotRun, TranslationContext, translate

CORPUS = Path(__file__).resolve().parents[2].parent / "shared/corpus/plivo-sdk-xml-fixtures.json"
FIXTURES = json.loads(CORPUS.read_text()) if CORPUS.exists() else []

# (file, line) -> the reason Plivo itself refuses the document. Everything else translates.
REFUSED = {
    ("test_MultiPartyCallElement.py", 11): "root element must be <Response>",
    ("test_MultiPartyCallElement.py", 28): "root element must be <Response>",
    ("test_MultiPartyCallElement.py", 70): "root element must be <Response>",
    ("test_conferenceElement.py", 9): "<Conference> needs a name",
    # "A Number or User element must be present and nested inside Dial" (Plivo's Dial page).
    ("test_responseElement.py", 25): "<Dial> needs at least one <Number> or <User>",
    # A Number that is no phone number, a User that is no SIP URI: Plivo cannot dial them.
    ("test_numberElement.py", 9): "'This is Test' is not a phone number",
    ("test_userElement.py", 9): "'This is Test' is not a plain SIP URI",
    ("test_getDigitsElement.py", 8): "not an absolute http(s) URL",
    ("test_getInputElement.py", 8): "'50' is not allowed: must be auto or an integer from 2 to 10",
    ("test_responseElement.py", 30): "'dummy' is not DTMF",
    ("test_responseElement.py", 44): "2 is out of range: must be an integer from 5 to 60",
    ("test_playElement.py", 9): "not an absolute http(s) URL",
    ("test_preAnswerElement.py", 9): "not an absolute http(s) URL",
    ("test_redirectElement.py", 9): "not an absolute http(s) URL",
    ("test_responseElement.py", 63): "not an absolute http(s) URL",
    ("test_responseElement.py", 81): "not an absolute http(s) URL",
}

# (file, line) -> why the gateway cannot run a document that parses: an element it supports,
# written without what it needs at call time (reported with the reason, never skipped).
CANNOT_RUN = {
    ("test_responseElement.py", 58): "no dst: there is nobody to send the message to",
    ("test_responseElement.py", 108): "hold=\"true\": Twilio's TwiML cannot join a participant "
                                      "on hold",
}


def test_corpus_is_present_and_complete():
    assert len(FIXTURES) == 43, f"expected the 43 SDK documents in {CORPUS}"


@pytest.mark.parametrize("fixture", FIXTURES,
                         ids=[f"{Path(f['file']).name}:{f['line']}" for f in FIXTURES])
def test_corpus_document_translates_or_is_reported(fixture):
    key = (Path(fixture["file"]).name, fixture["line"])
    try:
        document = parse_document(fixture["xml"])
    except PlivoXMLError as exc:
        assert key in REFUSED, f"unexpectedly refused: {exc}"
        assert REFUSED[key] in str(exc)
        assert exc.line is not None
        return
    assert key not in REFUSED, "expected Plivo to refuse this document"
    not_yet = [(e.tag, e.line) for e in document.steps if isinstance(e, UnsupportedElement)]
    try:
        result = translate(document, TranslationContext(account="MA00000000000000000001"))
    except ElementCannotRun as exc:
        if key in CANNOT_RUN:
            assert CANNOT_RUN[key] in exc.reason
            return
        assert (exc.element, exc.line) in not_yet  # named, with its line: never skipped
        return
    assert result.twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response')
    reported = [n.element for n in result.notes if n.status == "not-yet"]
    assert len(reported) == len(not_yet)


def test_conference_fixture_translates_once_it_has_a_room(tmp_path):
    # The SDK's <Conference> fixture has every attribute but no room name: Plivo refuses it.
    # With a room it must translate, every attribute accounted for.
    xml = next(f["xml"] for f in FIXTURES if f["file"].endswith("test_conferenceElement.py"))
    xml = xml.replace("/></Response>", ">room</Conference></Response>")
    path = tmp_path / "conference.xml"
    path.write_text(xml)
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "translate", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "<Dial action=" in run.stdout and 'hangupOnStar="true"' in run.stdout
    for attribute in ("waitSound", "timeLimit", "action", "callbackUrl", "floorEvent",
                      "digitsMatch", "transcriptionUrl", "sendDigits"):
        assert f"<Conference {attribute}>" in run.stderr, attribute


def test_getdigits_fixture_translates_once_its_play_has_a_url():
    # The SDK's <GetDigits> fixture nests <Play>This is test</Play>: Plivo refuses a Play that is
    # not a URL. With one, every attribute must be accounted for in the report.
    xml = next(f["xml"] for f in FIXTURES if f["file"].endswith("test_getDigitsElement.py"))
    xml = xml.replace(">This is test</Play>", ">https://foo.example.com/a.mp3</Play>")
    result = translate(parse_document(xml), TranslationContext(account="MA00000000000000000001"))
    assert '<Gather action="{gateway}/twilio/gather?step=0"' in result.twiml
    assert 'numDigits="2"' in result.twiml and 'timeout="100"' in result.twiml
    reported = {n.attribute for n in result.notes if n.element == "GetDigits"}
    assert {"validDigits", "digitTimeout", "action"} <= reported


def test_record_fixtures_translate_with_their_transcription_and_callbacks():
    # The SDK's <Record> documents (every attribute; transcriptionType="hybrid") translate to a
    # Twilio <Record> that reports to the gateway, each app URL accounted for in the report.
    documents = [f["xml"] for f in FIXTURES if "<Record" in f["xml"]]
    assert len(documents) == 3
    for xml in documents:
        result = translate(parse_document(xml), TranslationContext(account="MA1"))
        assert "<Record action=\"{gateway}/twilio/record?rec=0-0\"" in result.twiml
        reported = {n.attribute for n in result.notes if n.element == "Record"}
        assert "action" in reported
        if "transcriptionUrl" in xml:
            assert {"transcriptionUrl", "transcriptionType", "callbackUrl"} <= reported
