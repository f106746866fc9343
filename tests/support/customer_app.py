"""A stand-in for a customer's Plivo app: a real HTTP server on loopback, for end-to-end tests.

It answers what each test configures, records every request it receives, and checks each
request's Plivo V2 and V3 signatures with the plivo SDK's own validators (the verdict is recorded,
the request is answered either way, so a test can assert on it).

    from tests.support.customer_app import CustomerApp, Reply

    with CustomerApp(auth_token="secret") as app:
        app.route("/answer", "<Response><Speak>Hi</Speak></Response>")
        app.route("/slow", "<Response/>", delay=2.0)
        app.route("/boom", status=500)
        app.route("/echo", handler=lambda req: Reply(f"<Response>{req.params['From']}</Response>"))
        app.route("/callback", status=204, body="")
        # ... make the gateway request app.url("/answer") ...
        req = app.wait_for_request("/answer")               # bounded wait, raises on timeout
        assert req.signatures_valid                          # V2 and V3 both accepted by the SDK
        assert req.params["CallUUID"]
        assert app.count("/boom") == 2                       # e.g. one retry

Canned misbehaviour: `app.hang(path)` (never answers until the server stops or `release()`),
`app.huge(path, size=5 * 2**20)` (a 5 MB body, streamed), `route(..., status=404)`,
`route(..., body="<html>...", content_type="text/html")`, `route(..., body="")`, and
`CustomerApp.refused_url(path)` (a loopback URL on a port where nothing listens).
Unrouted paths answer 404 (and are recorded too).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from plivo.utils import validate_signature
from plivo.utils.signature_v3 import validate_v3_signature
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

DEFAULT_AUTH_TOKEN = "customer-app-test-token"
XML = "text/xml; charset=utf-8"


@dataclass(frozen=True)
class Reply:
    """What a route answers. `body` may be str, bytes or an iterable of bytes (streamed);
    `delay` seconds pass before the answer starts."""

    body: str | bytes | Iterable[bytes] = "<Response></Response>"
    status: int = 200
    content_type: str = XML
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["RecordedRequest"], "Reply | str"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the app received it. `query` and `form` keep repeated keys as lists;
    `params` is the single-valued view a Plivo app reads (query for GET, form for POST, the last
    value of a repeated key). `url` is the full URL exactly as requested (no fragment: browsers
    and HTTP clients never send one)."""

    method: str
    path: str
    url: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]
    received_at: float  # time.monotonic()
    signature_v2_valid: bool | None  # None: the header was missing
    signature_v3_valid: bool | None
    signature_error: str | None = None  # the SDK validator raised (e.g. non-ASCII GET query)
    client_port: int = 0  # the caller's TCP port: the same across requests on a kept-alive link

    @property
    def params(self) -> dict[str, str]:
        source = self.query if self.method == "GET" else self.form
        return {k: v[-1] for k, v in source.items()}

    @property
    def signatures_valid(self) -> bool:
        return bool(self.signature_v2_valid and self.signature_v3_valid)


@dataclass
class _Route:
    reply: Reply | None = None
    handler: Handler | None = None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class CustomerApp:
    """A threaded werkzeug server on 127.0.0.1 (ephemeral port) playing a customer's app."""

    def __init__(self, auth_token: str = DEFAULT_AUTH_TOKEN, *, host: str = "127.0.0.1"):
        self.auth_token = auth_token
        self._routes: dict[str, _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._release = threading.Event()
        self.huge_sent: dict[str, int] = {}
        self.huge_completed: dict[str, bool] = {}
        self.huge_done: dict[str, threading.Event] = {}
        self._server = make_server(host, 0, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self.host = host
        self.port = self._server.server_port
        self._thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> CustomerApp:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.01},
                                            name=f"customer-app:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.release()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> CustomerApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- configuration ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of `path` on this app (path may carry '?query' and '#fragment')."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(self, path: str, body: str | bytes | Iterable[bytes] = "<Response></Response>",
              *, status: int = 200, content_type: str = XML, delay: float = 0.0,
              headers: dict[str, str] | None = None, handler: Handler | None = None) -> None:
        """Answer `path` (without query) with a fixed reply, or with `handler(request)`."""
        reply = Reply(body, status, content_type, delay, dict(headers or {}))
        self._routes[path] = _Route(reply=None if handler else reply, handler=handler)

    def hang(self, path: str) -> None:
        """`path` never answers: it waits until `release()` or until the server stops."""
        self.route(path, handler=lambda _req: self._hang())

    def release(self) -> None:
        """Let every request hanging now finish (with an empty <Response>); routes set up with
        `hang()` hang again for later requests."""
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()

    def huge(self, path: str, size: int = 5 * 2**20, *, declare_length: bool = True,
             pace: float = 0.005) -> None:
        """`path` answers 200 with `size` bytes of XML comment filler in 64 KiB chunks, `pace`
        seconds apart, so the whole body takes a while to go out and a test can tell whether
        the client stopped early: `huge_sent[path]` counts the bytes written,
        `huge_completed[path]` says whether all went out, `huge_done[path]` is set when the
        server stopped sending (finished, or the client hung up)."""
        headers = {"Content-Length": str(size)} if declare_length else {}
        self.huge_sent[path] = 0
        self.huge_completed[path] = False
        self.huge_done[path] = threading.Event()
        self.route(path, handler=lambda _req: Reply(self._filler(path, size, pace),
                                                    headers=headers))

    @staticmethod
    def refused_url(path: str = "/") -> str:
        """A loopback URL where connections are refused (a port just freed, nobody listening)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"http://127.0.0.1:{port}{path if path.startswith('/') else '/' + path}"

    # --- what was received --------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def assert_all_signed_as_plivo_signs(self) -> None:
        """Every request received so far verifies with the plivo SDK's validators."""
        unsigned = [f"{r.method} {r.path}" for r in self.requests if not r.signatures_valid]
        assert not unsigned, f"not signed as Plivo signs: {unsigned}"

    def count(self, path: str | None = None) -> int:
        return len(self.requests if path is None else self.requests_to(path))

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate: Callable[[list[RecordedRequest]], Any],
                 timeout: float = 5.0) -> Any:
        """Wait until `predicate(requests)` is truthy and return its value; TimeoutError after
        `timeout` seconds, naming what was received."""
        end = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate(list(self._requests))
                if value:
                    return value
                left = end - time.monotonic()
                if left <= 0:
                    seen = [f"{r.method} {r.path}" for r in self._requests]
                    raise TimeoutError(f"condition not met within {timeout} s; received {seen}")
                self._lock.wait(min(left, 0.1))

    def wait_for_request(self, path: str, n: int = 1, timeout: float = 5.0) -> RecordedRequest:
        """The `n`th request to `path` (1-based), waiting for it if needed."""
        found = self.wait_for(lambda reqs: [r for r in reqs if r.path == path][n - 1:n], timeout)
        return found[0]

    # --- the WSGI app -------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        recorded = self._record(request, environ)
        route = self._routes.get(request.path)
        if route is None:
            reply: Reply = Reply("not found", status=404, content_type="text/plain")
        elif route.handler is not None:
            answer = route.handler(recorded)
            reply = Reply(answer) if isinstance(answer, str) else answer
        else:
            reply = route.reply or Reply()
        if reply.delay and self._stopping.wait(reply.delay):
            reply = Reply("stopping", status=503, content_type="text/plain")
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        response = Response(body, status=reply.status, content_type=reply.content_type)
        for name, value in reply.headers.items():
            response.headers[name] = value
        if not isinstance(body, bytes):
            response.implicit_sequence_conversion = False
            response.direct_passthrough = True
        return response(environ, start_response)

    def _record(self, request: Request, environ: dict[str, Any]) -> RecordedRequest:
        raw_target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path
        url = f"http://{request.host}{raw_target}"
        query = {k: request.args.getlist(k) for k in request.args}
        form = {k: request.form.getlist(k) for k in request.form}
        headers = dict(request.headers.items())
        v2, v3, error = self._verify(request.method, url, form, headers)
        recorded = RecordedRequest(request.method, request.path, url, query, form, headers,
                                   time.monotonic(), v2, v3, error,
                                   int(environ.get("REMOTE_PORT") or 0))
        with self._lock:
            self._requests.append(recorded)
            self._lock.notify_all()
        return recorded

    def _verify(self, method: str, url: str, form: dict[str, list[str]],
                headers: dict[str, str]) -> tuple[bool | None, bool | None, str | None]:
        """Check both signatures the way a Plivo app does, with the plivo SDK. A validator that
        raises counts as a rejection, and its error is kept."""
        v2 = v3 = None
        error = None
        signature = headers.get("X-Plivo-Signature-V2")
        nonce = headers.get("X-Plivo-Signature-V2-Nonce")
        if signature is not None and nonce is not None:
            try:
                v2 = bool(validate_signature(url, nonce, signature, self.auth_token))
            except Exception as exc:
                v2, error = False, f"V2 validator raised {exc!r}"
        signature = headers.get("X-Plivo-Signature-V3")
        nonce = headers.get("X-Plivo-Signature-V3-Nonce")
        if signature is not None and nonce is not None:
            # GET: the SDK reads the params from the URL's query itself.
            params: dict[str, Any] = {} if method == "GET" else {
                k: v[0] if len(v) == 1 else list(v) for k, v in form.items()}
            try:
                v3 = bool(validate_v3_signature(method, url, nonce, self.auth_token, signature,
                                                params))
            except Exception as exc:
                v3, error = False, f"V3 validator raised {exc!r}"
        return v2, v3, error

    def _hang(self) -> Reply:
        with self._lock:
            released = self._release
        if not self._stopping.is_set():
            released.wait()
        return Reply()

    def _filler(self, path: str, size: int, pace: float) -> Iterator[bytes]:
        chunk = b"<!-- " + b"x" * (64 * 1024 - 9) + b" -->"
        try:
            while self.huge_sent[path] < size:
                piece = chunk[: size - self.huge_sent[path]]
                yield piece  # resumes only once the server has written the piece
                self.huge_sent[path] += len(piece)
                if pace and self._stopping.wait(pace):
                    return
            self.huge_completed[path] = True
        finally:
            self.huge_done[path].set()
