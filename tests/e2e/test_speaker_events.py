"""Speaker events, and other conference events that need no work, answered before Flask
(`gateway/twilio_side/speaker_events.py`), against a real `gateway serve` on loopback.

Twilio reports every talk spurt of every participant. In a room where nobody asked for floor
events they are answered 204 at once: counted in /metrics, left out of the access log. Anything
the fast answer must not take (a wrong signature, a body that is not a plain form, a room where
a member wants the floor, an event waiting in the spool) goes through the full route as before;
`test_callbacks.py::test_floor_callbacks_only_with_floor_event` pins the floor's callbacks.
"""

from __future__ import annotations

import io
import time

import pytest
import requests
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from gateway.conference.events import ConferenceEvents
from gateway.conference.members import Members, floor_listeners_key
from gateway.spool import Spool
from gateway.state import open_store
from gateway.translate.context import GatewayUrls
from gateway.twilio_side.intake import BoundedBody, RefusedBody
from gateway.twilio_side.speaker_events import EarlyAnswers, SpeakerEvents
from tests.e2e.test_callbacks import CONFERENCE, Call, conference_answer, start_gateway
from tests.e2e.test_observability import samples, value
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, AUTH_TOKEN

EVENTS = "/twilio/conference/events"


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/cb", body="")
        yield app


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, app):
    with start_gateway(tmp_path_factory.mktemp("speaker"), app) as gw:
        yield gw


@pytest.fixture(scope="module")
def member(gateway, app) -> Call:
    """One caller in the room, entered (nobody in the room asked for floor events)."""
    call = Call(gateway)
    call.answer()
    call.event("participant-join")
    app.wait_for(lambda reqs: any(r.path == "/cb" and r.params.get("CallUUID")
                                  for r in reqs), timeout=15)
    return call


def event_params(call: Call, name: str) -> dict[str, str]:
    Call.sequence += 1
    return {"ConferenceSid": CONFERENCE, "FriendlyName": "plivo-x",
            "AccountSid": call.params["AccountSid"], "StatusCallbackEvent": name,
            "SequenceNumber": str(Call.sequence), "Timestamp": "Mon, 23 Nov 2026 20:00:00 +0000",
            "CallSid": call.sid, "Muted": "false", "Hold": "false"}


def access_lines(gw, path: str) -> int:
    return sum(f'"POST {path}' in line for line in gw.logs().splitlines())


def webhooks_ok(gw) -> float:
    return value(samples(gw), "gateway_webhooks_total", route="twilio.conference_events",
                 outcome="ok")


def eventually(check, timeout: float = 5.0) -> None:
    """The access log and the metrics are written after the answer is out."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "never came true"
        time.sleep(0.05)


def test_speaker_events_are_answered_counted_and_left_out_of_the_access_log(gateway, member):
    counted, logged = webhooks_ok(gateway), access_lines(gateway, EVENTS)
    for _ in range(5):
        member.event("participant-speech-start")
        member.event("participant-speech-stop")
    member.event("participant-mute")  # nothing to do for any event Plivo has no callback for
    eventually(lambda: webhooks_ok(gateway) == counted + 11)
    member.answer()  # a request the access log keeps, written after the events' would be
    eventually(lambda: access_lines(gateway, "/twilio/voice") >= 2)
    assert access_lines(gateway, EVENTS) == logged


def test_a_forged_or_unsigned_speaker_event_is_refused_and_logged(gateway, member):
    params = event_params(member, "participant-speech-start")
    assert gateway.signed_post(EVENTS, params, signature="bm90IFR3aWxpbw==").status_code == 403
    assert gateway.signed_post(EVENTS, params, signature="").status_code == 403
    signed = gateway.validator.compute_signature(gateway.url + EVENTS, params)
    changed = {**params, "ConferenceSid": "CF" + "c" * 32}  # signed for another room
    assert requests.post(gateway.url + EVENTS, data=changed, timeout=10,
                         headers={"X-Twilio-Signature": signed}).status_code == 403
    eventually(lambda: "refused POST /twilio/conference/events from 127.0.0.1: no "
               "X-Twilio-Signature" in gateway.logs())
    assert gateway.logs().count("refused POST /twilio/conference/events from 127.0.0.1: wrong "
                                "X-Twilio-Signature") >= 2


def test_a_speaker_event_that_is_not_a_plain_form_goes_the_full_route(gateway, member):
    params = event_params(member, "participant-speech-start")
    signature = gateway.validator.compute_signature(gateway.url + EVENTS, params)
    as_json = requests.post(gateway.url + EVENTS, json=params, timeout=10,
                            headers={"X-Twilio-Signature": signature})
    assert as_json.status_code == 403  # no form: the signature covers no parameters Flask sees
    not_utf8 = requests.post(
        gateway.url + EVENTS, timeout=10,
        data=b"StatusCallbackEvent=participant-speech-start&ConferenceSid=" + CONFERENCE.encode()
        + b"&FriendlyName=\xff\xfe",
        headers={"X-Twilio-Signature": signature,
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert not_utf8.status_code in (400, 403)  # a clear refusal, never a 500 nor a silent 204


def test_a_speaker_event_with_a_query_is_checked_over_the_url_twilio_signed(gateway, member):
    params = event_params(member, "participant-speech-start")
    assert gateway.signed_post(EVENTS + "?from=test", params).status_code == 204
    eventually(lambda: access_lines(gateway, EVENTS + "?from=test") == 1)


# -- the decision itself, on a real store and a real spool ---------------------------------------
@pytest.fixture
def layer(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/store.db")
    members = Members(store)
    events = ConferenceEvents(store=store, members=members, calls=None, mappings=None,
                              urls=GatewayUrls("https://gw.example.com"))
    spool = Spool(str(tmp_path / "spool.db"))
    validator = RequestValidator(AUTH_TOKEN)
    fast = SpeakerEvents(lambda environ, start: [b"full route"], events=events, spool=spool,
                         validator=validator, public_url="https://gw.example.com")
    return fast, store, spool, validator


def environ_for(validator, name: str, **extra) -> dict:
    params = {"ConferenceSid": CONFERENCE, "StatusCallbackEvent": name, "CallSid": "CA1", **extra}
    signature = validator.compute_signature("https://gw.example.com" + EVENTS, params)
    environ = EnvironBuilder(path=EVENTS, method="POST", data=params,
                             headers={"X-Twilio-Signature": signature}).get_environ()
    environ["wsgi.input"] = io.BytesIO(  # as intake.BoundedBody hands it on
        environ["wsgi.input"].read())
    return environ


def test_the_fast_answer_takes_only_events_that_need_nothing(layer):
    fast, store, _, validator = layer
    assert fast.needs_no_work(environ_for(validator, "participant-speech-start"))
    assert fast.needs_no_work(environ_for(validator, "participant-speech-stop"))
    assert fast.needs_no_work(environ_for(validator, "participant-hold"))
    assert not fast.needs_no_work(environ_for(validator, "participant-join"))
    assert not fast.needs_no_work(environ_for(validator, "participant-leave"))
    assert not fast.needs_no_work(environ_for(validator, "conference-end"))
    store.put(floor_listeners_key(CONFERENCE), {"since": 1.0}, 60)  # a member wants the floor
    assert not fast.needs_no_work(environ_for(validator, "participant-speech-start"))
    assert fast.needs_no_work(environ_for(validator, "participant-speech-stop"))


def test_an_event_waiting_in_the_spool_sends_speaker_events_the_full_route(layer):
    """A spooled join may be the one that wants the floor: the full route replays it first."""
    fast, _, spool, validator = layer
    spool.add("conference", {"StatusCallbackEvent": ["participant-join"]})
    assert not fast.needs_no_work(environ_for(validator, "participant-speech-start"))
    assert fast.needs_no_work(environ_for(validator, "participant-speech-stop"))  # never work


def test_an_event_with_a_name_given_twice_goes_the_full_route(layer):
    """Twilio never repeats a name; Flask's route, which keeps every value, judges one that
    does (its signature covers both values)."""
    fast, _, _, validator = layer
    params = [("ConferenceSid", CONFERENCE), ("StatusCallbackEvent", "participant-speech-stop"),
              ("CallSid", "CA1"), ("Muted", "false"), ("Muted", "true")]
    signature = validator.compute_signature("https://gw.example.com" + EVENTS,
                                            MultiDict(params))
    environ = EnvironBuilder(path=EVENTS, method="POST", data=MultiDict(params),
                             headers={"X-Twilio-Signature": signature}).get_environ()
    environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read())
    assert not fast.needs_no_work(environ)
    assert fast(environ, lambda status, headers: None) == [b"full route"]


def test_the_web_workers_early_answers_take_the_same_decision(layer):
    """`EarlyAnswers` (asked by gateway serve's web worker before WSGI) reads the body within
    the intake's limits and leaves it, as read, for the usual path."""
    fast, _, _, validator = layer
    early = EarlyAnswers(BoundedBody(fast), fast)
    for name, answered in (("participant-speech-stop", True), ("participant-speech-start", True),
                           ("participant-join", False), ("conference-end", False)):
        environ = environ_for(validator, name)
        body = environ["wsgi.input"].getvalue()
        assert early.needs_no_work(environ) is answered, name
        assert environ["wsgi.input"].getvalue() == body  # handed on whole
    forged = environ_for(validator, "participant-speech-stop")
    forged["HTTP_X_TWILIO_SIGNATURE"] = "forged"
    assert not early.needs_no_work(forged)  # the usual path refuses it, and logs why
    too_large = environ_for(validator, "participant-speech-stop")
    too_large["CONTENT_LENGTH"] = str(10 * 1024 * 1024)
    assert not early.needs_no_work(too_large)
    assert isinstance(too_large["wsgi.input"], RefusedBody)
    assert too_large["wsgi.input"].status == "413 Content Too Large"
