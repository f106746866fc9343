"""A stand-in gateway for the simulator's tests: real HTTP and WebSocket servers on loopback.

`FakeGateway` serves canned TwiML (or anything else) per path from a Flask app under werkzeug,
records every request it receives, and checks each X-Twilio-Signature with twilio's
RequestValidator. `StreamServer` is a WebSocket server that records the messages of each
connection. `simulate(gateway, scenario_dict, ...)` runs one scenario and returns its transcript.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from websockets.sync.server import ServerConnection, serve
from werkzeug.serving import make_server

from gateway.sim import Simulator, Transcript, scenario_from_dict
from gateway.sim.rest import APP_CONSTRUCTION, QuietRequestHandler

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "sim-test-token-not-secret"
NUMBER = "+14155550100"


@dataclass
class Received:
    path: str
    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    signature_ok: bool
    at: float = field(default_factory=time.monotonic)


Handler = str | tuple[Any, ...] | Callable[[Received], Any]


class FakeGateway:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._validator = RequestValidator(AUTH_TOKEN)
        with APP_CONSTRUCTION:
            app = self._create_app()
        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=QuietRequestHandler)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def _create_app(self) -> Flask:
        app = Flask("fake-gateway")

        @app.route("/<path:path>", methods=["GET", "POST"])
        def anything(path: str) -> Response:
            params = (request.form if request.method == "POST" else request.args).to_dict()
            signature = request.headers.get("X-Twilio-Signature", "")
            # The URL exactly as requested: werkzeug's request.url re-decodes parts of the
            # query (%7B -> {), which would break the signature of a GET.
            url = request.host_url.rstrip("/") + request.environ.get("RAW_URI", request.path)
            received = Received(
                "/" + path, request.method, url, params, dict(request.headers),
                self._validator.validate(url,
                                         request.form if request.method == "POST" else {},
                                         signature))
            with self._lock:
                self.received.append(received)
            handler = self.routes.get("/" + path, "")
            if callable(handler):
                handler = handler(received)
            if isinstance(handler, Response):
                return handler  # a test that needs its own headers builds the whole answer
            if isinstance(handler, tuple):
                body, status, content_type = handler
                return Response(body, status=status, content_type=content_type)
            return Response(handler, content_type="text/xml")

        return app

    def url(self, path: str) -> str:
        return self.base + path

    def twiml(self, path: str, body: str) -> None:
        self.routes[path] = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class StreamServer:
    """WebSocket server; each connection's JSON messages land in `connections[i]`."""

    def __init__(self, close_after: int | None = None):
        self.connections: list[list[dict[str, Any]]] = []
        self.handshake_headers: list[Any] = []  # websockets Headers: case-insensitive
        self.close_after = close_after
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/media") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _handle(self, connection: ServerConnection) -> None:
        messages: list[dict[str, Any]] = []
        self.connections.append(messages)
        assert connection.request is not None
        self.handshake_headers.append(connection.request.headers)
        for raw in connection:
            messages.append(json.loads(raw))
            if self.close_after is not None and len(messages) >= self.close_after:
                connection.close()
                return

    def close(self) -> None:
        self._server.shutdown()


def call(name: str, **fields: Any) -> dict[str, Any]:
    """A scenario [[call]] table with defaults."""
    return {"name": name, "from": fields.pop("from_", "+14155550101"), "to": NUMBER, **fields}


def simulate(gateway: FakeGateway, calls: list[dict[str, Any]], *, duration: float = 5.0,
             twilio: dict[str, Any] | None = None, callees: list[dict[str, Any]] | None = None,
             before: Callable[[Simulator], None] | None = None, **options: Any) -> Transcript:
    data: dict[str, Any] = {"duration": duration, "call": calls}
    if twilio:
        data["twilio"] = twilio
    if callees:
        data["callee"] = callees
    options.setdefault("webhook_timeout", 3.0)
    options.setdefault("play_seconds", 0.2)
    with Simulator(gateway.base, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                   **options) as sim:
        if before is not None:
            before(sim)
        transcript = sim.run(scenario_from_dict(data))
    # Every request of every test must verify as Twilio's would.
    unsigned = [f"{r.method} {r.url}" for r in gateway.received if not r.signature_ok]
    assert not unsigned, f"X-Twilio-Signature does not verify for {unsigned}"
    return transcript


def sent(transcript: Transcript, kind: str, **match: Any) -> list[dict[str, Any]]:
    return transcript.events(type="sent", kind=kind, **match)
