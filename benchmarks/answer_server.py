"""A customer app that keeps connections alive: fixed answers over HTTP/1.1, on loopback.

The tests' `CustomerApp` (werkzeug's development server) closes every connection after one
response, so each request to it pays a TCP connect and a new server thread. A production app
(gunicorn, nginx) keeps connections alive, and so does the gateway's AppClient; this server lets
the voice benchmark measure that case too. It answers every POST or GET to a routed path with
the configured body (or, for a path given several, each in turn; a body may also be a function
of the request's form, for an app whose answer depends on the caller) and counts requests per
path and connections accepted; nothing else.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

Body = str | Callable[[dict[str, str]], str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client asks otherwise
    # Headers and body go out in two writes; with Nagle on, the body would wait for the
    # client's delayed ACK (40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True
    server: AnswerServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def do_GET(self) -> None:
        self._answer(self.path.partition("?")[2].encode())

    def _answer(self, form: bytes) -> None:
        path = self.path.split("?", 1)[0]
        bodies = self.server.routes.get(path)
        with self.server.lock:
            self.server.counts[path] += 1
            turn = self.server.counts[path]
        body = bodies[turn % len(bodies)] if bodies else None
        if callable(body):
            body = body(dict(parse_qsl(form.decode("utf-8", "replace")))).encode("utf-8")
        status = 200 if body is not None else 404
        payload = body if body is not None else b"not found"
        self.send_response(status)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


class AnswerServer(ThreadingHTTPServer):
    """`with AnswerServer() as app: app.route("/answer", xml); app.url("/answer")`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, list[bytes | Callable[[dict[str, str]], str]]] = {}
        self.counts: Counter[str] = Counter()
        self.connections = 0  # TCP connections accepted: how well clients keep them alive
        self.lock = threading.Lock()
        self.port = self.server_address[1]
        self._thread: threading.Thread | None = None

    def route(self, path: str, *bodies: Body) -> None:
        """Answer `path` with the bodies in turn (one body: always that one); a callable body is
        called with the request's form (or query) and answers what it returns."""
        self.routes[path] = [body if callable(body) else body.encode("utf-8") for body in bodies]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()
            self.connections = 0

    def __enter__(self) -> AnswerServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"answer-server:{self.port}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)
