"""Voicemail end to end: Twilio simulator <-> gateway <-> customer app, real HTTP.

A Plivo `<Record>` runs on Twilio's `<Record>`; the app gets Plivo's recording parameters at its
action (redirect true/false), its callbackUrl when the file is ready, and Plivo's transcription
parameters at its transcriptionUrl (the embedded engine, offline, on the recording the gateway
fetched from the simulator). Bad input: empty recordings, an engine that fails or hangs.
"""

from __future__ import annotations

import pytest
import requests

from gateway.transcription import EmbeddedEngine
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import ACCOUNT_SID, APP_AUTH_TOKEN, AUTH_TOKEN, app_config
from tests.support.stack import Stack

NAMES = ["vm-star", "vm-max", "vm-nored", "vm-text", "vm-empty", "conf-text", "session",
         "vm-hangup", "vm-twilio", "vm-redis"]
NUMBERS = {name: f"+1415556{i + 1:04d}" for i, name in enumerate(NAMES)}
ACCOUNT = "MA00000000000000000009"
MESSAGE = "hello this is john please call me back tomorrow"


def apps_for(app: CustomerApp, names=NAMES) -> list[dict]:
    return [app_config(app.url(f"/answer/{name}"), name=name, numbers=(NUMBERS[name],),
                       account=ACCOUNT, hangup_url=app.url("/hangup")) for name in names]


def caller(name: str, number_of: str, at: float = 0.0, **extra) -> dict:
    return {"name": name, "from": f"+1202556{abs(hash(name)) % 10000:04d}",
            "to": NUMBERS[number_of], "at": at, **extra}


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        for path in ("/hangup", "/ready", "/text", "/saved"):
            customer_app.route(path, body="")
        customer_app.route("/after", "<Response><Speak>Thank you, goodbye.</Speak></Response>")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("voicemail"), apps=apps_for(app)) as running:
        yield running


def record_doc(app: CustomerApp, **attributes: str) -> str:
    attrs = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    return (f"<Response><Speak>Please leave a message after the beep.</Speak><Record {attrs}/>"
            "<Speak>Recording not received.</Speak></Response>")


def only(app: CustomerApp, path: str, call_uuid: str):
    found = [r for r in app.requests_to(path) if r.params.get("CallUUID", r.params.get(
        "call_uuid")) == call_uuid]
    assert len(found) == 1, [r.params for r in found]
    assert found[0].signatures_valid, found[0].signature_error
    return found[0]


def call_uuid_of(app: CustomerApp, name: str) -> str:
    return app.requests_to(f"/answer/{name}")[-1].params["CallUUID"]


def test_a_key_ends_the_message_and_the_action_gets_plivos_recording_parameters(stack, app):
    app.route("/answer/vm-star", record_doc(app, action=app.url("/saved-star"),
                                            finishOnKey="*", fileFormat="wav",
                                            callbackUrl=app.url("/ready")))
    app.route("/saved-star", "<Response><Speak>Thank you, goodbye.</Speak></Response>")
    t = stack.run({"duration": 10.0, "call": [caller("ann", "vm-star", speech=[
        {"from": 2.0, "to": 4.0}], keys=[{"at": 4.5, "digits": "*"}])]})
    assert t.ok, t.errors
    heard = t.heard("ann")
    assert ("beep", "record") in heard and ("say", "Thank you, goodbye.") in heard
    assert ("say", "Recording not received.") not in heard
    uuid = call_uuid_of(app, "vm-star")
    action = only(app, "/saved-star", uuid).params
    assert action["Digits"] == "*" and action["CallStatus"] == "in-progress"
    assert action["RecordUrl"].endswith(".wav") and action["RecordingID"].startswith("RE")
    assert int(action["RecordingDuration"]) >= 2
    assert action["RecordingDurationMs"] == str(int(action["RecordingDuration"]) * 1000)
    assert int(action["RecordingEndMs"]) - int(action["RecordingStartMs"]) == int(
        action["RecordingDurationMs"])
    ready = app.wait_for_request("/ready", timeout=30).params
    assert ready["RecordingID"] == action["RecordingID"] and ready["RecordUrl"].endswith(".wav")
    assert ready["CallUUID"] == uuid and int(ready["RecordingStartMs"]) > 0


def test_max_length_ends_the_message(stack, app):
    app.route("/answer/vm-max", record_doc(app, action=app.url("/saved-max"), maxLength="3",
                                           timeout="10"))
    app.route("/saved-max", "<Response><Speak>Saved.</Speak></Response>")
    t = stack.run({"duration": 12.0, "call": [caller("max", "vm-max", speech=[
        {"from": 1.0, "to": 9.0}])]})
    assert t.ok, t.errors
    action = only(app, "/saved-max", call_uuid_of(app, "vm-max")).params
    assert action["Digits"] == "" and int(action["RecordingDuration"]) <= 3
    assert action["RecordUrl"].endswith(".mp3")  # Plivo's default fileFormat
    assert ("say", "Saved.") in t.heard("max")


def test_redirect_false_sends_the_action_and_goes_on_with_the_document(stack, app):
    app.route("/answer/vm-nored", record_doc(app, action=app.url("/saved-nored"),
                                             redirect="false", timeout="2"))
    app.route("/saved-nored", "<Response><Speak>never heard</Speak></Response>")
    t = stack.run({"duration": 12.0, "call": [caller("nored", "vm-nored", speech=[
        {"from": 2.0, "to": 3.0}])]})
    assert t.ok, t.errors
    assert ("say", "Recording not received.") in t.heard("nored")  # the next element
    assert ("say", "never heard") not in t.heard("nored")
    uuid = call_uuid_of(app, "vm-nored")
    app.wait_for_request("/saved-nored", timeout=30)
    assert only(app, "/saved-nored", uuid).params["RecordingID"].startswith("RE")


def test_voicemail_is_transcribed_by_the_embedded_engine(stack, app):
    app.route("/answer/vm-text", record_doc(app, action=app.url("/after"), timeout="2",
                                            transcriptionType="manual",
                                            transcriptionUrl=app.url("/text")))
    # The prompt lasts ~2.3 s: the caller speaks after the beep.
    t = stack.run({"duration": 14.0, "call": [caller("john", "vm-text", hangup_at=11.0,
                                                     say=[{"at": 3.5, "text": MESSAGE}])]})
    assert t.ok, t.errors
    uuid = call_uuid_of(app, "vm-text")
    app.wait_for(lambda reqs: any(r.path == "/text" and r.params.get("call_uuid") == uuid
                                  for r in reqs), timeout=60)
    text = only(app, "/text", uuid).params
    assert text["error"] == "" and text["recording_id"].startswith("RE")
    # The words are those the engine hears in the file the simulator serves for this recording
    # (how well PocketSphinx hears espeak-ng's voice is the engine test's business: where the
    # words fall in the file varies with timing, and so does its guess at the first ones).
    record_url = only(app, "/after", uuid).params["RecordUrl"]
    assert text["recording_id"] in record_url
    wav = requests.get(record_url.rsplit(".", 1)[0] + ".wav", auth=(ACCOUNT_SID, AUTH_TOKEN),
                       timeout=10)
    assert wav.status_code == 200 and wav.content.startswith(b"RIFF")
    heard = EmbeddedEngine().transcribe(wav.content)
    assert len(heard.split()) >= 3 and text["transcription"] == heard, (text, heard)
    assert set(text) >= {"transcription", "transcription_charge", "transcription_rate",
                         "duration", "call_uuid", "recording_id", "error"}


def test_an_empty_recording_still_reaches_the_app_and_the_caller_goes_on(stack, app):
    app.route("/answer/vm-empty", record_doc(app, action=app.url("/saved-empty"), timeout="2",
                                             transcriptionUrl=app.url("/text"),
                                             callbackUrl=app.url("/ready")))
    app.route("/saved-empty", "<Response><Speak>We got nothing.</Speak></Response>")
    t = stack.run({"duration": 8.0, "call": [caller("mute", "vm-empty")]})
    assert t.ok, t.errors
    assert ("say", "We got nothing.") in t.heard("mute")
    uuid = call_uuid_of(app, "vm-empty")
    action = only(app, "/saved-empty", uuid).params
    assert action["RecordUrl"] == "" and action["RecordingDuration"] == "0"
    app.wait_for(lambda reqs: any(r.path == "/text" and r.params.get("call_uuid") == uuid
                                  for r in reqs), timeout=60)
    text = only(app, "/text", uuid).params
    assert text["transcription"] == "" and text["error"] == "Recording is empty"


def test_a_caller_who_hangs_up_while_recording_still_leaves_the_message(stack, app):
    app.route("/answer/vm-hangup", record_doc(app, action=app.url("/saved-hangup")))
    app.route("/saved-hangup", "<Response><Speak>not run</Speak></Response>")
    t = stack.run({"duration": 8.0, "call": [caller("gone", "vm-hangup", hangup_at=5.0,
                                                    speech=[{"from": 2.0, "to": 4.5}])]})
    assert t.ok, t.errors
    uuid = call_uuid_of(app, "vm-hangup")
    app.wait_for(lambda reqs: {r.path for r in reqs if r.params.get("CallUUID") == uuid}
                 >= {"/saved-hangup", "/hangup"}, timeout=30)
    paths = [r.path for r in app.requests if r.params.get("CallUUID") == uuid]
    assert paths == ["/answer/vm-hangup", "/saved-hangup", "/hangup"]  # Plivo's order
    action = only(app, "/saved-hangup", uuid).params
    assert action["CallStatus"] == "completed" and action["RecordingID"].startswith("RE")


def test_a_recorded_conference_is_transcribed(stack, app):
    app.route("/answer/conf-text", '<Response><Conference record="true" stayAlone="true" '
              f'transcriptionUrl="{app.url("/conf-text")}" transcriptionMethod="POST">'
              "room-t</Conference></Response>")
    app.route("/conf-text", body="")
    t = stack.run({"duration": 10.0, "call": [caller("c1", "conf-text", hangup_at=6.0),
                                               caller("c2", "conf-text", 0.5, hangup_at=6.0)]})
    assert t.ok, t.errors
    request = app.wait_for_request("/conf-text", timeout=30)
    assert request.signatures_valid
    assert request.params["recording_id"].startswith("RE") and request.params["error"] == ""
    assert request.params["call_uuid"] in {r.params["CallUUID"]
                                           for r in app.requests_to("/answer/conf-text")}


def test_record_session_records_the_whole_call_and_the_document_goes_on(stack, app):
    app.route("/answer/session", '<Response><Record recordSession="true" '
              f'callbackUrl="{app.url("/session-ready")}" action="{app.url("/session-on")}"/>'
              "<Speak>This call is recorded.</Speak><Wait length=\"3\"/></Response>")
    app.route("/session-ready", body="")
    app.route("/session-on", "<Response><Speak>never run</Speak></Response>")
    t = stack.run({"duration": 10.0, "call": [caller("sess", "session")]})
    assert t.ok, t.errors
    assert ("beep", "record") not in t.heard("sess")  # no beep for a session recording
    assert t.heard("sess")[0] == ("say", "This call is recorded.")
    sources = [e.get("source") for e in t.events(type="recording")]
    assert "StartCallRecordingAPI" in sources
    uuid = call_uuid_of(app, "session")
    ready = app.wait_for_request("/session-ready", timeout=30).params
    assert ready["CallUUID"] == uuid
    assert int(ready["RecordingDuration"]) >= 2 and ready["RecordUrl"].endswith(".mp3")
    started = only(app, "/session-on", uuid).params  # in the background, once it runs
    assert started["RecordingID"] == ready["RecordingID"]
    assert started["RecordUrl"] == ready["RecordUrl"] and started["RecordingDuration"] == "-1"
    app.wait_for(lambda reqs: any(r.path == "/hangup" and r.params.get("CallUUID") == uuid
                                  for r in reqs), timeout=60)
    paths = [r.path for r in app.requests if r.params.get("CallUUID") == uuid]
    assert paths.index("/session-on") < paths.index("/hangup")


def test_twilios_own_transcription_reaches_the_app_as_plivos(app, tmp_path_factory):
    app.route("/answer/vm-twilio", record_doc(app, action=app.url("/after"), timeout="2",
                                              transcriptionUrl=app.url("/text-twilio")))
    app.route("/text-twilio", body="")
    with Stack(tmp_path_factory.mktemp("voicemail-twilio"), apps=apps_for(app, ["vm-twilio"]),
               env={"GATEWAY_TRANSCRIPTION": "twilio"}) as twilio_stack:
        t = twilio_stack.run({"duration": 12.0, "call": [caller(
            "tw", "vm-twilio", hangup_at=9.0, say=[{"at": 3.5, "text": "call me back"}])]})
        assert t.ok, t.errors
        (done,) = t.events(type="transcription")
        assert done["status"] == "completed"
        uuid = call_uuid_of(app, "vm-twilio")
        # Delivered by the stack's job worker: wait while it still runs.
        app.wait_for(lambda reqs: any(r.path == "/text-twilio" for r in reqs), timeout=60)
    text = only(app, "/text-twilio", uuid).params
    assert text["transcription"] == "call me back" and text["error"] == ""


@pytest.mark.redis
def test_a_voicemail_on_redis_reaches_the_app_in_plivos_order(app, tmp_path_factory,
                                                               redis_server):
    app.route("/answer/vm-redis", record_doc(app, action=app.url("/saved-redis"),
                                             callbackUrl=app.url("/ready-redis")))
    app.route("/saved-redis", "<Response><Speak>not run</Speak></Response>")
    app.route("/ready-redis", body="")
    with Stack(tmp_path_factory.mktemp("voicemail-redis"), apps=apps_for(app, ["vm-redis"]),
               store_url=redis_server.url(db=5)) as redis_stack:
        t = redis_stack.run({"duration": 10.0, "call": [caller(
            "red", "vm-redis", hangup_at=6.0, speech=[{"from": 3.0, "to": 5.5}])]})
        assert t.ok, t.errors
        uuid = call_uuid_of(app, "vm-redis")
        # Delivered by the stack's job worker: wait while it still runs.
        app.wait_for(lambda reqs: {r.path for r in reqs if r.params.get("CallUUID") == uuid}
                     >= {"/saved-redis", "/ready-redis", "/hangup"}, timeout=30)
    paths = [r.path for r in app.requests if r.params.get("CallUUID") == uuid]
    assert paths.index("/saved-redis") < paths.index("/hangup")
    assert only(app, "/ready-redis", uuid).params["RecordingID"] == only(
        app, "/saved-redis", uuid).params["RecordingID"]
