"""The Plivo XML parser: safe reading, whole-document validation, Plivo's defaults, reports."""

from __future__ import annotations

import pytest

from gateway.plivoxml import (
    Conference,
    Hangup,
    Play,
    PlivoXMLError,
    Redirect,
    Speak,
    Ssml,
    UnsupportedElement,
    Wait,
    parse_document,
)
from gateway.plivoxml.attributes import DEFAULTS
from gateway.plivoxml.elements import SUPPORTED


def only(xml: str):
    (element,) = parse_document(xml).elements
    return element


def error_of(xml: str | bytes) -> PlivoXMLError:
    with pytest.raises(PlivoXMLError) as info:
        parse_document(xml)
    return info.value


def test_conference_gets_every_plivo_default():
    c = only("<Response><Conference>room</Conference></Response>")
    assert isinstance(c, Conference)
    assert c.room == "room"
    assert (c.muted, c.start_conference_on_enter, c.end_conference_on_exit, c.stay_alone) == (
        False, True, False, True)
    assert (c.enter_sound, c.exit_sound, c.wait_sound) == ("", "", None)
    assert (c.max_members, c.time_limit, c.record, c.record_file_format) == (200, 0, False, "mp3")
    assert (c.hangup_on_star, c.action, c.method, c.redirect) == (False, None, "POST", True)
    assert (c.callback_url, c.callback_method, c.digits_match, c.floor_event) == (
        None, "POST", (), False)
    assert (c.transcription_type, c.transcription_url, c.transcription_method) == (
        "auto", None, "GET")
    assert (c.relay_dtmf, c.send_digits, c.record_when_alone) == (True, "", "")


def test_conference_all_25_sdk_attributes_parse():
    c = only('<Response><Conference action="http://a.example/act" callbackMethod="GET" '
             'callbackUrl="http://a.example/cb" digitsMatch="#0,99,000" endConferenceOnExit="true" '
             'enterSound="" exitSound="beep:1" floorEvent="true" hangupOnStar="true" '
             'maxMembers="100" method="GET" muted="false" record="true" recordFileFormat="wav" '
             'recordWhenAlone="" redirect="false" relayDTMF="true" sendDigits="wwww2410" '
             'startConferenceOnEnter="true" stayAlone="false" timeLimit="600" '
             'transcriptionMethod="POST" transcriptionType="auto" '
             'transcriptionUrl="http://a.example/t" waitSound="http://a.example/w">R</Conference>'
             '</Response>')
    assert len(Conference.ATTRIBUTES) == 25
    assert c.action == "http://a.example/act" and c.method == "GET"
    assert c.digits_match == ("#0", "99", "000")
    assert c.exit_sound == "beep:1" and c.floor_event and c.hangup_on_star
    assert c.max_members == 100 and c.time_limit == 600 and not c.stay_alone
    assert c.record and c.record_file_format == "wav" and not c.redirect
    assert c.send_digits == "wwww2410" and c.wait_sound == "http://a.example/w"


@pytest.mark.parametrize("value", ["True", "TRUE", "1", "yes", ""])
def test_booleans_must_be_exactly_true_or_false(value):
    err = error_of(f'<Response>\n<Conference muted="{value}">r</Conference></Response>')
    assert (err.line, err.element, err.attribute) == (2, "Conference", "muted")
    assert "true or false" in err.reason


@pytest.mark.parametrize(("attribute", "value", "reason"), [
    ("maxMembers", "0", "out of range"),
    ("maxMembers", "ten", "not an integer"),
    ("maxMembers", "1.5", "not an integer"),
    ("timeLimit", "-1", "out of range"),
    ("method", "PUT", "GET or POST"),
    ("callbackMethod", "get", "GET or POST"),
    ("action", "/relative/path", "absolute http(s) URL"),
    ("callbackUrl", "ftp://a.example/x", "absolute http(s) URL"),
    ("waitSound", "music.mp3", "absolute http(s) URL"),
    ("recordFileFormat", "ogg", "mp3, wav"),
    ("enterSound", "beep:3", "beep:1, beep:2"),
    ("digitsMatch", "12,ab", "digits, * and #"),
    ("transcriptionType", "human", "auto, hybrid, manual"),
])
def test_attribute_values_are_checked_as_plivo_checks_them(attribute, value, reason):
    err = error_of(f'<Response><Conference {attribute}="{value}">r</Conference></Response>')
    assert err.attribute == attribute and err.element == "Conference" and err.line == 1
    assert reason in err.reason
    assert f"line 1, <Conference {attribute}>" in str(err)


def test_unknown_attributes_are_ignored_and_reported():
    document = parse_document('<Response><Conference beep="false" recordFilePath="/x">r'
                              '</Conference></Response>')
    assert isinstance(document.elements[0], Conference)
    ignored = {(n.attribute, n.status) for n in document.notes}
    assert ignored == {("beep", "ignored"), ("recordFilePath", "ignored")}


def test_unknown_element_is_an_error_with_its_line():
    err = error_of("<Response>\n<Speak>hi</Speak>\n<Say>hi</Say></Response>")
    assert (err.line, err.element) == (3, "Say")
    assert "unknown element" in err.reason


def test_every_sdk_element_parses_into_its_own_model():
    document = parse_document(
        '<Response><Dial><Number>15551234567</Number></Dial>'
        '<Message src="14155550100" dst="14155550101">hi</Message>'
        '<Stream>wss://a.example/s</Stream><MultiPartyCall role="agent">x</MultiPartyCall>'
        '<PreAnswer><Speak>x</Speak><Message src="14155550100" dst="14155550101">hi</Message>'
        '</PreAnswer></Response>')
    assert not [e for e in document.steps if isinstance(e, UnsupportedElement)]
    assert [e.TAG for e in document.steps] == ["Dial", "Message", "Stream", "MultiPartyCall",
                                               "PreAnswer", "Speak", "Message"]
    assert not [n for n in document.notes if n.status == "not-yet"]


def test_root_must_be_response():
    err = error_of('<MultiPartyCall role="agent">Nairobi</MultiPartyCall>')
    assert err.element == "MultiPartyCall" and "root element must be <Response>" in err.reason


@pytest.mark.parametrize(("xml", "element", "reason"), [
    ("<Response><Conference><Speak>x</Speak>r</Conference></Response>", "Speak",
     "not allowed inside <Conference>"),
    ("<Response><Number>123</Number></Response>", "Number", "not allowed inside <Response>"),
    ("<Response><Speak><Play>http://a.example/x</Play></Speak></Response>", "Play",
     "not allowed inside <Speak>"),
    ("<Response><GetDigits><Conference>r</Conference></GetDigits></Response>", "Conference",
     "not allowed inside <GetDigits>"),
])
def test_nesting_is_checked(xml, element, reason):
    err = error_of(xml)
    assert err.element == element and reason in err.reason


def test_external_entities_are_refused_without_resolving():
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
           "<Response><Speak>&x;</Speak></Response>")
    err = error_of(xml)
    assert "DOCTYPE" in err.reason and err.line == 2


def test_billion_laughs_is_refused():
    entities = "".join(f'<!ENTITY l{i} "{"&l" + str(i - 1) + ";" * 1}' * 1 + '">'
                       for i in range(1, 10))
    xml = f'<!DOCTYPE r [<!ENTITY l0 "lol">{entities}]><Response><Speak>&l9;</Speak></Response>'
    assert "DOCTYPE" in error_of(xml).reason


def test_five_megabyte_document_is_refused_before_parsing():
    xml = "<Response>" + "<Speak>word</Speak>" * (5 * 1024 * 1024 // 19) + "</Response>"
    err = error_of(xml)
    assert "more than the 1048576 allowed" in err.reason


def test_a_document_with_more_elements_than_any_twiml_could_hold_stops_parsing_early():
    xml = "<Response>" + "<Wait/>" * (1000 * 1024 // 7) + "</Response>"  # 1 MB of <Wait/>
    err = error_of(xml)
    assert "more than 4096 elements" in err.reason and "64 kB" in err.reason
    assert err.line == 1 and err.element == "Wait"


def test_deep_nesting_is_refused():
    xml = "<Response><Speak>" + "<s>" * 40 + "x" + "</s>" * 40 + "</Speak></Response>"
    assert "nested deeper" in error_of(xml).reason


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty document"),
    ("   \n", "empty document"),
    ("<html><body>Oops</body></html>", "root element must be <Response>"),
    ("<Response><Speak>unclosed</Response>", "not well-formed"),
    ("Internal Server Error", "not well-formed"),
])
def test_what_is_not_plivo_xml_is_refused_with_a_reason(text, reason):
    assert reason in error_of(text).reason


def test_xml_error_has_line_number():
    err = error_of("<Response>\n<Speak>a</Speak>\n<Speak>b</Spek>\n</Response>")
    assert err.line == 3


def test_room_name_whitespace_is_collapsed_and_odd_text_kept():
    c = only('<Response><Conference>\n  Customer   Waiting\tRoom \n</Conference></Response>')
    assert c.room == "Customer Waiting Room"
    odd = only('<Response><Conference>a "quoted" &gt; room — ünïcødé</Conference></Response>')
    assert odd.room == 'a "quoted" > room — ünïcødé'


def test_conference_needs_a_room_name():
    err = error_of("<Response><Conference muted=\"true\"/></Response>")
    assert err.element == "Conference" and "needs a name" in err.reason


def test_speak_keeps_ssml_as_a_tree():
    s = only('<Response><Speak voice="Polly.Joey" language="en-GB" loop="2">Hello'
             '<break time="250ms"/><lang xml:lang="it">ciao</lang> bye</Speak></Response>')
    assert isinstance(s, Speak)
    assert (s.voice, s.language, s.loop) == ("Polly.Joey", "en-GB", 2)
    assert s.body == ("Hello", Ssml("break", (("time", "250ms"),)),
                      Ssml("lang", (("xml:lang", "it"),), ("ciao",)), " bye")
    assert s.text == "Hellociao bye"  # words as written: no space was there


@pytest.mark.parametrize(("xml", "attribute"), [
    ('<Speak voice="robot">x</Speak>', "voice"),
    ('<Speak language="English">x</Speak>', "language"),
    ('<Speak loop="-1">x</Speak>', "loop"),
    ('<Play loop="x">http://a.example/a.mp3</Play>', "loop"),
    ('<Wait length="0"/>', "length"),
    ('<Wait minSilence="-5"/>', "minSilence"),
    ('<Redirect method="DELETE">http://a.example/n</Redirect>', "method"),
    ('<Hangup schedule="soon"/>', "schedule"),
])
def test_other_elements_check_their_attributes(xml, attribute):
    assert error_of(f"<Response>{xml}</Response>").attribute == attribute


def test_plain_elements_parse_with_defaults():
    document = parse_document(
        "<Response><Speak>Hi</Speak><Play>https://a.example/a.mp3</Play><Wait/>"
        "<Redirect>http://a.example/next</Redirect><Hangup/></Response>")
    speak, play, wait, redirect, hangup = document.elements
    assert isinstance(speak, Speak) and (speak.voice, speak.language, speak.loop) == (
        "WOMAN", "en-US", 1)
    assert isinstance(play, Play) and (play.url, play.loop) == ("https://a.example/a.mp3", 1)
    assert isinstance(wait, Wait) and (wait.length, wait.silence, wait.beep) == (1, False, False)
    assert isinstance(redirect, Redirect) and (redirect.url, redirect.method) == (
        "http://a.example/next", "POST")
    assert isinstance(hangup, Hangup) and (hangup.reason, hangup.schedule) == ("", 0)


@pytest.mark.parametrize("xml", ["<Play>dummy</Play>", "<Redirect>This is Test</Redirect>",
                                 "<Play></Play>", "<Speak>  </Speak>"])
def test_bodies_that_must_be_urls_or_text(xml):
    error_of(f"<Response>{xml}</Response>")


def test_defaults_table_names_only_declared_attributes():
    for tag, defaults in DEFAULTS.items():
        assert set(defaults) <= set(SUPPORTED[tag].ATTRIBUTES), tag


def test_comments_and_processing_instructions_are_dropped():
    document = parse_document("<Response><!-- note --><?pi x?><Speak>Hi</Speak></Response>")
    assert [type(e) for e in document.elements] == [Speak]


def test_repeated_documents_come_from_the_cache_and_errors_are_never_cached():
    xml = "<Response><Speak>Cached</Speak></Response>"
    assert parse_document(xml) is parse_document(xml)
    assert parse_document(xml, cache=False) is not parse_document(xml)
    assert parse_document(xml, cache=False) == parse_document(xml)
    bad = "<Response><Bogus/></Response>"
    for _ in range(2):
        with pytest.raises(PlivoXMLError):
            parse_document(bad)
