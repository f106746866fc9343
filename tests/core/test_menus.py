"""Menus and their neighbours in the pure core: GetDigits, GetInput, DTMF, PreAnswer, SSML.

Parsing (Plivo's attributes, defaults and reasons), golden TwiML for each, and the judging of
what a caller gave a menu (`gateway.ivr.answers`).
"""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.ivr.answers import MAX_SPEECH, interim_params, judge
from gateway.plivoxml import (
    DTMF,
    GetDigits,
    GetInput,
    PlivoXMLError,
    PreAnswer,
    parse_document,
)
from gateway.translate import TranslationContext, translate, translate_input_again

CONTEXT = TranslationContext(account="MA00000000000000000001", step=3)
APP = "https://app.example.com"


def only(xml: str):
    document = parse_document(xml)
    assert len(document.elements) == 1
    return document.elements[0]


def error_of(xml: str) -> PlivoXMLError:
    with pytest.raises(PlivoXMLError) as caught:
        parse_document(xml)
    return caught.value


def twiml(xml: str, start: int = 0):
    result = translate(parse_document(xml), CONTEXT, start)
    return result.twiml, result


# --- parsing -----------------------------------------------------------------------------------

def test_getdigits_defaults_are_plivos():
    m = only(f'<Response><GetDigits action="{APP}/m"/></Response>')
    assert isinstance(m, GetDigits)
    assert (m.method, m.timeout, m.digit_timeout, m.finish_on_key) == ("POST", 5, 2, "#")
    assert (m.num_digits, m.retries, m.redirect, m.play_beep) == (99, 1, True, False)
    assert (m.valid_digits, m.invalid_digits_sound, m.log) == ("1234567890*#", None, True)


def test_getinput_defaults_are_plivos():
    m = only(f'<Response><GetInput action="{APP}/m"/></Response>')
    assert isinstance(m, GetInput)
    assert (m.method, m.input_type, m.execution_timeout) == ("POST", "dtmf speech", 15)
    assert (m.digit_end_timeout, m.speech_end_timeout) == (None, None)  # auto
    assert (m.finish_on_key, m.num_digits, m.speech_model, m.hints) == ("#", 32, "default", ())
    assert (m.language, m.profanity_filter, m.redirect, m.log) == ("en-US", False, True, True)
    assert m.interim_speech_results_callback_method == "POST"


def test_menus_nest_their_prompts_in_order():
    m = only(f'<Response><GetDigits action="{APP}/m"><Speak>One</Speak>'
             f'<Play>{APP}/a.mp3</Play><Wait length="2"/></GetDigits></Response>')
    assert [c.TAG for c in m.children] == ["Speak", "Play", "Wait"]


@pytest.mark.parametrize(("attribute", "value", "reason"), [
    ("numDigits", "", "'' is not an integer"),
    ("numDigits", "0", "0 is out of range: must be an integer from 1 to 99"),
    ("numDigits", "100000000000000000000", "out of range: must be an integer from 1 to 99"),
    ("numDigits", "two", "not an integer"),
    ("timeout", "0", "out of range"),
    ("retries", "0", "out of range"),
    ("finishOnKey", "##", "not a key that submits"),
    ("validDigits", "12a", "only contain the keys 0-9, * and #"),
    ("invalidDigitsSound", "beep.mp3", "absolute http(s) URL"),
    ("playBeep", "yes", "true or false"),
])
def test_getdigits_values_are_refused_with_plivos_reason(attribute, value, reason):
    err = error_of(f'<Response><GetDigits action="{APP}/m" {attribute}="{value}"/></Response>')
    assert (err.element, err.attribute, err.line) == ("GetDigits", attribute, 1)
    assert reason in err.reason


@pytest.mark.parametrize(("attribute", "value", "reason"), [
    ("executionTimeout", "4", "out of range: must be an integer from 5 to 60"),
    ("digitEndTimeout", "11", "must be auto or an integer from 2 to 10"),
    ("speechEndTimeout", "soon", "must be auto or an integer from 2 to 10"),
    ("numDigits", "33", "out of range: must be an integer from 1 to 32"),
    ("inputType", "voice", "dtmf, speech, dtmf speech"),
    ("speechModel", "best", "default, command_and_search, phone_call"),
    ("hints", "x" * 101, "longer than 100 characters"),
    ("hints", ",".join(["a"] * 501), "at most 500"),
    ("language", "english", "language code"),
])
def test_getinput_values_are_refused_with_plivos_reason(attribute, value, reason):
    err = error_of(f'<Response><GetInput action="{APP}/m" {attribute}="{value}"/></Response>')
    assert (err.element, err.attribute) == ("GetInput", attribute)
    assert reason in err.reason


def test_getinput_needs_an_action():
    err = error_of('<Response><GetInput inputType="speech"/></Response>')
    assert (err.element, err.attribute) == ("GetInput", "action")


def test_finish_on_key_none_or_empty_means_no_key():
    for value in ("none", ""):
        m = only(f'<Response><GetDigits finishOnKey="{value}"/></Response>')
        assert m.finish_on_key == ""


def test_dtmf_keys_and_refusals():
    d = only('<Response><DTMF>12 W#</DTMF></Response>')
    assert isinstance(d, DTMF) and d.digits == "12W#" and d.async_ is True
    assert only('<Response><DTMF async="false">1</DTMF></Response>').async_ is False
    assert "is not DTMF" in error_of("<Response><DTMF>12x</DTMF></Response>").reason
    assert "needs a name" in error_of("<Response><DTMF/></Response>").reason


def test_preanswer_nests_what_plivo_allows_and_runs_it_in_place():
    document = parse_document(f'<Response><PreAnswer><Speak>Early</Speak><DTMF>1</DTMF>'
                              f'<GetDigits action="{APP}/m"/></PreAnswer><Speak>Late</Speak>'
                              "</Response>")
    assert isinstance(document.elements[0], PreAnswer)
    assert [e.TAG for e in document.steps] == ["PreAnswer", "Speak", "DTMF", "GetDigits",
                                               "Speak"]
    err = error_of("<Response><PreAnswer><Conference>r</Conference></PreAnswer></Response>")
    assert "not allowed inside <PreAnswer>" in err.reason


def test_a_menu_may_not_nest_another_menu():
    err = error_of(f'<Response><GetDigits><GetInput action="{APP}/m"/></GetDigits></Response>')
    assert "not allowed inside <GetDigits>" in err.reason


# --- translation (golden TwiML) ----------------------------------------------------------------

GATHER = "{gateway}/twilio/gather?step=3"
SAY = '<Say language="en-US" loop="1" voice="Polly.Joanna">'
DECL = '<?xml version="1.0" encoding="UTF-8"?>'


def test_getdigits_becomes_a_gather_reporting_to_the_gateway():
    out, result = twiml(
        f'<Response><GetDigits action="{APP}/m" numDigits="1" timeout="7" finishOnKey="*" '
        f'playBeep="true"><Speak>Press one.</Speak><Wait length="1"/></GetDigits>'
        "<Speak>Bye.</Speak></Response>")
    assert out == (
        f'{DECL}<Response><Gather action="{GATHER}" actionOnEmptyResult="true" '
        'finishOnKey="*" input="dtmf" method="POST" numDigits="1" timeout="7">'
        f'{SAY}Press one.</Say><Pause length="1" />'
        "<Play>{gateway}/sounds/beep.wav</Play></Gather></Response>")
    assert result.resume_at == 1 and isinstance(result.handback, GetDigits)


def test_getinput_becomes_a_speech_gather_with_plivos_settings():
    out, _ = twiml(
        f'<Response><GetInput action="{APP}/m" inputType="dtmf speech" executionTimeout="9" '
        'speechEndTimeout="3" numDigits="4" finishOnKey="none" hints="sales, support" '
        'language="en-GB" speechModel="command_and_search" profanityFilter="true" '
        f'interimSpeechResultsCallback="{APP}/i"><Speak>Say it.</Speak></GetInput></Response>')
    assert out == (
        f'{DECL}<Response><Gather action="{GATHER}" actionOnEmptyResult="true" '
        'finishOnKey="" hints="sales, support" input="dtmf speech" language="en-GB" '
        'method="POST" numDigits="4" partialResultCallback="{gateway}/twilio/gather/partial'
        '?step=3" partialResultCallbackMethod="POST" profanityFilter="true" '
        'speechModel="numbers_and_commands" speechTimeout="3" timeout="9">'
        f'{SAY}Say it.</Say></Gather></Response>')


def test_speech_only_getinput_writes_no_key_settings_and_plivos_profanity_default():
    out, result = twiml(f'<Response><GetInput action="{APP}/m" inputType="speech" '
                        'speechModel="phone_call"/></Response>')
    gather = etree.fromstring(out.encode())[0]
    assert gather.get("numDigits") is None and gather.get("finishOnKey") is None
    assert (gather.get("profanityFilter"), gather.get("speechTimeout")) == ("false", "auto")
    assert (gather.get("speechModel"), gather.get("enhanced")) == ("phone_call", "true")
    assert any(n.attribute == "executionTimeout" for n in result.notes)


def test_dtmf_becomes_play_digits_and_async_is_reported():
    out, result = twiml("<Response><DTMF>1W2#</DTMF></Response>")
    assert out == f'{DECL}<Response><Play digits="1ww2#" /></Response>'
    assert [(n.element, n.attribute) for n in result.notes] == [("DTMF", "async")]


def test_preanswer_plays_in_place_and_says_how_it_differs():
    out, result = twiml("<Response><PreAnswer><Speak>Early.</Speak></PreAnswer>"
                        "<Speak>Late.</Speak></Response>")
    assert out == f"{DECL}<Response>{SAY}Early.</Say>{SAY}Late.</Say></Response>"
    assert any(n.element == "PreAnswer" and "answers before" in n.message
               for n in result.notes)


def test_a_getdigits_inside_preanswer_hands_back_at_its_step():
    document = parse_document(f'<Response><PreAnswer><GetDigits action="{APP}/m"/>'
                              "</PreAnswer><Speak>After.</Speak></Response>")
    first = translate(document, CONTEXT)
    assert first.resume_at == 2
    rest = translate(document, CONTEXT, first.resume_at)
    assert rest.twiml == f"{DECL}<Response>{SAY}After.</Say></Response>"


def test_the_menu_again_after_the_invalid_digits_sound():
    document = parse_document(f'<Response><Speak>Hi.</Speak><GetDigits action="{APP}/m" '
                              'numDigits="1"><Speak>Choose.</Speak></GetDigits></Response>')
    again = translate_input_again(document, CONTEXT, 1, f"{APP}/invalid.wav")
    tree = etree.fromstring(again.twiml.encode())
    assert [v.tag for v in tree] == ["Play", "Gather"]
    assert tree[0].text == f"{APP}/invalid.wav" and again.resume_at == 2
    assert again.notes == ()


def test_a_sound_first_plays_before_the_rest():
    out = translate(parse_document("<Response><Speak>Next.</Speak></Response>"), CONTEXT,
                    sound_first=f"{APP}/invalid.wav").twiml
    assert out == f"{DECL}<Response><Play>{APP}/invalid.wav</Play>{SAY}Next.</Say></Response>"


def test_translate_cli_reports_the_nearest_behaviour(tmp_path):
    import subprocess
    import sys
    path = tmp_path / "menu.xml"
    path.write_text(f'<Response><GetDigits action="{APP}/m" numDigits="4" timeout="5" '
                    'digitTimeout="2"/><Speak>Bye.</Speak></Response>')
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "translate", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "<GetDigits digitTimeout> translated: Twilio has one timeout" in run.stderr
    assert "when the menu of line 1 gets no valid input" in run.stdout


# --- judging answers (pure) --------------------------------------------------------------------

def menu(xml: str):
    return only(f"<Response>{xml}</Response>")


@pytest.mark.parametrize(("digits", "verdict", "sent"), [
    ("1", "valid", "1"),
    ("12345", "valid", "12"),   # only numDigits are kept, as on Plivo
    ("", "none", None),
    ("3", "invalid", None),     # outside validDigits
    ("1a", "invalid", None),    # not keys at all
    ("1" * 500, "valid", "11"),
])
def test_getdigits_answers(digits, verdict, sent):
    m = menu(f'<GetDigits action="{APP}/m" numDigits="2" validDigits="12"/>')
    answer = judge(m, {"Digits": digits})
    assert answer.verdict == verdict
    assert answer.params.get("Digits") == sent


def test_getinput_answers_carry_plivos_parameters():
    m = menu(f'<GetInput action="{APP}/m"/>')
    speech = judge(m, {"SpeechResult": "  Sales\nplease ", "Confidence": "0.8731"})
    assert speech.params == {"InputType": "speech", "Digits": "", "Speech": "Sales please",
                             "SpeechConfidenceScore": "0.8731", "BilledAmount": "0.00000"}
    keys = judge(m, {"Digits": "42"})
    assert (keys.params["InputType"], keys.params["Digits"], keys.params["Speech"]) == (
        "dtmf", "42", "")
    assert judge(m, {}).verdict == "none"
    assert len(judge(m, {"SpeechResult": "x" * 10_000}).params["Speech"]) == MAX_SPEECH
    speech_only = menu(f'<GetInput action="{APP}/m" inputType="speech"/>')
    assert judge(speech_only, {"Digits": "1"}).verdict == "none"  # keys are not listened for


def test_interim_results_become_plivos_parameters():
    assert interim_params({"StableSpeechResult": "sales", "UnstableSpeechResult": "plea",
                           "Stability": "0.8", "SequenceNumber": "2"}) == {
        "StableSpeech": "sales", "UnstableSpeech": "plea", "Stability": "0.8",
        "SequenceNumber": "2"}
    assert interim_params({"SequenceNumber": "x; drop"})["SequenceNumber"] == ""


def test_speak_inside_a_menu_keeps_its_ssml():
    out, _ = twiml(f'<Response><GetDigits action="{APP}/m"><Speak voice="Polly.Amy">Press '
                   '<break time="1s"/>one</Speak></GetDigits></Response>')
    assert '<Gather' in out and '<Say voice="Polly.Amy"' in out.replace(
        'language="en-US" loop="1" ', "")
    assert 'Press <break time="1s" />one</Say></Gather>' in out


# --- Speak's SSML: every tag Plivo documents, with the SDK's attributes ------------------------

PLIVO_SSML = [
    ('<break strength="strong" time="250ms"/>', "break", {"strength": "strong", "time": "250ms"}),
    ('<emphasis level="moderate">x</emphasis>', "emphasis", {"level": "moderate"}),
    ('<lang xml:lang="fr-FR">x</lang>', "lang", {"xml:lang": "fr-FR"}),
    ("<p>x</p>", "p", {}),
    ('<phoneme alphabet="ipa" ph="pɪˈkɑːn">x</phoneme>', "phoneme",
     {"alphabet": "ipa", "ph": "pɪˈkɑːn"}),
    ('<prosody volume="loud" rate="slow" pitch="high">x</prosody>', "prosody",
     {"volume": "loud", "rate": "slow", "pitch": "high"}),
    ("<s>x</s>", "s", {}),
    ('<say-as interpret-as="date" format="mdy">1/2/2026</say-as>', "say-as",
     {"interpret-as": "date", "format": "mdy"}),
    ('<sub alias="World Wide Web">WWW</sub>', "sub", {"alias": "World Wide Web"}),
    ('<w role="amazon:VBD">read</w>', "w", {"role": "amazon:VBD"}),
]


@pytest.mark.parametrize(("ssml", "tag", "attributes"), PLIVO_SSML,
                         ids=[tag for _, tag, _ in PLIVO_SSML])
def test_each_ssml_tag_plivo_documents_reaches_twilio_with_its_attributes(ssml, tag,
                                                                           attributes):
    out, _ = twiml(f'<Response><Speak voice="Polly.Joanna">Say {ssml} now</Speak></Response>')
    say = etree.fromstring(out.encode())[0]
    (node,) = list(say)
    assert node.tag == tag
    got = {k.replace("{http://www.w3.org/XML/1998/namespace}", "xml:"): v
           for k, v in node.attrib.items()}
    assert got == attributes
