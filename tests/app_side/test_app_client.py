"""AppClient against a real customer app on loopback: what arrives, signed how, retried when,
and what is refused."""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gateway.app_side import AppClient, AppRequestError, call_params, call_uuid
from gateway.app_side.params import EVENT_START_APP
from tests.support.customer_app import CustomerApp, Reply

WEBHOOK = {"CallSid": "CA0123456789abcdef0123456789abcdef", "From": "+14155550123",
           "To": "+14155550100", "CallStatus": "ringing", "Direction": "inbound",
           "CallerName": "Zoë Ørsted"}
PARAMS = call_params(WEBHOOK, event=EVENT_START_APP)
# The customer app listens on loopback, which the gateway refuses unless the mapping lists it.
LOOPBACK = ("127.0.0.1",)


def ask(client: AppClient, app: CustomerApp, url: str, method: str = "POST",
        params: dict[str, str] | None = None, **kwargs) -> object:
    return client.request(url, method, PARAMS if params is None else params,
                          auth_token=app.auth_token, allowed_hosts=kwargs.pop("allowed", LOOPBACK),
                          **kwargs)


def failure(client: AppClient, app: CustomerApp, url: str, method: str = "POST",
            **kwargs) -> AppRequestError:
    with pytest.raises(AppRequestError) as caught:
        ask(client, app, url, method, **kwargs)
    return caught.value


# --- what the app receives -----------------------------------------------------------------------

def test_post_sends_plivo_params_as_a_form_signed_as_plivo_signs(client, customer_app):
    customer_app.route("/answer", "<Response><Speak>Hi</Speak></Response>")
    response = ask(client, customer_app, customer_app.url("/answer?app=1"))

    assert response.status == 200
    assert response.text == "<Response><Speak>Hi</Speak></Response>"
    assert response.attempts == 1
    received = customer_app.wait_for_request("/answer")
    assert received.method == "POST"
    assert received.params == PARAMS
    assert received.query == {"app": ["1"]}
    assert received.signature_v2_valid and received.signature_v3_valid, received.signature_error
    assert received.headers["User-Agent"].startswith("PlivoHTTP/")


def test_get_puts_params_in_the_query_keeping_the_urls_own(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    ascii_params = {**PARAMS, "CallerName": "JOHN DOE"}  # see the SDK's limit in docs/app_side.md
    ask(client, customer_app, customer_app.url("/answer?app=1&From=stale"), "GET", ascii_params)

    received = customer_app.wait_for_request("/answer")
    assert received.method == "GET"
    assert received.params == {"app": "1", **ascii_params}
    assert received.query["From"] == ["14155550123"]  # the param replaced the URL's stale one
    assert received.form == {}
    assert received.signatures_valid, received.signature_error


def test_post_without_params_is_signed_too(client, customer_app):
    customer_app.route("/cb", "", status=204)
    assert ask(client, customer_app, customer_app.url("/cb"), params={}).status == 204
    assert customer_app.wait_for_request("/cb").signatures_valid


def test_call_uuid_is_the_same_on_every_request_for_a_call(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    customer_app.route("/action", "<Response/>")
    ask(client, customer_app, customer_app.url("/answer"), params=call_params(WEBHOOK))
    ask(client, customer_app, customer_app.url("/action"),
        params=call_params({**WEBHOOK, "CallStatus": "in-progress"}))
    uuids = {r.params["CallUUID"] for r in customer_app.requests}
    assert uuids == {call_uuid(WEBHOOK["CallSid"])}


def test_the_fragment_is_never_sent(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    response = ask(client, customer_app, customer_app.url("/answer?x=1#ct=1000&rt=2000&rc=0"))
    received = customer_app.wait_for_request("/answer")
    assert "#" not in received.url and "rt=" not in received.url
    assert received.query == {"x": ["1"]}
    assert response.url == customer_app.url("/answer?x=1")


@pytest.mark.parametrize(("body", "content_type"), [
    ("<html><body>Oops</body></html>", "text/html"),
    ("", "text/xml"),
    ("<Other/>", "application/xml"),
])
def test_any_2xx_body_is_handed_back_for_the_parser_to_judge(client, customer_app, body,
                                                             content_type):
    customer_app.route("/answer", body, content_type=content_type)
    response = ask(client, customer_app, customer_app.url("/answer"))
    assert (response.text, response.content_type) == (body, content_type)


def test_body_without_charset_is_read_as_utf8(client, customer_app):
    xml = "<Response><Speak>Grüße, 北京</Speak></Response>"
    customer_app.route("/answer", xml.encode("utf-8"), content_type="text/xml")
    response = ask(client, customer_app, customer_app.url("/answer"))
    assert response.text == xml
    assert response.body == xml.encode("utf-8")


# --- Plivo's retry rules -------------------------------------------------------------------------

def test_rc_retries_are_counted_on_the_server(client, customer_app):
    customer_app.route("/boom", "down", status=500, content_type="text/plain")
    error = failure(client, customer_app, customer_app.url("/boom#rc=3&rp=5xx"))
    assert (error.kind, error.status, error.attempts) == ("5xx", 500, 4)
    assert customer_app.count("/boom") == 4
    assert all(r.signatures_valid for r in customer_app.requests_to("/boom"))


def test_default_policy_does_not_retry_a_500(client, customer_app):
    customer_app.route("/boom", "down", status=500, content_type="text/plain")
    assert failure(client, customer_app, customer_app.url("/boom")).kind == "5xx"
    assert customer_app.count("/boom") == 1


def test_rp_5xx_does_not_retry_a_404(client, customer_app):
    customer_app.route("/gone", "no", status=404, content_type="text/plain")
    error = failure(client, customer_app, customer_app.url("/gone#rc=2&rp=5xx"))
    assert (error.kind, error.status, error.attempts) == ("4xx", 404, 1)
    assert customer_app.count("/gone") == 1


def test_rp_4xx_retries_a_404(client, customer_app):
    customer_app.route("/gone", "no", status=404, content_type="text/plain")
    assert failure(client, customer_app, customer_app.url("/gone#rc=2&rp=4xx,5xx")).attempts == 3
    assert customer_app.count("/gone") == 3


def test_a_retry_that_succeeds_returns_the_answer(client, customer_app):
    answers = iter([Reply("busy", status=503, content_type="text/plain"), Reply("<Response/>")])
    customer_app.route("/flaky", handler=lambda _req: next(answers))
    response = ask(client, customer_app, customer_app.url("/flaky#rc=1&rp=5xx"))
    assert (response.status, response.attempts) == (200, 2)


def test_ct_retries_a_refused_connection(client, customer_app):
    error = failure(client, customer_app, CustomerApp.refused_url("/answer#rc=2&rp=ct"))
    assert (error.kind, error.attempts) == ("ct", 3)


def test_refused_connection_is_not_retried_when_rp_leaves_out_ct(client, customer_app):
    error = failure(client, customer_app, CustomerApp.refused_url("/answer#rc=2&rp=5xx"))
    assert (error.kind, error.attempts) == ("ct", 1)


def test_rt_retries_an_app_that_hangs(client, customer_app):
    customer_app.hang("/hang")
    error = failure(client, customer_app, customer_app.url("/hang#rt=200&rc=2&rp=rt"))
    assert (error.kind, error.attempts) == ("rt", 3)
    assert customer_app.count("/hang") == 3


def test_tt_stops_everything(client, customer_app):
    customer_app.hang("/hang")
    began = time.monotonic()
    error = failure(client, customer_app, customer_app.url("/hang#rt=500&tt=800&rc=5&rp=rt"))
    assert error.kind == "tt"
    assert time.monotonic() - began < 3.0
    assert customer_app.count("/hang") <= 2


def test_deadline_clamps_a_hanging_app_to_the_budget(client, customer_app):
    customer_app.hang("/hang")
    began = time.monotonic()
    error = failure(client, customer_app, customer_app.url("/hang"),
                    deadline=time.monotonic() + 1.0)
    assert error.kind == "tt"
    assert time.monotonic() - began < 3.0


def test_deadline_already_past_sends_nothing(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    error = failure(client, customer_app, customer_app.url("/answer"),
                    deadline=time.monotonic() - 1)
    assert error.kind == "tt"
    assert customer_app.count() == 0


def test_bad_fragment_is_logged_and_plivos_defaults_apply(client, customer_app, caplog):
    customer_app.route("/answer", "<Response/>")
    with caplog.at_level(logging.WARNING, logger="gateway.app_side"):
        assert ask(client, customer_app, customer_app.url("/answer#rc=9")).status == 200
    assert "'rc'" in caplog.text


# --- refusals ------------------------------------------------------------------------------------

def test_host_not_allowed_sends_nothing(client, customer_app):
    customer_app.route("/answer", "<Response/>")
    error = failure(client, customer_app, customer_app.url("/answer"),
                    allowed=["app.example.com"])
    assert error.kind == "host"
    assert customer_app.count() == 0


def test_name_that_resolves_to_loopback_is_refused_unless_the_address_is_listed(client,
                                                                                customer_app):
    customer_app.route("/answer", "<Response/>")
    url = f"http://localhost:{customer_app.port}/answer"
    assert failure(client, customer_app, url, allowed=["localhost"]).kind == "host"
    assert customer_app.count() == 0
    assert ask(client, customer_app, url, allowed=["localhost", "127.0.0.1", "::1"]).status == 200


def test_a_name_is_connected_at_the_address_its_check_vetted_not_looked_up_again(customer_app):
    """A second look-up could answer differently (DNS rebinding: "public" for the check, then
    127.0.0.1 for the connection) or take long past the deadline: there is none. The name
    stays the Host header's."""
    customer_app.route("/answer", "<Response/>")
    # `app.invalid` exists only in this resolver (RFC 6761: never in real DNS), so the request
    # reaches the app only if the connection goes to the address the check vetted.
    with AppClient(resolve=lambda host, port: ["127.0.0.1"]) as dns:
        response = ask(dns, customer_app, f"http://app.invalid:{customer_app.port}/answer",
                       allowed=["app.invalid", "127.0.0.1"])
    assert response.status == 200
    assert customer_app.requests[-1].headers["Host"] == f"app.invalid:{customer_app.port}"


def test_a_name_server_that_does_not_answer_fails_the_attempt_within_its_time(customer_app):
    customer_app.route("/answer", "<Response/>")

    def silent_name_server(host, port):
        time.sleep(30)  # as a resolver waiting on an unreachable name server
        return ["127.0.0.1"]

    with AppClient(resolve=silent_name_server) as dns:
        began = time.monotonic()
        error = failure(dns, customer_app, f"http://app.invalid:{customer_app.port}/answer#tt=2000",
                        allowed=["app.invalid", "127.0.0.1"])
    assert error.kind == "tt" and "no answer from the name servers" in error.reason
    assert time.monotonic() - began < 10  # the look-up alone would have taken 30 s
    assert customer_app.count() == 0


def test_redirects_are_not_followed(client, customer_app):
    customer_app.route("/moved", "", status=302,
                       headers={"Location": "http://169.254.169.254/latest/meta-data"})
    error = failure(client, customer_app, customer_app.url("/moved#rc=3&rp=all"))
    assert (error.kind, error.status, error.attempts) == ("other", 302, 1)
    assert "169.254.169.254" in error.reason
    assert customer_app.count() == 1


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "streamed"])
def test_5mb_body_is_refused_without_reading_it_all(client, customer_app, declare_length):
    size = 5 * 2**20
    customer_app.huge("/big", size, declare_length=declare_length)
    began = time.monotonic()
    error = failure(client, customer_app, customer_app.url("/big"))
    assert error.kind == "other" and "larger than" in error.reason
    assert time.monotonic() - began < 3.0
    assert customer_app.huge_done["/big"].wait(5.0)
    assert not customer_app.huge_completed["/big"]
    assert customer_app.huge_sent["/big"] < size


def test_max_bytes_is_the_callers_choice(client, customer_app):
    customer_app.route("/answer", "<Response>" + " " * 5000 + "</Response>")
    assert failure(client, customer_app, customer_app.url("/answer"), max_bytes=1000).kind == (
        "other")
    assert ask(client, customer_app, customer_app.url("/answer"), max_bytes=10_000).status == 200


def test_only_get_and_post(client, customer_app):
    with pytest.raises(ValueError, match="GET or POST"):
        ask(client, customer_app, customer_app.url("/answer"), "PUT")


# --- the edge itself -----------------------------------------------------------------------------

def test_failed_request_logs_one_line_without_query_params_or_token(client, customer_app,
                                                                    caplog):
    customer_app.route("/boom", "down", status=500, content_type="text/plain")
    with caplog.at_level(logging.DEBUG, logger="gateway.app_side"):
        failure(client, customer_app, customer_app.url("/boom?key=hunter2#rc=1&rp=5xx"))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    line = warnings[0].getMessage()
    assert "/boom" in line and "HTTP 500" in line
    for secret in ("hunter2", customer_app.auth_token, PARAMS["CallUUID"], "Ørsted"):
        assert secret not in caplog.text


def test_connections_are_kept_alive_between_requests(client):
    # werkzeug's server closes every connection, so a minimal HTTP/1.1 server stands in here.
    ports: list[int] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ports.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b"<Response/>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    try:
        for _ in range(3):
            client.request(f"http://127.0.0.1:{server.server_port}/answer", "POST", PARAMS,
                           auth_token="t", allowed_hosts=LOOPBACK)
    finally:
        server.shutdown()
        server.server_close()
    assert len(ports) == 3
    assert len(set(ports)) == 1


def test_one_client_serves_many_threads(client, customer_app):
    customer_app.route("/answer", handler=lambda req: Reply(
        f"<Response><Speak>{req.params['n']}</Speak></Response>"))
    results: dict[int, str] = {}

    def call(n: int) -> None:
        response = ask(client, customer_app, customer_app.url("/answer"),
                       params={**PARAMS, "n": str(n)})
        results[n] = response.text

    threads = [threading.Thread(target=call, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == {n: f"<Response><Speak>{n}</Speak></Response>" for n in range(20)}
    assert all(r.signatures_valid for r in customer_app.requests)


def test_body_is_decoded_by_its_xml_declaration_when_the_header_has_no_charset(client,
                                                                               customer_app):
    xml = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Speak>Grüße</Speak></Response>'
    customer_app.route("/answer", xml.encode("latin-1"), content_type="text/xml")
    assert ask(client, customer_app, customer_app.url("/answer")).text == xml


def test_header_charset_wins(client, customer_app):
    xml = "<Response><Speak>Grüße</Speak></Response>"
    customer_app.route("/answer", xml.encode("utf-16"), content_type="text/xml; charset=utf-16")
    assert ask(client, customer_app, customer_app.url("/answer")).text == xml


@pytest.mark.parametrize("charset", ["idna", "hex", "rot13", "no-such-charset"])
def test_a_charset_that_cannot_decode_text_counts_as_unknown(client, customer_app, charset):
    xml = "<Response><Speak>Grüße</Speak></Response>"
    customer_app.route("/answer", xml.encode("utf-8"),
                       content_type=f"text/xml; charset={charset}")
    assert ask(client, customer_app, customer_app.url("/answer")).text == xml


def test_urllib3_debug_lines_never_carry_query_strings(client, customer_app, caplog):
    from gateway.runtime import configure_logging
    configure_logging()
    customer_app.route("/answer", "<Response/>")
    with caplog.at_level(logging.DEBUG, logger="urllib3"):
        ask(client, customer_app, customer_app.url("/answer") + "?api_key=k-secret#x=1",
            method="GET")
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("/answer" in line for line in lines), lines  # urllib3 did log the request
    assert not any("k-secret" in line or "CallUUID" in line for line in lines), lines
