"""Bad input around `<Record>`: what Twilio reports as failed or absent, and transcription
engines that fail or hang. Twilio's requests are posted as Twilio posts them (signed) to a real
gateway; the customer app always gets Plivo's parameters or Plivo's error form, signed.
"""

from __future__ import annotations

import io
import time
import wave

import pytest

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import (
    ACCOUNT_SID,
    APP_AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)

MEDIA_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE" + "1" * 32


@pytest.fixture
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        for path in ("/ready", "/text", "/hangup"):
            app.route(path, body="")
        app.route("/answer", f'<Response><Record callbackUrl="{app.url("/ready")}" '
                             f'transcriptionUrl="{app.url("/text")}" fileFormat="wav"/>'
                             "</Response>")
        yield app


def start(tmp_path, app: CustomerApp, **env: str) -> GatewayServer:
    # The app stands in for Twilio's media host too: the gateway fetches recordings only there.
    return GatewayServer(tmp_path, apps=[app_config(app.url("/answer"),
                                                    hangup_url=app.url("/hangup"))],
                         api_base_url=app.base_url, env=env).start()


def silence_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(16000))
    return buffer.getvalue()


def answer_and_report(gateway: GatewayServer, app: CustomerApp, **status: str) -> dict:
    call = twilio_call_params()
    answered = gateway.signed_post("/twilio/voice", call)
    assert "<Record " in answered.text
    report = {"CallSid": call["CallSid"], "AccountSid": ACCOUNT_SID,
              "RecordingSid": "RE" + "1" * 32, "RecordingSource": "RecordVerb",
              "RecordingChannels": "1", **status}
    posted = gateway.signed_post("/twilio/record/status?rec=1-0", report)
    assert posted.status_code == 204
    return call


def received(app: CustomerApp, path: str) -> dict[str, str]:
    request = app.wait_for_request(path, timeout=40)
    assert request.signatures_valid, request.signature_error
    return request.params


def test_a_failed_recording_gives_empty_values_and_plivos_error_form(tmp_path, app):
    with start(tmp_path, app) as gateway:
        answer_and_report(gateway, app, RecordingStatus="failed", ErrorCode="13617")
        ready, text = received(app, "/ready"), received(app, "/text")
    assert ready["RecordUrl"] == "" and ready["RecordingDuration"] == "0"
    assert ready["RecordingID"] == "RE" + "1" * 32
    assert text["transcription"] == "" and text["error"].startswith("Recording failed")
    assert "13617" in text["error"]


def test_an_absent_recording_is_reported_empty(tmp_path, app):
    with start(tmp_path, app) as gateway:
        answer_and_report(gateway, app, RecordingStatus="absent", RecordingDuration="0")
        text = received(app, "/text")
    assert text["error"] == "Recording is empty" and text["duration"] == "0"


def test_a_hanging_engine_is_stopped_at_its_timeout(tmp_path, app):
    app.route(MEDIA_PATH + ".wav", silence_wav())
    with start(tmp_path, app, GATEWAY_TRANSCRIPTION_COMMAND="sh -c 'sleep 30' engine",
               GATEWAY_TRANSCRIPTION_TIMEOUT="1") as gateway:
        answer_and_report(gateway, app, RecordingStatus="completed", RecordingDuration="2",
                          RecordingUrl=app.base_url + MEDIA_PATH)
        ready, text = received(app, "/ready"), received(app, "/text")
    assert ready["RecordUrl"] == app.base_url + MEDIA_PATH + ".wav"
    assert text["transcription"] == "" and text["error"] == "Transcription timed out after 1 s"
    media = app.requests_to(MEDIA_PATH + ".wav")
    assert media and media[0].headers.get("Authorization", "").startswith("Basic ")


def test_a_failing_engine_gives_plivos_error_form(tmp_path, app):
    app.route(MEDIA_PATH + ".wav", silence_wav())
    with start(tmp_path, app, GATEWAY_TRANSCRIPTION_COMMAND="false") as gateway:
        answer_and_report(gateway, app, RecordingStatus="completed", RecordingDuration="2",
                          RecordingUrl=app.base_url + MEDIA_PATH)
        text = received(app, "/text")
    assert text["error"].startswith("Transcription engine failed")


def test_a_recording_url_off_twilios_host_is_not_fetched(tmp_path, app):
    with start(tmp_path, app) as gateway:
        answer_and_report(gateway, app, RecordingStatus="completed", RecordingDuration="2",
                          RecordingUrl="http://198.51.100.7" + MEDIA_PATH)
        text = received(app, "/text")
    assert text["error"].startswith("Recording URL is not on Twilio's API host")


def test_twilio_transcribes_when_told_to(tmp_path, app):
    with start(tmp_path, app, GATEWAY_TRANSCRIPTION="twilio") as gateway:
        call = twilio_call_params()
        answered = gateway.signed_post("/twilio/voice", call).text
        assert 'transcribe="true"' in answered
        assert "/twilio/record/transcription?rec=1-0" in answered
        base = {"CallSid": call["CallSid"], "AccountSid": ACCOUNT_SID,
                "RecordingSid": "RE" + "2" * 32}
        gateway.signed_post("/twilio/record/transcription?rec=1-0", {
            **base, "TranscriptionSid": "TR" + "1" * 32, "TranscriptionStatus": "completed",
            "TranscriptionText": "call me back"})
        text = received(app, "/text")
    assert text["transcription"] == "call me back" and text["error"] == ""
    assert text["recording_id"] == "RE" + "2" * 32


def test_twilios_redirect_to_its_storage_is_followed_without_the_credentials(tmp_path, app):
    # Twilio may answer a media URL with a redirect to its storage: followed, but the Basic
    # credentials stay with Twilio's host ("localhost" is another host than 127.0.0.1 here).
    storage = app.base_url.replace("127.0.0.1", "localhost") + "/storage/RE1.wav"
    app.route(MEDIA_PATH + ".wav", "", status=302, headers={"Location": storage})
    app.route("/storage/RE1.wav", silence_wav(), content_type="audio/x-wav")
    with start(tmp_path, app) as gateway:
        answer_and_report(gateway, app, RecordingStatus="completed", RecordingDuration="2",
                          RecordingUrl=app.base_url + MEDIA_PATH)
        text = received(app, "/text")
    assert text["error"] == "" and text["duration"] == "2"  # silence: no words, no error
    (fetched,) = app.requests_to("/storage/RE1.wav")
    assert "Authorization" not in fetched.headers


def test_the_voicemail_action_precedes_the_hangup_even_when_twilio_reports_the_end_first(
        tmp_path, app):
    app.route("/answer", f'<Response><Record action="{app.url("/saved")}"/></Response>')
    app.route("/saved", "<Response><Speak>not run: the caller is gone</Speak></Response>")
    with start(tmp_path, app) as gateway:
        call = twilio_call_params()
        assert "<Record " in gateway.signed_post("/twilio/voice", call).text
        ended = {**call, "CallStatus": "completed", "CallDuration": "9"}
        assert gateway.signed_post("/twilio/status", ended).status_code == 204
        time.sleep(1.0)  # the hangup request waits for the action's place, not for time
        action = gateway.signed_post("/twilio/record?rec=1-0", {
            **ended, "Digits": "hangup", "RecordingSid": "RE" + "3" * 32,
            "RecordingUrl": app.base_url + MEDIA_PATH, "RecordingDuration": "7"})
        assert action.status_code == 200 and "<Say" not in action.text
        app.wait_for(lambda reqs: {r.path for r in reqs} >= {"/saved", "/hangup"}, timeout=40)
    paths = [r.path for r in app.requests if r.path in ("/saved", "/hangup")]
    assert paths == ["/saved", "/hangup"]  # Plivo's order: action, then hangup
    saved = app.requests_to("/saved")[0]
    assert saved.signatures_valid and saved.params["RecordingDuration"] == "7"
    assert saved.params["CallStatus"] == "completed" and saved.params["Digits"] == ""
