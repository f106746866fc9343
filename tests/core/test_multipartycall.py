"""`<MultiPartyCall>`: parsed with every attribute of the SDK's element, Plivo's defaults and
ranges, and refused at call time with the reason (never skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.plivoxml import PlivoXMLError, parse_document
from gateway.plivoxml.elements import MultiPartyCall
from gateway.translate import ElementCannotRun, TranslationContext, translate

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


def test_a_call_that_reaches_it_cannot_run_and_hears_nothing_of_the_stretch():
    document = parse_document('<Response><Speak>Joining</Speak><MultiPartyCall role="customer">'
                              "sales</MultiPartyCall></Response>")
    with pytest.raises(ElementCannotRun) as refused:
        translate(document, TranslationContext(account="MA1"))
    assert refused.value.element == "MultiPartyCall"
    assert "nearest Twilio behaviour" in refused.value.reason
