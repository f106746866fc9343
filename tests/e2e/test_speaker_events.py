"""Speaker events, and other conference events that need no work, answered before Flask
(`gateway/twilio_side/speaker_events.py`), against a real `gateway serve` on loopback.

Twilio reports every talk spurt of every participant. In a room where nobody asked for floor
events they are answered 204 at once: counted in /metrics, left out of the access log. Anything
the fast answer must not take (a wrong signature, a body that is not a plain form, a room where
a member wants the floor, an event waiting in the spool) goes through the full route as before;
`test_callbacks.py::test_floor_callbacks_only_with_floor_event` pins the floor's callbacks.

Under `gateway serve` the web worker answers them itself, before gunicorn's WSGI machinery; on
the wire the answer is the one gunicorn gives on the usual path, kept-alive and pipelined
connections carry early answers and usual requests in turn, and whatever the worker does not
answer itself (a refusal of the body, a repeated header, HTTP/1.0, a query) is answered and
logged as before.
"""

from __future__ import annotations

import email.utils
import io
import socket
import time
import uuid
import weakref
from urllib.parse import urlencode

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
from tests.e2e.test_voice_webhook import wait_for_log
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


# -- on the wire: answered by the web worker itself, before WSGI -------------------------------
# (`gunicorn_worker.GeventWorker` asking `speaker_events.EarlyAnswers`)

def request_bytes(gateway, member: Call, name: str, *, path: str = EVENTS,
                  signature: str | None = None, headers: bytes = b"",
                  version: bytes = b"HTTP/1.1") -> bytes:
    """A speaker event as Twilio POSTs it, signed for `path` unless `signature` is given.
    `headers`: more header lines (a User-Agent names a test's requests in the access log)."""
    params = event_params(member, name)
    body = urlencode(params).encode()
    if signature is None:
        signature = gateway.validator.compute_signature(gateway.url + path, params)
    return (b"POST %s %s\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
            b"X-Twilio-Signature: %s\r\n%s\r\n%s"
            % (path.encode(), version, len(body), signature.encode(), headers, body))


# Bytes read past one answer, by socket: the start of the next one (pipelined answers).
_UNREAD: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_answer(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One HTTP response: (status line, headers by lower-case name, body)."""
    data = _UNREAD.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += sock.recv(4096)
    _UNREAD[sock] = rest[length:]
    return status, headers, rest[:length]


def connection(gateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gateway.port), timeout=10)


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(3)
    return sock.recv(1) == b""


def test_an_early_answer_is_the_answer_of_the_usual_path(gateway, member):
    """HTTP/1.0 is left to gunicorn's usual path, where the WSGI layer before Flask
    (`SpeakerEvents`) answers the same event."""
    with connection(gateway) as early, connection(gateway) as usual:
        early.sendall(request_bytes(gateway, member, "participant-speech-stop"))
        answered_early = read_answer(early)
        usual.sendall(request_bytes(gateway, member, "participant-speech-stop",
                                    version=b"HTTP/1.0"))
        answered_usual = read_answer(usual)
        assert closed_by_server(usual)
    assert answered_early[0] == "HTTP/1.1 204 No Content"
    assert answered_usual[0] == "HTTP/1.0 204 No Content"
    assert (answered_early[1]["connection"], answered_usual[1]["connection"]) == (
        "keep-alive", "close")
    for _, headers, body in (answered_early, answered_usual):
        assert body == b""
        assert headers["server"] == "gunicorn"
        assert abs(email.utils.parsedate_to_datetime(headers["date"]).timestamp()
                   - time.time()) < 5
    assert set(answered_early[1]) == set(answered_usual[1]) == {"server", "date", "connection"}


def test_one_kept_alive_connection_carries_early_answers_and_usual_requests_in_turn(
        gateway, member):
    name = "kept-alive-" + uuid.uuid4().hex  # its requests' User-Agent, in the access log
    agent = f"User-Agent: {name}\r\n".encode()
    counted = webhooks_ok(gateway)
    with connection(gateway) as sock:
        sock.sendall(request_bytes(gateway, member, "participant-speech-start", headers=agent))
        assert read_answer(sock)[0] == "HTTP/1.1 204 No Content"
        sock.sendall(request_bytes(gateway, member, "participant-speech-stop",
                                   signature="forged", headers=agent))
        assert read_answer(sock)[0].startswith("HTTP/1.1 403")  # refused on the usual path
        sock.sendall(request_bytes(gateway, member, "participant-speech-stop", headers=agent))
        assert read_answer(sock)[0] == "HTTP/1.1 204 No Content"
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n" + agent + b"\r\n")
        status, _, body = read_answer(sock)
        assert status == "HTTP/1.1 200 OK" and b'"ok"' in body
    eventually(lambda: webhooks_ok(gateway) == counted + 2)
    # One connection's lines are written in turn, each before its next request is read: once
    # the last request's line is there, every earlier one that was going to be is too.
    wait_for_log(gateway, '"GET /livez', name)
    logged = [line for line in gateway.logs().splitlines() if name in line]
    assert len(logged) == 2 and '" 403 ' in logged[0], logged  # the refusal, and /livez


def test_an_event_asking_to_close_is_answered_and_its_connection_closed(gateway, member):
    with connection(gateway) as sock:
        sock.sendall(request_bytes(gateway, member, "participant-speech-stop",
                                   headers=b"Connection: close\r\n"))
        status, headers, _ = read_answer(sock)
        assert (status, headers["connection"]) == ("HTTP/1.1 204 No Content", "close")
        assert closed_by_server(sock)


def test_a_repeated_signature_header_goes_the_usual_way_and_is_refused(gateway, member):
    """gunicorn joins the two values into one, which is no signature of Twilio's."""
    request = request_bytes(gateway, member, "participant-speech-stop")
    signature_line = request[request.index(b"X-Twilio-Signature"):].split(b"\r\n", 1)[0]
    with connection(gateway) as sock:
        sock.sendall(request.replace(signature_line, signature_line + b"\r\n" + signature_line))
        assert read_answer(sock)[0].startswith("HTTP/1.1 403")


def test_a_slow_event_body_is_refused_and_logged_as_any_slow_body(gateway):
    agent = "slow-" + uuid.uuid4().hex
    with connection(gateway) as sock:
        sock.sendall(b"POST /twilio/conference/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"User-Agent: %s\r\n" % agent.encode() +
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 500\r\n\r\nStatusCallbackEvent=participant-speech")
        began = time.monotonic()
        status, _, body = read_answer(sock)
        assert status == "HTTP/1.1 408 Request Timeout"
        assert 1.5 < time.monotonic() - began < 5
        assert b"not complete within 2 s" in body
        assert closed_by_server(sock)  # nothing more is read from it
    wait_for_log(gateway, "refused POST /twilio/conference/events", "not complete within 2 s")
    wait_for_log(gateway, '"POST /twilio/conference/events HTTP/1.1" 408', agent)


def test_an_event_announcing_a_body_over_the_limit_is_refused_at_once(gateway):
    with connection(gateway) as sock:
        sock.sendall(b"POST /twilio/conference/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\nStatusCallbackEvent=x")
        assert read_answer(sock)[0] == "HTTP/1.1 413 Content Too Large"
        assert closed_by_server(sock)


def test_pipelined_events_are_answered_in_turn(gateway, member):
    """Two requests in one write: the first one's body is read to its length and no further,
    so the second is parsed and answered after it, early or not."""
    with connection(gateway) as sock:
        sock.sendall(request_bytes(gateway, member, "participant-speech-stop")
                     + request_bytes(gateway, member, "participant-speech-stop",
                                     signature="forged")
                     + request_bytes(gateway, member, "participant-speech-start"))
        answers = [read_answer(sock)[0] for _ in range(3)]
    assert answers[0] == "HTTP/1.1 204 No Content"
    assert answers[1].startswith("HTTP/1.1 403")
    assert answers[2] == "HTTP/1.1 204 No Content"


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
        assert early.answers(environ) is answered, name
        assert environ["wsgi.input"].getvalue() == body  # handed on whole
    forged = environ_for(validator, "participant-speech-stop")
    forged["HTTP_X_TWILIO_SIGNATURE"] = "forged"
    assert not early.answers(forged)  # the usual path refuses it, and logs why
    too_large = environ_for(validator, "participant-speech-stop")
    too_large["CONTENT_LENGTH"] = str(10 * 1024 * 1024)
    assert not early.answers(too_large)
    assert isinstance(too_large["wsgi.input"], RefusedBody)
    assert too_large["wsgi.input"].status == "413 Content Too Large"
