"""Menus end to end: GetDigits, GetInput, PreAnswer and DTMF through the Twilio simulator.

customer app (Plivo XML menus)  <-  gateway serve  <->  Twilio simulator, all on loopback. Each
test plays a short scenario (keys pressed, words said) and asserts on what the caller heard and
on the requests the app received, with Plivo's parameters and valid Plivo signatures.
"""

from __future__ import annotations

import pytest

from gateway.translate.rooms import twilio_room_name
from tests.support.customer_app import CustomerApp, Reply
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

ACCOUNT = "MA00000000000000000777"

# route -> document; {app} is the customer app's base URL.
DOCUMENTS = {
    "two-level": (
        '<Response><GetDigits action="{app}/menu/main" numDigits="1" timeout="3">'
        "<Speak>Main menu.</Speak></GetDigits><Speak>No choice. Goodbye.</Speak></Response>"),
    "retries": (
        '<Response><GetDigits action="{app}/menu/pick" numDigits="1" timeout="3" retries="3" '
        'validDigits="12" invalidDigitsSound="{app}/invalid.wav">'
        "<Speak>Choose.</Speak></GetDigits><Speak>Too many tries.</Speak></Response>"),
    "no-input": (
        '<Response><GetDigits action="{app}/menu/pick" numDigits="1" timeout="1" retries="2" '
        'playBeep="true"><Speak>Choose.</Speak></GetDigits>'
        "<Speak>No input. Goodbye.</Speak></Response>"),
    "background": (
        '<Response><GetDigits action="{app}/menu/noted" redirect="false" numDigits="1" '
        'timeout="3"><Speak>Rate us.</Speak></GetDigits><Speak>Thanks.</Speak></Response>'),
    "speech": (
        '<Response><GetInput action="{app}/menu/said" inputType="speech" executionTimeout="5" '
        'speechEndTimeout="auto" hints="sales,support" '
        'interimSpeechResultsCallback="{app}/menu/interim">'
        "<Speak>Say sales or support.</Speak></GetInput>"
        "<Speak>Nothing said.</Speak></Response>"),
    "speech-or-keys": (
        '<Response><GetInput action="{app}/menu/said" inputType="dtmf speech" numDigits="1" '
        'executionTimeout="5"><Speak>Say it or press it.</Speak></GetInput></Response>'),
    "preanswer": (
        "<Response><PreAnswer><Speak>Early words.</Speak></PreAnswer>"
        "<Speak>After answer.</Speak></Response>"),
    "dtmf": '<Response><DTMF async="false">12W#</DTMF><Speak>Sent.</Speak></Response>',
    "to-room": (
        '<Response><GetDigits action="{app}/menu/room" numDigits="1" timeout="3">'
        "<Speak>Press 1 for the room.</Speak></GetDigits></Response>"),
}
ROUTES = list(DOCUMENTS)


def number(route: str) -> str:
    return f"+1415557{ROUTES.index(route):04d}"


def main_menu(req) -> Reply:
    choice = req.params.get("Digits")
    if choice == "1":
        return Reply(f'<Response><GetDigits action="{BASE[0]}/menu/sales" numDigits="1" '
                     'timeout="3"><Speak>Sales menu.</Speak></GetDigits></Response>')
    return Reply("<Response><Speak>Support.</Speak></Response>")


def said(req) -> Reply:
    what = req.params.get("Speech") or req.params.get("Digits")
    return Reply(f"<Response><Speak>You chose {what}.</Speak></Response>")


BASE: list[str] = []


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        BASE[:] = [customer_app.base_url]
        for route, xml in DOCUMENTS.items():
            customer_app.route(f"/answer/{route}", xml.replace("{app}", customer_app.base_url))
        customer_app.route("/menu/main", handler=main_menu)
        customer_app.route("/menu/sales", handler=lambda req: Reply(
            f"<Response><Speak>Sales {req.params.get('Digits')}.</Speak></Response>"))
        customer_app.route("/menu/pick", handler=lambda req: Reply(
            f"<Response><Speak>Picked {req.params.get('Digits')}.</Speak></Response>"))
        customer_app.route("/menu/noted", "<Response><Speak>Never heard.</Speak></Response>")
        customer_app.route("/menu/said", handler=said)
        customer_app.route("/menu/interim", body="")
        customer_app.route("/menu/room", "<Response><Conference>Lobby</Conference></Response>")
        customer_app.route("/hangup", body="")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    apps = [app_config(app.url(f"/answer/{route}"), name=f"ivr-{route}", account=ACCOUNT,
                       numbers=(number(route),), hangup_url=app.url("/hangup"))
            for route in ROUTES]
    with Stack(tmp_path_factory.mktemp("ivr"), apps=apps) as running:
        yield running


def caller(name: str, route: str, **extra) -> dict:
    return {"name": name, "from": "+12025550123", "to": number(route), "at": 0.0, **extra}


def play(stack: Stack, app: CustomerApp, call: dict, duration: float = 8.0):
    """One call; the run must be free of application errors and warnings, and every request the
    app received must carry valid Plivo signatures."""
    before = len(app.requests)
    transcript = stack.run({"duration": duration, "call": [call]})
    assert transcript.ok, transcript.errors
    assert not transcript.events(type="warning"), transcript.events(type="warning")
    for request in app.requests[before:]:
        assert request.signatures_valid, (request.path, request.signature_error)
    return transcript


def said_words(transcript, name: str) -> list[str]:
    return [detail for kind, detail in transcript.heard(name) if kind == "say"]


def test_two_level_menu_follows_the_keys(stack, app):
    t = play(stack, app, caller("kim", "two-level", keys=[{"at": 1.0, "digits": "1"},
                                                          {"at": 2.5, "digits": "2"}]))
    assert said_words(t, "kim") == ["Main menu.", "Sales menu.", "Sales 2."]
    main = app.requests_to("/menu/main")[-1]
    assert main.params["Digits"] == "1"
    assert main.params["CallUUID"] and main.params["From"] == "12025550123"
    assert main.params["CallStatus"] == "in-progress"
    assert app.requests_to("/menu/sales")[-1].params["Digits"] == "2"


def test_invalid_keys_play_the_sound_and_listen_again_until_a_valid_one(stack, app):
    before = len(app.requests_to("/menu/pick"))
    t = play(stack, app, caller("ivy", "retries", keys=[{"at": 1.0, "digits": "9"},
                                                        {"at": 3.5, "digits": "2"}]))
    heard = t.heard("ivy")
    assert heard == [("say", "Choose."), ("play", app.url("/invalid.wav")), ("say", "Choose."),
                     ("say", "Picked 2.")]
    picks = app.requests_to("/menu/pick")[before:]
    assert [r.params["Digits"] for r in picks] == ["2"]  # the invalid key never reached the app


def test_no_input_listens_again_then_goes_on_without_a_request(stack, app):
    before = len(app.requests_to("/menu/pick"))
    t = play(stack, app, caller("nia", "no-input"))
    beep = stack.gateway.url + "/sounds/beep.wav"
    assert t.heard("nia") == [("say", "Choose."), ("play", beep), ("say", "Choose."),
                              ("play", beep), ("say", "No input. Goodbye.")]
    assert len(app.requests_to("/menu/pick")) == before
    assert t.call_end("nia")["reason"] == "no more TwiML"


def test_redirect_false_requests_the_action_in_the_background_and_goes_on(stack, app):
    t = play(stack, app, caller("bo", "background", keys=[{"at": 1.0, "digits": "5"}]))
    assert said_words(t, "bo") == ["Rate us.", "Thanks."]
    noted = app.wait_for(lambda reqs: [r for r in reqs if r.path == "/menu/noted"], timeout=10)
    assert noted[-1].params["Digits"] == "5"
    uuid = noted[-1].params["CallUUID"]
    hangup = app.wait_for(lambda reqs: [r for r in reqs if r.path == "/hangup"
                                        and r.params.get("CallUUID") == uuid], timeout=10)
    assert noted[-1].received_at <= hangup[0].received_at  # the call's order: action, hangup


def test_speech_menu_sends_what_was_said_with_interim_results(stack, app):
    before = len(app.requests_to("/menu/interim"))
    t = play(stack, app, caller("sam", "speech", say=[{"at": 2.0, "text": "sales please"}]))
    assert said_words(t, "sam") == ["Say sales or support.", "You chose sales please."]
    answer = app.requests_to("/menu/said")[-1].params
    assert answer["InputType"] == "speech" and answer["Speech"] == "sales please"
    assert answer["Digits"] == ""
    assert 0.0 < float(answer["SpeechConfidenceScore"]) <= 1.0
    interim = app.wait_for(lambda reqs: [r for r in reqs if r.path == "/menu/interim"][before:]
                           if len([r for r in reqs if r.path == "/menu/interim"]) >= before + 2
                           else [], timeout=10)
    assert [r.params["SequenceNumber"] for r in interim] == ["1", "2"]
    assert [(r.params["StableSpeech"], r.params["UnstableSpeech"]) for r in interim] == [
        ("", "sales"), ("sales", "please")]
    final = app.requests_to("/menu/said")[-1]
    assert all(r.received_at <= final.received_at for r in interim)  # Plivo's order


def test_speech_or_keys_menu_takes_a_key(stack, app):
    t = play(stack, app, caller("kay", "speech-or-keys", keys=[{"at": 1.5, "digits": "3"}]))
    assert said_words(t, "kay")[-1] == "You chose 3."
    answer = app.requests_to("/menu/said")[-1].params
    assert (answer["InputType"], answer["Digits"], answer["Speech"]) == ("dtmf", "3", "")


def test_preanswer_elements_play_first_on_the_answered_call(stack, app):
    t = play(stack, app, caller("pat", "preanswer"))
    assert said_words(t, "pat") == ["Early words.", "After answer."]


def test_dtmf_element_plays_the_keys(stack, app):
    t = play(stack, app, caller("dee", "dtmf"))
    assert t.heard("dee") == [("play", "digits 12ww#"), ("say", "Sent.")]


def test_menu_leads_into_a_conference_room(stack, app):
    t = play(stack, app, caller("rae", "to-room", keys=[{"at": 1.5, "digits": "1"}],
                                hangup_at=4.0), duration=6.0)
    joins = t.events(type="conference", event="participant-join", call="rae")
    assert len(joins) == 1
    assert joins[0]["conference"] == twilio_room_name(ACCOUNT, "Lobby")
    assert app.requests_to("/menu/room")[-1].params["Digits"] == "1"


def test_the_beep_is_a_wav_served_without_a_signature(stack):
    import urllib.request
    with urllib.request.urlopen(stack.gateway.url + "/sounds/beep.wav", timeout=5) as response:
        body = response.read()
        assert response.headers["Content-Type"] == "audio/wav"
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
