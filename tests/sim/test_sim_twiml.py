"""What TwiML the simulator accepts, and how it refuses the rest (pure: no servers)."""

from __future__ import annotations

import pytest

from gateway.sim.errors import TwimlError
from gateway.sim.twiml import (
    WAIT_VERBS,
    Conference,
    Dial,
    DialNumber,
    Gather,
    Hangup,
    Pause,
    Play,
    Redirect,
    Reject,
    Say,
    Start,
    Stop,
    parse_twiml,
)

DOC = "http://127.0.0.1:9000/twilio/voice?x=1"

GATEWAY_SHAPE = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say language="en-US" voice="woman">Welcome</Say>
  <Start><Stream url="ws://127.0.0.1:9000/twilio/media"><Parameter name="m" value="abc"/>
  </Stream></Start>
  <Dial action="http://127.0.0.1:9000/twilio/conference/left" method="POST" hangupOnStar="true">
    <Conference beep="false" endConferenceOnExit="false" maxParticipants="200" muted="false"
       startConferenceOnEnter="true" waitUrl="" waitMethod="POST"
       statusCallback="http://127.0.0.1:9000/twilio/conference/events" statusCallbackMethod="POST"
       statusCallbackEvent="start end join leave mute hold modify speaker announcement"
       record="record-from-start" recordingStatusCallback="http://127.0.0.1:9000/twilio/conference/recording"
       recordingStatusCallbackEvent="in-progress completed">MA0001-1a2b3c</Conference>
  </Dial>
  <Redirect method="POST">http://127.0.0.1:9000/twilio/continue</Redirect>
</Response>"""


def parse(body: str, **kw: object):  # type: ignore[no-untyped-def]
    return parse_twiml(f"<Response>{body}</Response>", DOC, **kw)  # type: ignore[arg-type]


def refused(body: str, **kw: object) -> TwimlError:
    with pytest.raises(TwimlError) as caught:
        parse(body, **kw)
    return caught.value


def test_the_gateway_shape_parses_into_typed_verbs() -> None:
    doc = parse_twiml(GATEWAY_SHAPE, DOC)
    say, start, dial, redirect = doc.verbs
    assert say == Say("Welcome", voice="woman", language="en-US", line=3)
    assert isinstance(start, Start)
    assert start.streams[0].url == "ws://127.0.0.1:9000/twilio/media"
    assert start.streams[0].parameters == (("m", "abc"),)
    assert isinstance(dial, Dial) and dial.hangup_on_star and dial.method == "POST"
    room = dial.target
    assert isinstance(room, Conference)
    assert room.name == "MA0001-1a2b3c"
    assert (room.beep, room.wait_url, room.max_participants) == ("false", "", 200)
    assert room.status_callback_event == ("start", "end", "join", "leave", "mute", "hold",
                                          "modify", "speaker", "announcement")
    assert room.recording_status_callback_event == ("in-progress", "completed")
    assert redirect == Redirect("http://127.0.0.1:9000/twilio/continue", "POST", line=14)
    assert doc.warnings == ()


def test_conference_defaults_are_twilios() -> None:
    (dial,) = parse("<Dial><Conference>room</Conference></Dial>").verbs
    room = dial.target
    assert (room.muted, room.beep, room.start_conference_on_enter,
            room.end_conference_on_exit) == (False, "true", True, False)
    assert room.wait_url is None  # absent: Twilio's default hold music
    assert (room.max_participants, room.record, room.wait_method) == (250, "do-not-record",
                                                                       "POST")
    assert room.recording_status_callback_event == ("completed",)
    assert (dial.action, dial.method, dial.hangup_on_star, dial.time_limit) == (
        None, "POST", False, 14400)


def test_relative_urls_resolve_against_the_document_url() -> None:
    doc = parse('<Play>/sounds/a.mp3</Play><Redirect>next</Redirect>'
                '<Dial action="left"><Conference waitUrl="wait">r</Conference></Dial>')
    play, redirect, dial = doc.verbs
    assert play.url == "http://127.0.0.1:9000/sounds/a.mp3"
    assert redirect.url == "http://127.0.0.1:9000/twilio/next"
    assert dial.action == "http://127.0.0.1:9000/twilio/left"
    assert dial.target.wait_url == "http://127.0.0.1:9000/twilio/wait"


def test_empty_redirect_means_the_document_itself() -> None:
    (redirect,) = parse("<Redirect/>").verbs
    assert redirect.url == DOC


@pytest.mark.parametrize(("body", "code"), [
    ('<Dial><Conference beep="maybe">r</Conference></Dial>', 13235),
    ('<Dial><Conference maxParticipants="300">r</Conference></Dial>', 16002),
    ('<Dial><Conference waitMethod="PUT">r</Conference></Dial>', 13234),
    ('<Dial><Conference muted="yes">r</Conference></Dial>', 13230),
    ('<Dial><Conference startConferenceOnEnter="1">r</Conference></Dial>', 13232),
    ('<Dial><Conference endConferenceOnExit="no">r</Conference></Dial>', 13231),
    ('<Dial><Conference waitUrl="ftp://x/y">r</Conference></Dial>', 13233),
    ('<Dial><Conference statusCallbackEvent="start talking">r</Conference></Dial>', 16002),
    ('<Dial><Conference recordingStatusCallbackEvent="done">r</Conference></Dial>', 13621),
    ('<Dial><Conference record="true">r</Conference></Dial>', 16002),
    ('<Dial><Conference participantLabel="a/b">r</Conference></Dial>', 16023),
    ('<Dial hangupOnStar="maybe"><Conference>r</Conference></Dial>', 13213),
    ('<Dial timeLimit="0"><Conference>r</Conference></Dial>', 13216),
    ('<Dial method="PUT"><Conference>r</Conference></Dial>', 13210),
    ('<Say loop="x">hi</Say>', 13510),
    ('<Say loop="-1">hi</Say>', 13510),
    ('<Say voice="robot">hi</Say>', 13511),
    ("<Say>   </Say>", 13520),
    ('<Play loop="1.5">http://x/a.mp3</Play>', 13410),
    ('<Play digits="12x"/>', 13430),
    ('<Pause length="0"/>', 13910),
    ('<Pause length="two"/>', 13910),
    ('<Redirect method="DELETE">/x</Redirect>', 13710),
    ('<Reject reason="spam"/>', 13810),
])
def test_bad_attribute_values_are_refused_with_the_verbs_code(body: str, code: int) -> None:
    assert refused(body).code == code


def test_unknown_verb_is_a_document_error() -> None:
    error = refused("<Speak>hello</Speak>")
    assert error.code == 12100
    assert "Speak" in error.reason


def test_verbs_are_case_sensitive() -> None:
    assert refused("<say>hello</say>").code == 12100


def test_not_well_formed_xml_is_a_parse_failure() -> None:
    with pytest.raises(TwimlError) as caught:
        parse_twiml("<Response><Say>unclosed</Response>", DOC)
    assert caught.value.code == 12100
    assert caught.value.line == 1


def test_the_root_must_be_response() -> None:
    with pytest.raises(TwimlError) as caught:
        parse_twiml("<Document><Say>hi</Say></Document>", DOC)
    assert caught.value.code == 12102


def test_an_empty_body_is_not_a_document() -> None:
    with pytest.raises(TwimlError) as caught:
        parse_twiml("  ", DOC)
    assert caught.value.code == 12100


def test_a_doctype_is_refused_without_resolving_anything() -> None:
    hostile = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
               "<Response><Say>&x;</Say></Response>")
    with pytest.raises(TwimlError) as caught:
        parse_twiml(hostile, DOC)
    assert caught.value.code == 12100


@pytest.mark.parametrize("body", [
    "<Pause><Say>hi</Say></Pause>",
    "<Dial><Hangup/></Dial>",
    "<Say><Play>x</Play></Say>",
    "<Dial><Conference>a</Conference><Conference>b</Conference></Dial>",
    "<Start><Say>hi</Say></Start>",
])
def test_bad_nesting_is_refused(body: str) -> None:
    assert refused(body).code in (12100, 13215, 14300)


def test_unknown_attributes_are_only_warnings() -> None:
    doc = parse('<Say colour="blue">hi</Say><Dial><Conference enterSound="beep:1">r'
                '</Conference></Dial>')
    assert [w.code for w in doc.warnings] == [12200, 12200]
    assert "colour" in doc.warnings[0].reason
    assert isinstance(doc.verbs[0], Say)


def test_say_may_hold_ssml() -> None:
    (say,) = parse('<Say>Hello <break time="1s"/><emphasis>there</emphasis></Say>').verbs
    assert say.text == "Hello there"


def test_loop_zero_is_accepted() -> None:
    say, play = parse('<Say loop="0">hi</Say><Play loop="0">http://x/a.mp3</Play>').verbs
    assert (say.loop, play.loop) == (0, 0)


def test_every_simple_verb_parses() -> None:
    verbs = parse('<Play digits="ww12#"/><Pause length="2"/><Hangup/><Reject reason="busy"/>'
                  '<Stop><Stream name="s"/></Stop>'
                  '<Gather numDigits="2" action="/g"><Say>press</Say></Gather>').verbs
    assert verbs[0] == Play(url=None, digits="ww12#", line=1)
    assert verbs[1] == Pause(2, line=1)
    assert verbs[2] == Hangup(line=1)
    assert verbs[3] == Reject("busy", line=1)
    assert verbs[4] == Stop(("s",), line=1)
    assert isinstance(verbs[5], Gather) and verbs[5].num_digits == 2


def test_dial_to_a_number_is_accepted_as_a_number() -> None:
    (dial,) = parse("<Dial>+14155550123</Dial>").verbs
    assert dial.target == DialNumber("Number", "+14155550123", 1)


def test_twiml_the_simulator_does_not_run_is_reported_as_such() -> None:
    error = refused("<Enqueue>support</Enqueue>")
    assert error.code == 12100 and "does not execute" in error.reason


def test_record_takes_twilios_defaults() -> None:
    (record,) = parse("<Record/>").verbs
    assert (record.timeout, record.finish_on_key, record.max_length, record.play_beep,
            record.trim) == (5, "1234567890*#", 3600, True, "trim-silence")
    assert refused('<Record maxLength="0"/>').code == 13612


def test_wait_documents_allow_only_play_say_pause_redirect() -> None:
    doc = parse("<Play>http://x/a.mp3</Play><Say>hi</Say><Pause/><Redirect/>",
                allowed=WAIT_VERBS)
    assert len(doc.verbs) == 4
    for body in ("<Dial><Conference>r</Conference></Dial>", "<Hangup/>", "<Gather/>"):
        assert refused(body, allowed=WAIT_VERBS).code == 13238


def test_stream_url_must_be_a_websocket_url() -> None:
    assert refused('<Start><Stream url="http://x/media"/></Start>').code == 31900
    (start,) = parse('<Start><Stream url="wss://x/media" track="both_tracks"/></Start>').verbs
    assert start.streams[0].track == "both_tracks"
