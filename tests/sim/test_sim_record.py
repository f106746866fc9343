"""The simulator's `<Record>` (https://www.twilio.com/docs/voice/twiml/record) and call
recordings through the REST API, over real loopback HTTP."""

from __future__ import annotations

import re

import requests

from gateway.sim import Simulator, scenario_from_dict
from tests.sim.runs import Run, concurrently, scenario
from tests.sim.support import ACCOUNT_SID, AUTH_TOKEN, FakeGateway, Received, call

RE = re.compile(r"^RE[0-9a-f]{32}$")
RECORD = ('<Record action="/recorded" recordingStatusCallback="/recording" '
          'recordingStatusCallbackEvent="completed absent" {}/><Say>Nothing recorded</Say>')


def record(gateway: FakeGateway, attributes: str = "") -> None:
    gateway.twiml("/twilio/voice", RECORD.format(attributes))
    gateway.twiml("/recorded", "<Say>Saved</Say>")


@concurrently
def test_a_finish_key_ends_the_recording_and_the_action_gets_it(gateway: FakeGateway) -> Run:
    record(gateway, 'finishOnKey="*"')
    transcript = yield scenario([call("alice", speech=[{"from": 0.3, "to": 1.5}],
                                      keys=[{"at": 1.8, "digits": "1*"}])], duration=4.0)
    assert transcript.heard("alice") == [("beep", "record"), ("say", "Saved")]
    (action,) = gateway.requests_to("/recorded")
    p = action.params
    assert p["Digits"] == "*" and RE.match(p["RecordingSid"])  # "1" is not a finish key
    assert p["RecordingUrl"].endswith(f"/Accounts/{ACCOUNT_SID}/Recordings/{p['RecordingSid']}")
    assert p["RecordingDuration"] == "1"  # trim-silence: only the 1.2 s the caller talked
    (status,) = gateway.requests_to("/recording")
    assert status.params["RecordingStatus"] == "completed"
    assert status.params["RecordingSource"] == "RecordVerb"
    assert status.params["CallSid"] == p["CallSid"]


@concurrently
def test_silence_ends_the_recording_after_timeout(gateway: FakeGateway) -> Run:
    record(gateway, 'timeout="1" trim="do-not-trim"')
    transcript = yield scenario([call("alice", speech=[{"from": 0.2, "to": 1.0}])],
                                duration=4.0)
    (action,) = gateway.requests_to("/recorded")
    assert action.params["Digits"] == ""
    assert action.params["RecordingDuration"] == "2"  # 1.0 s of speech + 1 s of silence
    assert ("say", "Saved") in transcript.heard("alice")


@concurrently
def test_max_length_ends_the_recording(gateway: FakeGateway) -> Run:
    record(gateway, 'maxLength="1" playBeep="false"')
    transcript = yield scenario([call("alice", speech=[{"from": 0.0, "to": 3.0}])],
                                duration=4.0)
    (action,) = gateway.requests_to("/recorded")
    assert action.params["RecordingDuration"] == "1"
    assert transcript.heard("alice") == [("say", "Saved")]  # no beep


@concurrently
def test_an_empty_recording_requests_no_action_and_goes_on(gateway: FakeGateway) -> Run:
    record(gateway, 'timeout="1"')
    transcript = yield scenario([call("alice")], duration=4.0)
    assert gateway.requests_to("/recorded") == []
    assert transcript.heard("alice") == [("beep", "record"), ("say", "Nothing recorded")]
    (status,) = gateway.requests_to("/recording")
    assert status.params["RecordingStatus"] == "absent"


@concurrently
def test_hanging_up_while_recording_still_requests_the_action(gateway: FakeGateway) -> Run:
    record(gateway)
    yield scenario([call("alice", hangup_at=1.5, speech=[{"from": 0.2, "to": 1.2}])],
                   duration=4.0)
    (action,) = gateway.requests_to("/recorded")
    assert action.params["Digits"] == "hangup" and action.params["CallStatus"] == "completed"


@concurrently
def test_transcribe_sends_what_the_caller_said(gateway: FakeGateway) -> Run:
    record(gateway, 'transcribe="true" transcribeCallback="/text" timeout="1"')
    yield scenario([call("alice", speech=[{"from": 0.2, "to": 1.0, "text": "call me back"}])],
                   duration=4.0)
    (text,) = gateway.requests_to("/text")
    assert text.params["TranscriptionStatus"] == "completed"
    assert text.params["TranscriptionText"] == "call me back"
    assert text.params["RecordingSid"] == gateway.requests_to("/recorded")[0].params[
        "RecordingSid"]


@concurrently
def test_a_bad_finish_key_is_an_application_error(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", '<Record finishOnKey="x"/>')
    transcript = yield scenario([call("alice")], duration=2.0)
    (error,) = transcript.errors
    assert error["code"] == 13613


def test_a_call_is_recorded_through_the_rest_api_and_its_file_served():
    gateway = FakeGateway()
    created: list[dict] = []

    def start_recording(received: Received) -> str:
        response = requests.post(
            f"{sim.api_base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/"
            f"{received.params['CallSid']}/Recordings.json", auth=(ACCOUNT_SID, AUTH_TOKEN),
            data={"RecordingStatusCallback": gateway.url("/recording"),
                  "RecordingStatusCallbackEvent": "completed"}, timeout=5)
        created.append({**response.json(), "http_status": response.status_code})
        return '<Response><Pause length="2"/></Response>'

    gateway.twiml("/twilio/voice", "<Say>Hi</Say><Redirect>/rec</Redirect>")
    gateway.routes["/rec"] = start_recording
    sim = Simulator(gateway.base, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)
    try:
        sim.start()
        simulate_with(sim, gateway)
        (made,) = created
        assert made["http_status"] == 201 and made["source"] == "StartCallRecordingAPI"
        (status,) = gateway.requests_to("/recording")
        assert status.params["RecordingSid"] == made["sid"]
        assert int(status.params["RecordingDuration"]) >= 2
        media = requests.get(status.params["RecordingUrl"] + ".wav",
                             auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert media.status_code == 200 and media.content[:4] == b"RIFF"
    finally:
        sim.stop()
        gateway.close()


def simulate_with(sim: Simulator, gateway: FakeGateway) -> None:
    transcript = sim.run(scenario_from_dict({"duration": 5.0, "call": [call("alice")]}))
    assert transcript.ok, transcript.errors


@concurrently
def test_words_said_while_recording_are_recorded_not_recognised(gateway: FakeGateway) -> Run:
    record(gateway, 'transcribe="true" transcribeCallback="/text" timeout="1"')
    transcript = yield scenario([call("alice", say=[{"at": 0.3, "text": "call me back"}])],
                                duration=4.0)
    (action,) = gateway.requests_to("/recorded")
    assert action.params["RecordingDuration"] == "1"  # three words, 0.9 s
    (text,) = gateway.requests_to("/text")
    assert text.params["TranscriptionText"] == "call me back"
    assert ("say", "Saved") in transcript.heard("alice")
