"""`<Stream>`: Plivo's attributes and rules, and the TwiML that points Twilio at the relay."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from gateway.plivoxml import PlivoXMLError, parse_document
from gateway.translate import ElementCannotRun, TranslationContext, translate

CONTEXT = TranslationContext(account="MA1", app="voicebot", call_sid="CA" + "1" * 32,
                             allowed_hosts=("bot.example.com",),
                             stream_token=lambda text: f"signed:{len(text)}")


def translated(xml: str, context: TranslationContext = CONTEXT):
    result = translate(parse_document(xml), context)
    return etree.fromstring(result.twiml.encode()), result


def settings_of(stream) -> dict:
    pieces = {p.get("name"): p.get("value") for p in stream.iter("Parameter")}
    text = "".join(pieces[f"relay{i}"] for i in range(len(pieces) - 1))
    assert pieces["relay_token"] == f"signed:{len(text)}"
    return json.loads(text)


def test_plivo_defaults_apply_to_a_bare_stream():
    (stream,) = parse_document("<Response><Stream>wss://bot.example.com/s</Stream></Response>"
                               ).elements
    assert (stream.bidirectional, stream.audio_track, stream.stream_timeout,
            stream.content_type, stream.keep_call_alive, stream.status_callback_method) == (
        False, "inbound", 86400, "audio/x-l16;rate=8000", False, "POST")


def test_one_way_stream_starts_a_twilio_stream_and_the_document_goes_on():
    tree, result = translated('<Response><Stream audioTrack="both" extraHeaders="a=1,b=2">'
                              "wss://bot.example.com/s</Stream><Speak>Hi</Speak></Response>")
    assert [v.tag for v in tree] == ["Start", "Say"] and result.resume_at is None
    stream = tree.find("Start/Stream")
    assert stream.get("track") == "both_tracks"
    settings = settings_of(stream)
    assert (settings["url"], settings["extraHeaders"], settings["app"]) == (
        "wss://bot.example.com/s", "a=1,b=2", "voicebot")


def test_bidirectional_stream_blocks_until_the_socket_closes_then_the_document_goes_on():
    tree, result = translated('<Response><Stream bidirectional="true" '
                              'contentType="audio/x-mulaw;rate=8000">wss://bot.example.com/s'
                              "</Stream><Speak>After</Speak></Response>")
    assert [v.tag for v in tree] == ["Connect"] and result.resume_at == 1
    assert "/twilio/continue?step=0" in tree.find("Connect").get("action")
    assert settings_of(tree.find("Connect/Stream"))["bidirectional"] is True
    assert not any(n.attribute == "contentType" for n in result.notes)  # no conversion


def test_long_settings_are_cut_into_parameters_twilio_accepts():
    headers = ",".join(f"key{i}=value{i}" for i in range(40))[:500].rstrip(",")
    headers = headers.rpartition(",")[0]
    tree, _ = translated(f'<Response><Stream extraHeaders="{headers}" statusCallbackUrl='
                         f'"https://bot.example.com/{"x" * 200}">wss://bot.example.com/s'
                         "</Stream></Response>")
    parameters = list(tree.iter("Parameter"))
    assert len(parameters) > 2
    assert all(len(p.get("name")) + len(p.get("value")) < 500 for p in parameters)
    assert settings_of(tree.find("Start/Stream"))["extraHeaders"] == headers


def test_a_stream_url_outside_allowed_hosts_cannot_run():
    with pytest.raises(ElementCannotRun, match="not in the mapping's allowed_hosts"):
        translated("<Response><Speak>Hi</Speak><Stream>wss://evil.example.net/s</Stream>"
                   "</Response>")


@pytest.mark.parametrize(("xml", "attribute"), [
    ('<Stream bidirectional="true" audioTrack="both">wss://a.example/s</Stream>', "audioTrack"),
    ('<Stream contentType="audio/wav">wss://a.example/s</Stream>', "contentType"),
    ('<Stream extraHeaders="a=1;b=2">wss://a.example/s</Stream>', "extraHeaders"),
    ('<Stream streamTimeout="0">wss://a.example/s</Stream>', "streamTimeout"),
    ("<Stream>https://a.example/s</Stream>", None),
])
def test_plivos_rules_refuse_a_bad_stream_with_a_clear_error(xml, attribute):
    with pytest.raises(PlivoXMLError) as error:
        parse_document(f"<Response>{xml}</Response>")
    assert (error.value.element, error.value.attribute) == ("Stream", attribute)
