"""Calls over real loopback HTTP: webhooks as Twilio sends them, TwiML executed, call end."""

from __future__ import annotations

import re
import time

from twilio.request_validator import RequestValidator

from gateway.sim.errors import APPLICATION_ERROR_MESSAGE
from tests.sim.runs import Run, concurrently, elapsed, scenario
from tests.sim.support import AUTH_TOKEN, NUMBER, FakeGateway, Received, call, sent, simulate

CA = re.compile(r"^CA[0-9a-f]{32}$")


@concurrently
def test_voice_webhook_carries_twilios_inbound_parameters(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Hangup/>")
    yield scenario([call("alice")])
    (voice,) = gateway.requests_to("/twilio/voice")
    p = voice.params
    assert voice.method == "POST"
    assert CA.match(p["CallSid"])
    assert p["AccountSid"].startswith("AC") and len(p["AccountSid"]) == 34
    assert (p["From"], p["To"], p["Caller"], p["Called"]) == (
        "+14155550101", NUMBER, "+14155550101", NUMBER)
    assert (p["CallStatus"], p["Direction"], p["ApiVersion"]) == ("ringing", "inbound",
                                                                 "2010-04-01")
    for field in ("FromCity", "FromState", "FromZip", "ToCity", "ToState", "ToZip",
                  "CallerCity", "CalledZip", "CallToken"):
        assert field in p
    assert (p["FromCountry"], p["ToCountry"]) == ("US", "US")
    assert voice.headers["Content-Type"].startswith("application/x-www-form-urlencoded")


@concurrently
def test_signature_verifies_with_request_validator(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Redirect method="GET">/next?step=2&amp;x=a%20b</Redirect>')
    gateway.twiml("/next", "<Hangup/>")
    yield scenario([call("alice")])
    voice, redirect, status = (gateway.requests_to(p)[0]
                               for p in ("/twilio/voice", "/next", "/twilio/status"))
    assert voice.signature_ok and redirect.signature_ok and status.signature_ok
    assert redirect.method == "GET" and redirect.params["step"] == "2"
    assert redirect.params["CallSid"] == voice.params["CallSid"]  # GET carries them in the query
    # and the header is exactly RequestValidator's signature over the requested URL
    expected = RequestValidator(AUTH_TOKEN).compute_signature(voice.url, voice.params)
    assert voice.headers["X-Twilio-Signature"] == expected


@concurrently
def test_verbs_are_heard_in_order_then_the_call_completes(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Say voice="woman">Hello</Say><Play>/a.mp3</Play>'
                  '<Play digits="12"/><Pause/>')
    transcript = yield scenario([call("alice")])
    assert transcript.heard("alice") == [("say", "Hello"), ("play", gateway.url("/a.mp3")),
                                         ("play", "digits 12"), ("pause", "1s")]
    end = transcript.call_end("alice")
    assert end is not None and (end["status"], end["reason"]) == ("completed", "no more TwiML")
    assert elapsed(transcript) < 4.5  # ended early: not at the scenario's duration
    assert transcript.ok


def test_verb_durations_follow_say_play_and_pause(gateway: FakeGateway) -> None:
    gateway.twiml("/twilio/voice", '<Say>Hi</Say><Play loop="2">/a.mp3</Play>'
                  '<Pause length="1"/><Say>' + "x" * 20 + "</Say>")
    transcript = simulate(gateway, [call("alice")], play_seconds=0.1)
    times = [e["t"] for e in transcript.events(type="heard", call="alice")]
    end = transcript.call_end("alice")["t"]
    gaps = [b - a for a, b in zip(times, [*times[1:], end], strict=True)]
    # Say: 0.06 s a character, 0.5 s at least; Play: nominal length per loop; Pause: exact
    expected = [0.5, 0.2, 1.0, 1.2]
    for gap, want in zip(gaps, expected, strict=True):
        assert abs(gap - want) < 0.15, (gaps, expected)


@concurrently
def test_status_callback_reports_the_end_of_the_call(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Pause length="1"/>')
    yield scenario([call("alice")])
    (status,) = gateway.requests_to("/twilio/status")
    p = status.params
    assert p["CallStatus"] == "completed"
    assert p["CallDuration"] == "1" and p["Duration"] == "1"
    assert p["CallbackSource"] == "call-progress-events"
    assert p["SequenceNumber"] == "0"
    assert re.match(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$", p["Timestamp"])
    assert p["CallSid"] == gateway.requests_to("/twilio/voice")[0].params["CallSid"]


@concurrently
def test_later_requests_say_the_call_is_in_progress(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Say>Hi</Say><Redirect>/two</Redirect>")
    gateway.twiml("/two", "<Hangup/>")
    yield scenario([call("alice")])
    assert gateway.requests_to("/two")[0].params["CallStatus"] == "in-progress"


@concurrently
def test_reject_busy_ends_the_call_busy_and_unanswered(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Reject reason="busy"/><Say>never</Say>')
    transcript = yield scenario([call("alice")])
    assert transcript.call_end("alice")["status"] == "busy"
    assert transcript.heard("alice") == []
    (status,) = gateway.requests_to("/twilio/status")
    assert (status.params["CallStatus"], status.params["CallDuration"]) == ("busy", "0")


@concurrently
def test_reject_rejected_ends_no_answer(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Reject/>")
    transcript = yield scenario([call("alice")])
    assert transcript.call_end("alice")["status"] == "no-answer"


@concurrently
def test_redirect_fetches_the_next_document(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Redirect>step2</Redirect><Say>unreachable</Say>")
    gateway.twiml("/twilio/step2", "<Say>Second</Say>")
    transcript = yield scenario([call("alice")])
    assert transcript.heard("alice") == [("say", "Second")]


@concurrently
def test_an_audio_answer_is_played(gateway: FakeGateway) -> Run:
    gateway.routes["/twilio/voice"] = (b"ID3...", 200, "audio/mpeg")
    transcript = yield scenario([call("alice")])
    assert transcript.heard("alice") == [("play", gateway.url("/twilio/voice"))]
    assert transcript.ok


def application_error(transcript, code: int) -> dict:  # type: ignore[no-untyped-def]
    (error,) = transcript.errors
    assert error["code"] == code, error
    assert transcript.heard("alice")[-1] == ("say", APPLICATION_ERROR_MESSAGE)
    assert transcript.call_end("alice")["status"] == "completed"
    assert not transcript.ok
    return error


@concurrently
def test_invalid_twiml_is_an_application_error(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Dial><Conference beep="maybe">r</Conference></Dial>')
    error = application_error((yield scenario([call("alice")])), 13235)
    assert "beep" in error["reason"] and error["kind"] == "voice"


@concurrently
def test_not_xml_is_an_application_error(gateway: FakeGateway) -> Run:
    gateway.routes["/twilio/voice"] = ("<Response><Say>oops</Response>", 200, "text/xml")
    application_error((yield scenario([call("alice")])), 12100)


@concurrently
def test_a_wrong_content_type_is_an_application_error(gateway: FakeGateway) -> Run:
    gateway.routes["/twilio/voice"] = ('{"say": "hi"}', 200, "application/json")
    application_error((yield scenario([call("alice")])), 12300)


@concurrently
def test_a_5xx_is_an_application_error(gateway: FakeGateway) -> Run:
    gateway.routes["/twilio/voice"] = ("boom", 500, "text/plain")
    error = application_error((yield scenario([call("alice")])), 11200)
    assert "500" in error["reason"]


@concurrently
def test_an_error_in_a_later_document_ends_the_call_there(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Say>First</Say><Redirect>/broken</Redirect>")
    gateway.routes["/broken"] = ("not found", 404, "text/plain")
    transcript = yield scenario([call("alice")])
    assert transcript.heard("alice")[0] == ("say", "First")
    assert application_error(transcript, 11200)["kind"] == "redirect"


def test_gateway_down_is_reported_not_hung() -> None:
    down = FakeGateway()
    down.close()  # nothing listens on that port any more
    started = time.monotonic()
    transcript = simulate(down, [call("alice")], duration=10.0)
    assert time.monotonic() - started < 5.0
    (error,) = transcript.errors[:1]
    assert error["code"] in (11202, 11205)
    assert transcript.call_end("alice")["status"] == "completed"


@concurrently
def test_slow_gateway_times_out_as_an_application_error(gateway: FakeGateway) -> Run:
    def slow(_: Received) -> str:
        time.sleep(1.5)
        return "<Response><Say>late</Say></Response>"
    gateway.routes["/twilio/voice"] = slow
    transcript = yield scenario([call("alice")], webhook_timeout=0.5)
    assert elapsed(transcript) < 4.0
    assert ("say", "late") not in transcript.heard("alice")
    application_error(transcript, 11205)


@concurrently
def test_a_failing_status_callback_is_an_error(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Hangup/>")
    gateway.routes["/twilio/status"] = ("no", 503, "text/plain")
    transcript = yield scenario([call("alice")])
    (error,) = transcript.errors
    assert (error["code"], error["kind"]) == (15003, "status")


@concurrently
def test_caller_hangup_interrupts_a_long_say(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Say loop="0">Please hold</Say>')
    transcript = yield scenario([call("alice", hangup_at=0.8)])
    assert elapsed(transcript) < 3.0
    end = transcript.call_end("alice")
    assert (end["status"], end["reason"], end["duration"]) == ("completed", "caller hung up", 1)


@concurrently
def test_a_call_still_up_at_the_duration_is_hung_up(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Pause length="30"/>')
    transcript = yield scenario([call("alice")], duration=1.0)
    assert transcript.call_end("alice")["reason"] == "scenario duration reached"
    assert transcript.events(type="run-end")[0]["reason"] == "scenario duration reached"
    assert len(gateway.requests_to("/twilio/status")) == 1


@concurrently
def test_gather_sends_the_digits_pressed(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Gather numDigits="3" action="/digits"><Say>Your PIN'
                  "</Say></Gather><Say>No input</Say>")
    gateway.twiml("/digits", "<Hangup/>")
    transcript = yield scenario([call("alice", keys=[{"at": 0.2, "digits": "123"}])])
    (request,) = gateway.requests_to("/digits")
    assert request.params["Digits"] == "123"
    assert ("say", "No input") not in transcript.heard("alice")


@concurrently
def test_gather_without_input_goes_on_with_the_next_verb(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Gather timeout="1" action="/digits"/><Say>No input</Say>')
    transcript = yield scenario([call("alice")])
    assert transcript.heard("alice") == [("say", "No input")]
    assert gateway.requests_to("/digits") == []


@concurrently
def test_gather_stops_at_the_finish_key(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Gather action="/digits"/>')
    gateway.twiml("/digits", "<Hangup/>")
    yield scenario([call("alice", keys=[{"at": 0.2, "digits": "42#"}])])
    (request,) = gateway.requests_to("/digits")
    assert (request.params["Digits"], request.params["FinishedOnKey"]) == ("42", "#")


@concurrently
def test_gather_with_action_on_empty_result_reports_no_input(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Gather timeout="1" action="/digits" '
                  'actionOnEmptyResult="true"><Say>Choose</Say></Gather><Say>Never</Say>')
    gateway.twiml("/digits", "<Hangup/>")
    transcript = yield scenario([call("alice")])
    (request,) = gateway.requests_to("/digits")
    assert request.params["Digits"] == ""
    assert transcript.heard("alice") == [("say", "Choose")]


@concurrently
def test_speech_gather_reports_what_was_said_with_partial_results(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Gather input="speech" speechTimeout="auto" '
                  'action="/said" partialResultCallback="/partial"><Say>Say a department'
                  "</Say></Gather><Say>Nothing said</Say>")
    gateway.twiml("/said", "<Hangup/>")
    gateway.routes["/partial"] = ("", 204, "text/plain")
    transcript = yield scenario([call("alice", say=[{"at": 0.3, "text": "billing please"}])])
    (request,) = gateway.requests_to("/said")
    assert request.params["SpeechResult"] == "billing please"
    assert 0.0 < float(request.params["Confidence"]) <= 1.0
    partials = [r.params for r in gateway.requests_to("/partial")]
    assert [(p["SequenceNumber"], p["StableSpeechResult"], p["UnstableSpeechResult"])
            for p in partials] == [("1", "", "billing"), ("2", "billing", "please")]
    assert ("say", "Nothing said") not in transcript.heard("alice")
    assert transcript.events(type="said", call="alice")[0]["text"] == "billing please"


@concurrently
def test_a_speech_only_gather_ignores_keys(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Gather input="speech" timeout="1" action="/said"/>'
                  "<Say>No input</Say>")
    transcript = yield scenario([call("alice", keys=[{"at": 0.2, "digits": "1"}])])
    assert gateway.requests_to("/said") == []
    assert transcript.heard("alice") == [("say", "No input")]


@concurrently
def test_without_barge_in_words_said_during_the_prompts_are_not_heard(gateway: FakeGateway
                                                                       ) -> Run:
    gateway.twiml("/twilio/voice", '<Gather input="speech" bargeIn="false" timeout="1" '
                  'speechTimeout="1" action="/said"><Say>Please say your account name now'
                  "</Say></Gather><Say>No input</Say>")
    gateway.twiml("/said", "<Hangup/>")
    transcript = yield scenario([call("alice", say=[{"at": 0.5, "text": "early"},
                                                    {"at": 2.4, "text": "later"}])])
    (request,) = gateway.requests_to("/said")
    assert request.params["SpeechResult"] == "later"
    assert ("say", "No input") not in transcript.heard("alice")


@concurrently
def test_words_said_while_nobody_listens_are_lost(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Say>Hello there</Say><Gather input="speech" timeout="1" '
                  'action="/said"/><Say>No input</Say>')
    transcript = yield scenario([call("alice", say=[{"at": 0.1, "text": "sales"}])])
    assert gateway.requests_to("/said") == []
    assert transcript.heard("alice")[-1] == ("say", "No input")


@concurrently
def test_dial_to_a_number_rings_out_to_its_action(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Dial timeout="1" action="/after">+14155550123</Dial>')
    gateway.twiml("/after", "<Hangup/>")
    yield scenario([call("alice")])
    (after,) = gateway.requests_to("/after")
    assert after.params["DialCallStatus"] == "no-answer"
    assert CA.match(after.params["DialCallSid"])


@concurrently
def test_sent_and_received_are_in_the_transcript(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Hangup/>")
    transcript = yield scenario([call("alice")])
    (voice,) = sent(transcript, "voice")
    assert voice["url"] == gateway.url("/twilio/voice") and voice["params"]["From"]
    (answer,) = transcript.events(type="received", kind="voice")
    assert answer["status"] == 200 and "<Hangup/>" in answer["body"]


@concurrently
def test_reject_after_the_call_was_answered_hangs_up(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", "<Say>Hi</Say><Reject/>")
    transcript = yield scenario([call("alice")])
    assert transcript.call_end("alice")["status"] == "completed"
    assert transcript.heard("alice") == [("say", "Hi")]
