"""The direct TwiML serialiser writes exactly what twilio's `to_xml()` writes.

Every corpus, seed and golden document is walked stretch by stretch as a call runs it (each
hand-back resumed, with and without a sound first), and each stretch's TwiML, written both ways,
must be the same string. Hostile values (markup characters, quotes, line breaks, tabs, bools,
JSON values, nested text and tails) are compared too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from twilio.twiml.voice_response import Gather, VoiceResponse

from gateway.examples import SEED_EXAMPLES
from gateway.plivoxml import PlivoXMLError, parse_document
from gateway.translate import ElementCannotRun, GatewayUrls, TranslationContext, compose
from gateway.translate.twiml_text import twiml_text

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared/corpus/plivo-sdk-xml-fixtures.json"
GOLDEN = ROOT / "tests/core/golden"

CONTEXT = TranslationContext(account="MA00000000000000000001",
                             urls=GatewayUrls("https://gateway.example.com"), step=3,
                             first_in_call=True, call_sid="CA" + "0123456789abcdef" * 2,
                             allowed_hosts=("www.foo.com", "app.example.com"))


def documents() -> list[tuple[str, str]]:
    found = [(f"seed{example.number}-{role}", xml)
             for example in SEED_EXAMPLES for role, xml in example.documents]
    found += [(f"golden-{path.stem}", path.read_text()) for path in sorted(GOLDEN.glob("*.xml"))]
    assert CORPUS.exists(), f"the corpus is missing: {CORPUS}"
    found += [(f"corpus-{Path(f['file']).stem}:{f['line']}", f["xml"])
              for f in json.loads(CORPUS.read_text())]
    return found


DOCUMENTS = documents()


def stretches(xml: str):
    """Each stretch a call would be given, as twilio's builder holds it."""
    try:
        document = parse_document(xml)
    except PlivoXMLError:
        return
    start: int | None = 0
    while start is not None and start < len(document.steps):
        for sound in (None, "https://app.example.com/invalid.mp3"):
            try:
                builder, resume_at, _ = compose(document, CONTEXT, start, sound_first=sound)
            except ElementCannotRun:
                return
            yield builder.response
        start = resume_at if resume_at != start else start + 1


def test_every_document_is_walked():
    assert len(DOCUMENTS) > 50
    assert sum(1 for _, xml in DOCUMENTS for _ in stretches(xml)) >= 60


@pytest.mark.parametrize(("name", "xml"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_each_stretch_is_written_as_to_xml_writes_it(name, xml):
    for response in stretches(xml):
        assert twiml_text(response) == response.to_xml()


def test_hostile_values_are_escaped_as_to_xml_escapes_them():
    response = VoiceResponse()
    response.say('Tom & Jerry <say> "hi" \'there\'\r\n\tend', voice="Polly.Amy",
                 language="en-GB")
    response.play("https://x.example/a.mp3?a=1&b=<2>", loop=0)
    gather = Gather(action='https://x.example/next?q="x"&r=\n\t\r', input="dtmf speech",
                    speech_timeout="auto", actionOnEmptyResult=True, enhanced=False)
    gather.say("inside")
    gather.append("a tail & <more>")
    gather.pause(length=2)
    response.append(gather)
    response.append("loose text > after")
    response.append("the last string wins")
    response.add_child("Custom", {"key": "va<l>ue & more"}, flag=True)
    response.add_child("Empty", "")
    response.hangup()
    assert twiml_text(response) == response.to_xml()


def test_an_empty_response_is_self_closing():
    assert twiml_text(VoiceResponse()) == VoiceResponse().to_xml()
    assert twiml_text(VoiceResponse()).endswith("<Response />")


def test_text_before_any_child_is_the_verb_text():
    response = VoiceResponse()
    response.append("first")
    response.append("second")
    response.say("then a verb")
    assert twiml_text(response) == response.to_xml()
