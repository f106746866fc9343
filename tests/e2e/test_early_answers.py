"""Speaker events answered by `gateway serve`'s web worker itself, before gunicorn's WSGI
machinery (`gunicorn_worker.GeventWorker` asking `speaker_events.EarlyAnswers`), seen on the
wire: the answer is the one gunicorn gives on the usual path, kept-alive connections carry early
answers and usual requests in turn, and whatever the worker does not answer itself (a refusal of
the body, a repeated header, HTTP/1.0, a query) is answered and logged as before."""

from __future__ import annotations

import email.utils
import socket
import time
import uuid
import weakref
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.e2e.test_callbacks import Call, conference_answer, start_gateway
from tests.e2e.test_speaker_events import (
    EVENTS,
    event_params,
    eventually,
    webhooks_ok,
)
from tests.e2e.test_voice_webhook import wait_for_log
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN


@pytest.fixture(scope="module")
def app() -> Iterator[CustomerApp]:
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        conference_answer(app)
        app.route("/cb", body="")
        yield app


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, app):
    with start_gateway(tmp_path_factory.mktemp("early"), app) as gw:
        yield gw


@pytest.fixture(scope="module")
def member(gateway, app) -> Call:
    call = Call(gateway)
    call.answer()
    call.event("participant-join")
    app.wait_for(lambda reqs: any(r.path == "/cb" and r.params.get("CallUUID")
                                  for r in reqs), timeout=15)
    return call


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
