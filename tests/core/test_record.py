"""`<Record>`: Plivo's attributes, defaults and checks, the TwiML it becomes (golden), and the
recording parameters the app gets from Twilio's."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.plivoxml import PlivoXMLError, Record, parse_document
from gateway.recording.params import action_recording, callback_recording, failure_reason
from gateway.translate import RecordingBooked, TranslationContext, translate

GOLDEN = Path(__file__).parent / "golden"
CONTEXT = TranslationContext(account="MA00000000000000000001", step=4)
VOICEMAIL = ('<Response><Speak>Please leave a message after the beep. Press the star key when '
             'done.</Speak><Record action="http://foo.com/get_recording/" finishOnKey="*" '
             'maxLength="30" transcriptionUrl="http://foo.com/transcription/" '
             'callbackUrl="http://foo.com/ready/"/><Speak>Recording not received.</Speak>'
             "</Response>")


def record_of(xml: str) -> Record:
    (element,) = parse_document(f"<Response>{xml}</Response>").elements
    assert isinstance(element, Record)
    return element


def translated(xml: str, context: TranslationContext = CONTEXT):
    result = translate(parse_document(xml), context)
    return etree.fromstring(result.twiml.encode()), result


def test_plivos_defaults_apply():
    r = record_of("<Record/>")
    assert (r.action, r.method, r.file_format, r.redirect) == (None, "POST", "mp3", True)
    assert (r.timeout, r.max_length, r.play_beep, r.finish_on_key) == (15, 60, True, "#")
    assert (r.record_session, r.start_on_dial_answer) == (False, False)
    assert (r.transcription_type, r.transcription_method, r.callback_method) == (
        "auto", "POST", "POST")


@pytest.mark.parametrize("kind", ["auto", "hybrid", "manual"])
def test_every_plivo_transcription_type_is_accepted(kind):
    assert record_of(f'<Record transcriptionType="{kind}"/>').transcription_type == kind
    document = parse_document(f'<Response><Conference transcriptionType="{kind}">r'
                              "</Conference></Response>")
    assert document.elements[0].transcription_type == kind


@pytest.mark.parametrize(("attribute", "value", "reason"), [
    ("fileFormat", "ogg", "mp3, wav"),
    ("timeout", "0", "out of range"),
    ("maxLength", "ten", "not an integer"),
    ("finishOnKey", "a", "0-9, * and #"),
    ("playBeep", "yes", "true or false"),
    ("recordSession", "1", "true or false"),
    ("transcriptionType", "human", "auto, hybrid, manual"),
    ("transcriptionUrl", "/relative", "absolute http(s) URL"),
    ("callbackMethod", "PUT", "GET or POST"),
])
def test_values_are_checked_as_plivo_checks_them(attribute, value, reason):
    with pytest.raises(PlivoXMLError) as info:
        parse_document(f'<Response>\n<Record {attribute}="{value}"/></Response>')
    err = info.value
    assert (err.line, err.element, err.attribute) == (2, "Record", attribute)
    assert reason in err.reason


def test_finish_on_key_takes_a_set_of_keys_or_none():
    assert record_of('<Record finishOnKey="*#*"/>').finish_on_key == "*#"
    assert record_of('<Record finishOnKey="none"/>').finish_on_key == ""


def test_voicemail_matches_golden_twiml():
    tree, result = translated(VOICEMAIL)
    expected = (GOLDEN / "record-voicemail.xml").read_text()
    assert etree.tostring(tree, pretty_print=True).decode() == expected
    assert result.resume_at == 2 and isinstance(result.handback, Record)
    (booked,) = result.effects
    assert booked == RecordingBooked("4-0", "here", booked.settings)
    assert booked.settings_dict["callback_url"] == "http://foo.com/ready/"


def test_twilio_transcribes_when_the_gateway_is_set_to_it():
    tree, _ = translated(VOICEMAIL, TranslationContext(account="MA1", step=4,
                                                       transcription="twilio"))
    record = tree.find("Record")
    assert record.get("transcribe") == "true"
    assert record.get("transcribeCallback") == "{gateway}/twilio/record/transcription?rec=4-0"


def test_an_empty_recording_comes_back_to_the_gateway_too():
    # Twilio skips the action of an empty recording and runs the next verb.
    tree, _ = translated("<Response><Record/></Response>")
    assert [c.tag for c in tree] == ["Record", "Redirect"]
    assert tree[1].text == tree[0].get("action") == "{gateway}/twilio/record?rec=4-0"


def test_record_session_runs_in_the_background_and_the_document_goes_on():
    tree, result = translated('<Response><Record recordSession="true" '
                              'callbackUrl="http://a.example/c"/><Speak>Recorded.</Speak>'
                              "</Response>")
    assert [c.tag for c in tree] == ["Say"]  # no beep, no <Record>: Twilio's call recordings
    assert result.resume_at is None
    (booked,) = result.effects
    assert booked.kind == "session"
    assert any(n.attribute == "recordSession" and n.status == "emulated" for n in result.notes)


def test_start_on_dial_answer_records_the_next_dial_from_answer():
    tree, result = translated('<Response><Record startOnDialAnswer="true"/>'
                              '<Dial><Number>14155550100</Number></Dial></Response>')
    assert [c.tag for c in tree] == ["Dial"]
    assert result.effects[0].kind == "next-dial"
    dial = tree.find("Dial")
    assert dial.get("record") == "record-from-answer"
    assert dial.get("recordingStatusCallback").endswith(f"/twilio/record/status?rec="
                                                        f"{result.effects[0].key}")
    assert any(n.attribute == "startOnDialAnswer" and n.status == "translated"
               for n in result.notes)


def test_two_records_in_one_stretch_get_their_own_keys():
    _, result = translated('<Response><Record recordSession="true"/><Record/></Response>')
    assert [e.key for e in result.effects] == ["4-0", "4-1"]


def test_redirect_false_is_reported():
    _, result = translated('<Response><Record action="http://a.example/a" redirect="false"/>'
                           "</Response>")
    (action,) = [n for n in result.notes if n.attribute == "action"]
    assert "document goes on" in action.message


def test_max_length_above_twilios_limit_is_capped_and_reported():
    tree, result = translated('<Response><Record maxLength="20000"/></Response>')
    assert tree.find("Record").get("maxLength") == "14400"
    assert any(n.attribute == "maxLength" and "capped" in n.message for n in result.notes)


TWILIO_ACTION = {"RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
                 "RecordingSid": "RE1", "RecordingDuration": "7", "Digits": "*"}


def test_the_action_gets_plivos_recording_parameters():
    p = action_recording(TWILIO_ACTION, "wav", now_ms=1_000_000)
    assert p == {"RecordUrl": TWILIO_ACTION["RecordingUrl"] + ".wav", "RecordingID": "RE1",
                 "RecordingDuration": "7", "RecordingDurationMs": "7000",
                 "RecordingStartMs": "993000", "RecordingEndMs": "1000000", "Digits": "*"}


def test_a_hang_up_is_no_key_and_no_recording_keeps_every_name():
    assert action_recording({**TWILIO_ACTION, "Digits": "hangup"}, "mp3", 0)["Digits"] == ""
    empty = action_recording({"Digits": ""}, "mp3", 5)
    assert empty["RecordUrl"] == "" and empty["RecordingDuration"] == "0"
    assert set(empty) == set(action_recording(TWILIO_ACTION, "mp3", 5))


def test_the_callback_takes_its_times_from_twilios_status_callback():
    status = {**TWILIO_ACTION, "RecordingStatus": "completed",
              "RecordingStartTime": "Mon, 30 Nov 2026 20:00:00 +0000"}
    p = callback_recording(status, "mp3")
    assert p["RecordUrl"].endswith("/RE1.mp3") and p["RecordingDurationMs"] == "7000"
    assert int(p["RecordingEndMs"]) - int(p["RecordingStartMs"]) == 7000
    failed = callback_recording({"RecordingSid": "RE2", "RecordingStatus": "failed"}, "mp3")
    assert failed["RecordUrl"] == "" and failed["RecordingID"] == "RE2"


@pytest.mark.parametrize(("status", "reason"), [
    ({"RecordingStatus": "completed", "RecordingUrl": "u", "RecordingDuration": "3"}, ""),
    ({"RecordingStatus": "completed", "RecordingUrl": "u", "RecordingDuration": "0"},
     "Recording is empty"),
    ({"RecordingStatus": "absent"}, "Recording is empty"),
    ({"RecordingStatus": "failed", "ErrorCode": "13617"}, "Recording failed (Twilio failed, "
     "error 13617)"),
    ({}, "Recording failed (Twilio status missing)"),
])
def test_why_a_recording_cannot_be_transcribed(status, reason):
    assert failure_reason(status) == reason
