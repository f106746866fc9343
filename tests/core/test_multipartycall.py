"""`<MultiPartyCall>`: parsed with every attribute of the SDK's element, Plivo's defaults and
ranges; run as a conference of its own namespace, or refused with every reason when it asks
for what a conference cannot give (never skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from gateway.plivoxml import PlivoXMLError, parse_document
from gateway.plivoxml.elements import MultiPartyCall
from gateway.translate import ElementCannotRun, TranslationContext, translate
from gateway.translate.multipartycall import conference_for
from gateway.translate.rooms import twilio_room_name

CORPUS = Path(__file__).resolve().parents[2].parent / "shared/corpus/plivo-sdk-xml-fixtures.json"


def mpc(attributes: str = 'role="Agent"') -> MultiPartyCall:
    (element,) = parse_document(f"<Response><MultiPartyCall {attributes}>sales"
                                "</MultiPartyCall></Response>").elements
    return element


def test_defaults_are_plivos():
    element = mpc()
    assert (element.role, element.max_duration, element.max_participants, element.coach_mode,
            element.enter_sound, element.exit_sound, element.wait_music_method,
            element.status_callback_events) == (
        "agent", 14400, 10, True, "beep:1", "beep:2", "GET",
        ("mpc-state-changes", "participant-state-changes"))


def test_every_attribute_of_the_sdks_element_is_known():
    fixtures = json.loads(CORPUS.read_text()) if CORPUS.exists() else []
    documents = [f["xml"] for f in fixtures if f["file"].endswith("test_MultiPartyCallElement.py")]
    assert documents, "the SDK's MultiPartyCall fixtures are missing"
    for xml in documents:
        document = parse_document(f"<Response>{xml}</Response>")
        assert not [n for n in document.notes if n.status == "ignored"], xml


@pytest.mark.parametrize(("attributes", "attribute"), [
    ('role="manager"', "role"),
    ('role="agent" maxDuration="100"', "maxDuration"),
    ('role="agent" maxParticipants="11"', "maxParticipants"),
    ('role="agent" enterSound="ding"', "enterSound"),
    ('role="agent" statusCallbackEvents="everything"', "statusCallbackEvents"),
    ("", "role"),
])
def test_plivos_rules_refuse_a_bad_element_with_a_clear_error(attributes, attribute):
    with pytest.raises(PlivoXMLError) as error:
        mpc(attributes)
    assert (error.value.element, error.value.attribute) == ("MultiPartyCall", attribute)


def test_an_mpc_runs_as_a_conference_of_its_own_namespace_with_its_flags():
    xml = ('<Response><MultiPartyCall role="customer" maxParticipants="4" maxDuration="600" '
           'endMpcOnExit="true" exitSound="none" onExitActionUrl="https://app.example/after">'
           "sales</MultiPartyCall></Response>")
    result = translate(parse_document(xml), TranslationContext(account="MA1"))
    tree = etree.fromstring(result.twiml.encode())
    room = tree.find("Dial/Conference")
    assert room.text == twilio_room_name("MA1", "mpc:sales") != twilio_room_name("MA1", "sales")
    assert (room.get("maxParticipants"), room.get("endConferenceOnExit"), room.get("muted"),
            room.get("beep")) == ("4", "true", "false", "onEnter")
    assert result.resume_at == 1
    conference = conference_for(parse_document(xml).elements[0])
    assert (conference.time_limit, conference.action) == (600, "https://app.example/after")


def test_a_supervisor_listens_muted_and_the_missing_whisper_is_reported():
    xml = '<Response><MultiPartyCall role="Supervisor">sales</MultiPartyCall></Response>'
    result = translate(parse_document(xml), TranslationContext(account="MA1"))
    assert etree.fromstring(result.twiml.encode()).find("Dial/Conference").get("muted") == "true"
    assert ("coachMode", "unsupported") in [(n.attribute, n.status) for n in result.notes]


@pytest.mark.parametrize(("attributes", "reason"), [
    ('role="ai-agent"', "role ai-agent"),
    ('role="agent" statusCallbackUrl="https://app.example/mpc"', "statusCallbackUrl"),
    ('role="agent" record="true" recordingCallbackUrl="https://app.example/rec"',
     "recordingCallbackUrl"),
    ('role="agent" hold="true"', "hold"),
    ('role="agent" transcript="true"', "transcript"),
])
def test_what_a_conference_cannot_give_cannot_run_and_nothing_of_the_stretch_plays(
        attributes, reason):
    document = parse_document(f"<Response><Speak>Joining</Speak><MultiPartyCall {attributes}>"
                              "sales</MultiPartyCall></Response>")
    with pytest.raises(ElementCannotRun) as refused:
        translate(document, TranslationContext(account="MA1"))
    assert refused.value.element == "MultiPartyCall" and reason in refused.value.reason
