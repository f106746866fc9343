"""<Dial> with <Number> and <User>: Plivo's checks at parse time, the TwiML it becomes (golden),
and the report of every attribute Twilio cannot do as Plivo does."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.check_apps import review
from gateway.mappings import PlivoApp
from gateway.plivoxml import Dial, PlivoXMLError, parse_document
from gateway.translate import ElementCannotRun, TranslationContext, translate

GOLDEN = Path(__file__).parent / "golden"
CONTEXT = TranslationContext(account="MA00000000000000000001", step=3)

FORWARD = """<Response>
  <Speak>Please wait while we connect you</Speak>
  <Dial action="https://app.example.com/dialed" callbackUrl="https://app.example.com/legs"
        callerId="14155550000" timeout="20" hangupOnStar="true" confirmSound=
        "https://app.example.com/confirm" confirmKey="5" sipHeaders="team=sales">
    <Number sendDigits="1W2">14155550100</Number>
    <User sendDigits="9">sip:alice@sip.example.com</User>
  </Dial>
  <Speak>Nobody answered</Speak>
</Response>"""


def twiml(xml: str, context: TranslationContext = CONTEXT):
    result = translate(parse_document(xml), context)
    return etree.fromstring(result.twiml.encode()), result


def notes(result, status: str) -> set[str | None]:
    return {n.attribute for n in result.notes if n.status == status}


def test_a_forward_to_a_number_and_a_sip_user_matches_golden_twiml():
    tree, result = twiml(FORWARD)
    assert etree.tostring(tree, pretty_print=True).decode() == (
        GOLDEN / "dial-forward.xml").read_text()
    assert result.resume_at == 2  # the Speak after the Dial, if the action does not take over


def test_plivo_defaults_apply_when_the_app_writes_nothing():
    (dial,) = parse_document("<Response><Dial><Number>14155550100</Number></Dial></Response>"
                             ).elements
    assert isinstance(dial, Dial)
    assert (dial.method, dial.redirect, dial.hangup_on_star, dial.time_limit,
            dial.confirm_timeout, dial.callback_method, dial.timeout) == (
        "POST", True, False, 14400, 120, "POST", None)
    tree, result = twiml("<Response><Dial><Number>14155550100</Number></Dial></Response>")
    (twilio_dial,) = tree
    assert twilio_dial.get("timeLimit") == "14400" and twilio_dial.get("timeout") is None
    assert twilio_dial.find("Number").text == "+14155550100"
    assert twilio_dial.find("Number").get("url") is None  # no whisper without confirmation
    assert "timeout" in notes(result, "translated")


def test_time_limit_is_capped_by_the_gateway_and_timeout_by_twilio():
    context = TranslationContext(account="MA1", max_call_seconds=3600)
    tree, result = twiml('<Response><Dial timeLimit="7200" timeout="900"><Number>14155550100'
                         '</Number></Dial></Response>', context)
    assert (tree[0].get("timeLimit"), tree[0].get("timeout")) == ("3600", "600")
    assert {"timeLimit", "timeout"} <= notes(result, "translated")


def test_dial_music_real_rings_with_the_far_end_others_are_the_nearest_reported():
    tree, result = twiml('<Response><Dial dialMusic="real"><Number>14155550100</Number></Dial>'
                         '</Response>')
    assert tree[0].get("answerOnBridge") == "true"
    for music in ("none", "https://app.example.com/music"):
        tree, result = twiml(f'<Response><Dial dialMusic="{music}"><Number>14155550100</Number>'
                             '</Dial></Response>')
        assert tree[0].get("answerOnBridge") is None
        assert "dialMusic" in notes(result, "unsupported")


def test_callbacks_ask_twilio_for_every_leg_event():
    tree, _ = twiml('<Response><Dial callbackUrl="https://app.example.com/cb"><Number>'
                    '14155550100</Number><Number>+442071234567</Number></Dial></Response>')
    for number in tree[0]:
        assert number.get("statusCallback") == "{gateway}/twilio/dial/events?step=3"
        assert number.get("statusCallbackEvent") == "initiated ringing answered completed"


def test_what_twilio_cannot_do_is_reported_not_dropped():
    _, result = twiml('<Response><Dial callerName="Sales" callerId="none" digitsMatch="12" '
                      'digitsMatchBLeg="34" confirmKey="1"><Number>14155550100</Number></Dial>'
                      '</Response>')
    assert {"callerName", "callerId"} <= notes(result, "unsupported")
    # Reported as what they would do, with "no callbackUrl: nothing to send".
    assert {"digitsMatch", "digitsMatchBLeg"} <= notes(result, "emulated")
    assert "confirmKey" in notes(result, "ignored")  # no confirmSound: nothing to confirm


@pytest.mark.parametrize(("xml", "reason"), [
    ("<Dial><Number></Number></Dial>", "<Number> needs a phone number"),
    ("<Dial><User> </User></Dial>", "<User> needs a SIP URI"),
    ("<Dial><Number>555-1234</Number></Dial>", "is not a phone number"),
    ("<Dial><Number>+0123456789</Number></Dial>", "is not a phone number"),
    ("<Dial/>", "needs at least one <Number> or <User>"),
    ("<Dial><User>sip:bob@evil.example.com?Route=%3Csip:x%3E</User></Dial>",
     "is not a plain SIP URI"),
    ("<Dial><User>sip:bob@a.example.com;transport=tcp</User></Dial>", "is not a plain SIP URI"),
    ("<Dial><User>bob@a.example.com</User></Dial>", "is not a plain SIP URI"),
    ('<Dial sipHeaders="Route=x&amp;y=1"><User>sip:bob@a.example.com</User></Dial>',
     "letters and digits only"),
    ('<Dial sipHeaders="a=b\r\nVia: x"><User>sip:bob@a.example.com</User></Dial>',
     "letters and digits only"),
    ('<Dial confirmKey="12"><Number>14155550100</Number></Dial>', "is not a key"),
    ('<Dial dialMusic="jazz"><Number>14155550100</Number></Dial>', "is not dial music"),
    ('<Dial callerId="sales"><Number>14155550100</Number></Dial>', "is not a phone number"),
    ('<Dial callerName="' + "x" * 51 + '"><Number>14155550100</Number></Dial>', "at most 50"),
    ("<Number>14155550100</Number>", "not allowed inside <Response>"),
    ("<Dial><Speak>hi</Speak></Dial>", "not allowed inside <Dial>"),
])
def test_bad_dials_are_refused_with_plivos_reason(xml, reason):
    with pytest.raises(PlivoXMLError) as refused:
        parse_document(f"<Response>{xml}</Response>")
    assert reason in str(refused.value)


def test_more_numbers_than_twilio_rings_at_once_is_refused_whole():
    numbers = "".join(f"<Number>1415555{n:04d}</Number>" for n in range(11))
    with pytest.raises(ElementCannotRun, match="Twilio rings at most 10"):
        twiml(f"<Response><Speak>hi</Speak><Dial>{numbers}</Dial></Response>")


def test_a_sip_host_outside_the_apps_allowed_hosts_is_refused():
    context = TranslationContext(account="MA1", allowed_hosts=("sip.example.com",))
    xml = "<Response><Dial><User>sip:bob@{}</User></Dial></Response>"
    tree, _ = twiml(xml.format("sip.example.com"), context)
    assert tree[0].find("Sip").text == "sip:bob@sip.example.com"
    with pytest.raises(ElementCannotRun, match=r"'evil\.example\.net' is not in the app's allowed"):
        twiml(xml.format("evil.example.net"), context)


def test_sip_headers_become_x_ph_uri_headers_the_users_own_winning():
    tree, _ = twiml('<Response><Dial sipHeaders="a=1,b=2"><User sipHeaders="b=3">'
                    'sip:bob@a.example.com</User></Dial></Response>')
    assert tree[0].find("Sip").text == "sip:bob@a.example.com?X-PH-a=1&X-PH-b=3"


def test_digits_match_forks_the_callers_audio_before_the_dial_only_with_a_callback():
    tree, _ = twiml('<Response><Dial digitsMatch="99,#0" callbackUrl="https://app.example.com/cb">'
                    "<Number>14155550100</Number></Dial></Response>")
    assert [v.tag for v in tree] == ["Start", "Dial"]
    stream = tree.find("Start/Stream")
    assert (stream.get("name"), stream.get("track")) == ("member-3-{CallSid}", "inbound_track")
    assert {p.get("name") for p in stream.findall("Parameter")} == {"member", "token"}
    tree, _ = twiml('<Response><Dial digitsMatch="99"><Number>14155550100</Number></Dial>'
                    "</Response>")
    assert [v.tag for v in tree] == ["Dial"]  # nobody to tell: no stream (streams are billed)


def test_check_apps_names_a_sip_host_and_a_dial_url_outside_allowed_hosts():
    app = PlivoApp(name="sales", account="MA1", numbers=("+14155550100",),
                   answer_url="https://app.example.com/answer", auth_token_env="X",
                   allowed_hosts=("app.example.com",))
    report = review(app, parse_document(
        '<Response><Dial callbackUrl="https://elsewhere.example/cb">'
        "<User>sip:bob@pbx.elsewhere.example</User></Dial></Response>"))
    assert any("<User> cannot run on the gateway: SIP host 'pbx.elsewhere.example'" in p
               for p in report.problems), report.problems
    assert any("<Dial callbackUrl> https://elsewhere.example/cb: host 'elsewhere.example' is "
               "not in allowed_hosts" in p for p in report.problems), report.problems


def test_digits_match_b_leg_sends_every_callee_through_the_gateways_whisper():
    tree, _ = twiml('<Response><Dial digitsMatchBLeg="12" callbackUrl="https://app.example.com/'
                    'cb"><Number>14155550100</Number><Number>14155550101</Number></Dial>'
                    "</Response>")
    assert [v.tag for v in tree] == ["Dial"]  # the callee's stream starts from its whisper
    assert [n.get("url") for n in tree[0]] == ["{gateway}/twilio/dial/whisper?step=3&leg=0",
                                               "{gateway}/twilio/dial/whisper?step=3&leg=1"]
