"""AppClient on the wire: the bytes a customer app receives (URL, headers, body), what is never
sent (cookies, proxy or .netrc settings), and how a broken answer is classified."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
import urllib3

from gateway.app_side import AppClient, AppRequestError
from gateway.formencoding import form_encoded
from tests.support.customer_app import CustomerApp, Reply

PARAMS = {"CallUUID": "5f0e3c1a-0000-4000-8000-000000000001", "From": "14155550123",
          "To": "14155550100", "Event": "StartApp"}
LOOPBACK = ("127.0.0.1",)


def ask(client: AppClient, app: CustomerApp, url: str, method: str = "POST",
        params: dict[str, str] | None = None) -> object:
    return client.request(url, method, PARAMS if params is None else params,
                          auth_token=app.auth_token, allowed_hosts=LOOPBACK)


# --- the URL signed is the URL sent --------------------------------------------------------------

# (what the app configured, the path the app's framework routes on)
ODD_URLS = [
    ("/odd/[x]?tag=[1]", "/odd/[x]"),
    ("/odd/a b?q=x y", "/odd/a b"),
    ("/odd/%7euser?v=%41", "/odd/~user"),
    ("/odd/./sub/../x", "/odd/x"),
    ("/odd/%zz", "/odd/%zz"),
]


@pytest.mark.parametrize(("path", "routed"), ODD_URLS, ids=[u for u, _ in ODD_URLS])
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_signatures_cover_the_url_exactly_as_it_arrives(client, customer_app, path, routed,
                                                        method):
    customer_app.route(routed, "<Response/>")
    assert ask(client, customer_app, customer_app.url(path), method).status == 200
    received = customer_app.wait_for_request(routed)
    assert received.signatures_valid, (received.url, received.signature_error)


def test_scheme_and_host_are_signed_in_lower_case(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    ask(client, customer_app, f"HTTP://127.0.0.1:{customer_app.port}/answer")
    assert customer_app.wait_for_request("/answer").signatures_valid


def test_url_credentials_go_as_basic_auth_and_are_not_signed(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    ask(client, customer_app, f"http://plivo:s%3Acret@127.0.0.1:{customer_app.port}/answer")
    received = customer_app.wait_for_request("/answer")
    assert received.headers["Authorization"] == "Basic cGxpdm86czpjcmV0"  # plivo:s:cret
    assert received.signatures_valid, received.signature_error


# --- headers and body ----------------------------------------------------------------------------

def test_post_is_a_form_with_its_length(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    ask(client, customer_app, customer_app.url("/answer"))
    headers = customer_app.wait_for_request("/answer").headers
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert int(headers["Content-Length"]) > 0
    assert headers["Accept"] == "*/*"
    assert "gzip" in headers["Accept-Encoding"]


HOSTILE_FORM = {"CallUUID": "5f0e3c1a-0000-4000-8000-000000000001", "From": "+1 415 555",
                "CallerName": "Zoë & Jo = \"ok\"/?#%", "Digits": "*#~_.-", "Empty": "",
                "Ünïcode key": "日本 語", "Tab\tNew\nline": "a+b\r\n"}


def test_post_form_body_is_urlencode_exactly():
    assert form_encoded(HOSTILE_FORM) == urlencode(HOSTILE_FORM)
    assert form_encoded(PARAMS) == urlencode(PARAMS)
    query = {"step": 3, "leg": 0, "rec": "r 1/2", "member": "CA1-4"}  # a callback URL's query
    assert form_encoded(query) == urlencode(query)


def test_hostile_form_reaches_the_app_intact_and_signed(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    ask(client, customer_app, customer_app.url("/answer"), params=HOSTILE_FORM)
    received = customer_app.wait_for_request("/answer")
    assert received.form == {key: [value] for key, value in HOSTILE_FORM.items()}
    assert received.signatures_valid, received.signature_error


def test_post_without_params_has_no_body_and_says_so(client, customer_app):
    customer_app.route("/cb", "", status=204)
    ask(client, customer_app, customer_app.url("/cb"), params={})
    received = customer_app.wait_for_request("/cb")
    assert received.headers["Content-Length"] == "0"
    assert "Content-Type" not in received.headers
    assert received.form == {}


def test_get_has_no_body(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    ask(client, customer_app, customer_app.url("/answer"), "GET")
    received = customer_app.wait_for_request("/answer")
    assert "Content-Length" not in received.headers
    assert "Content-Type" not in received.headers


def test_gzipped_answer_is_decoded(client, customer_app):
    xml = "<Response><Speak>Grüße</Speak></Response>"
    customer_app.route("/answer", gzip.compress(xml.encode("utf-8")), content_type="text/xml",
                       headers={"Content-Encoding": "gzip"})
    assert ask(client, customer_app, customer_app.url("/answer")).text == xml


class Recorder:
    """A loopback server that keeps each request's bytes exactly as they arrived and answers
    a small document (then closes the connection)."""

    ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 11\r\n"
              b"Connection: close\r\n\r\n<Response/>")

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5.0)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head = data.split(b"\r\n\r\n", 1)[0]
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(data) < len(head) + 4 + length:
                    data += conn.recv(65536)
                self.requests.append(data)
                conn.sendall(self.ANSWER)

    def close(self) -> None:
        self.listener.close()


def as_urllib3_sends_it(recorder: Recorder, sent: bytes) -> bytes:
    """The same request (method, target, headers in order, body) sent through urllib3's own
    request path, as the recorder received it."""
    head, body = sent.split(b"\r\n\r\n", 1)
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in lines if not line.startswith("Host: "))
    with urllib3.HTTPConnectionPool("127.0.0.1", recorder.port, retries=False) as pool:
        pool.urlopen(method, target, body=body or None, headers=headers)
    return recorder.requests[-1]


@pytest.mark.parametrize(("method", "params"), [("POST", PARAMS), ("POST", {}), ("GET", PARAMS)],
                         ids=["post", "post without params", "get"])
def test_request_bytes_are_what_urllib3_writes(client, method, params):
    recorder = Recorder()
    try:
        client.request(f"http://127.0.0.1:{recorder.port}/answer?x=1", method, params,
                       auth_token="t", allowed_hosts=LOOPBACK)
        sent = recorder.requests[-1]
        assert b"X-Plivo-Signature-V3: " in sent
        assert as_urllib3_sends_it(recorder, sent) == sent
    finally:
        recorder.close()


def test_a_header_value_with_a_line_break_is_refused_not_written():
    recorder = Recorder()
    try:
        with AppClient(extra_headers={"X-Team": "a\r\nX-Injected: 1"}) as injecting, \
                pytest.raises(ValueError, match="header"):
            injecting.request(f"http://127.0.0.1:{recorder.port}/answer", "POST", PARAMS,
                              auth_token="t", allowed_hosts=LOOPBACK)
        assert recorder.requests == []
    finally:
        recorder.close()


# --- what is never sent --------------------------------------------------------------------------

def test_cookies_the_app_sets_are_not_sent_back(client, customer_app):
    customer_app.route("/answer", handler=lambda _req: Reply(
        "<Response/>", headers={"Set-Cookie": "session=app-one; Path=/"}))
    ask(client, customer_app, customer_app.url("/answer"))
    ask(client, customer_app, customer_app.url("/answer"))
    assert all("Cookie" not in r.headers for r in customer_app.requests_to("/answer"))
    assert customer_app.count("/answer") == 2


def test_proxy_and_netrc_settings_in_the_environment_are_ignored(customer_app, monkeypatch,
                                                                 tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login leaked password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, CustomerApp.refused_url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    customer_app.route("/answer", "<Response/>")
    with AppClient() as client:
        assert ask(client, customer_app, customer_app.url("/answer")).status == 200
    assert "Authorization" not in customer_app.wait_for_request("/answer").headers


# --- broken answers ------------------------------------------------------------------------------

class RawApp:
    """A loopback server that answers every connection with the same raw bytes, then closes it
    (for answers no well-behaved HTTP server would give)."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10.0)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                conn.close()
                return
            self.connections += 1
            with conn:
                conn.settimeout(5.0)
                try:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        # Closing a listening socket does not wake a thread blocked in accept(); a last
        # connection does.
        self._stopping.set()
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port),
                                                                    timeout=5.0):
            pass
        self._thread.join(timeout=5.0)
        self.listener.close()


@pytest.fixture
def raw_app(request) -> Iterator[RawApp]:
    app = RawApp(request.param)
    yield app
    app.close()


def raw_failure(client: AppClient, url: str) -> AppRequestError:
    with pytest.raises(AppRequestError) as caught:
        client.request(url, "POST", PARAMS, auth_token="t", allowed_hosts=LOOPBACK)
    return caught.value


@pytest.mark.parametrize("raw_app", [b""], indirect=True)
def test_app_that_closes_without_answering_is_an_rt_failure(client, raw_app):
    error = raw_failure(client, raw_app.url("/answer#rc=1&rp=rt"))
    assert (error.kind, error.attempts) == ("rt", 2)
    assert "closed the connection" in error.reason
    assert raw_app.connections == 2


@pytest.mark.parametrize("raw_app", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<Response>"],
    indirect=True)
def test_body_shorter_than_its_length_is_cut_short(client, raw_app):
    error = raw_failure(client, raw_app.url("/answer"))
    assert (error.kind, error.status) == ("other", 200)
    assert "cut short" in error.reason


@pytest.mark.parametrize("raw_app", [b"SPEAK FRIEND\r\n\r\n"], indirect=True)
def test_answer_that_is_not_http_counts_as_no_answer(client, raw_app):
    error = raw_failure(client, raw_app.url("/answer"))
    assert (error.kind, error.status) == ("rt", None)
    assert error.url == raw_app.url("/answer")
