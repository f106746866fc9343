"""Request bodies read within a time limit and a size limit, before anything else looks at them.

Twilio's signature covers the form body, so the body must be read before the signature can be
checked, and until then the sender is anonymous. A client that announces `Content-Length: 60000`
and then sends a byte every two seconds would hold its worker (a thread, or a greenlet and its
place in the connection pool) for over a day. `BoundedBody` is the outermost WSGI layer: it
reads the whole body of every request that has one, and answers at once

- 413 when the body is (or is announced) larger than `max_bytes`: Twilio's webhooks are a few
  kilobytes (the parameters of one call or one event);
- 408 when it has not all arrived within `seconds` of the request's start: Twilio sends its few
  kilobytes with the headers, from a data centre, so 2 s is ample; and 13 s of budget + 2 s is
  Twilio's whole 15 s;
- 400 when the sender stops before the length it announced;

each with one log line and `Connection: close`, before any application code runs. What it read
is handed on in memory. The time limit is one deadline over all the reads (`gateway.deadlines`
shuts the socket's read side down when it passes), not a timeout per read, which a byte now and
then would reset.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Callable, Iterable

from ..deadlines import deadline, shutdown

log = logging.getLogger("gateway.twilio")

MAX_BODY_BYTES = 64 * 1024
BODY_SECONDS = 2.0
_CHUNK = 16 * 1024
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BoundedBody:
    """WSGI middleware: see the module doc."""

    def __init__(self, app: Callable, *, max_bytes: int = MAX_BODY_BYTES,
                 seconds: float = BODY_SECONDS):
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in _WITH_BODY:
            return self.app(environ, start_response)
        stream = environ.get("wsgi.input")
        if isinstance(stream, RefusedBody):  # judged before WSGI (`gunicorn_worker`)
            return self.refuse(environ, start_response, stream.status, stream.reason)
        body, problem = self.read_whole(environ)
        if problem:
            return self.refuse(environ, start_response, *problem)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # it is all here now, with a length
        environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)

    def read_whole(self, environ: dict) -> tuple[bytes, tuple[str, str] | None]:
        """(the whole body, None), or (what was read, (status, reason)) when it must be
        refused: too large (announced, or read), too slow, or stopped short. Reads
        `environ["wsgi.input"]` (and `environ["gunicorn.socket"]` for the deadline)."""
        announced = (environ.get("CONTENT_LENGTH") or "").strip()
        if announced.isdigit() and int(announced) > self.max_bytes:
            return b"", ("413 Content Too Large",
                         f"a body of {announced} bytes announced (limit {self.max_bytes})")
        # No length: chunked, or no body at all; either way read to the end, up to the limit.
        wanted = int(announced) if announced.isdigit() else self.max_bytes + 1
        body, problem = self.read(environ, wanted)
        if problem:
            return body, problem
        if len(body) > self.max_bytes:
            return body, ("413 Content Too Large", f"a body over {self.max_bytes} bytes (chunked)")
        if announced.isdigit() and len(body) < wanted:
            return body, ("400 Bad Request",
                          f"the body stopped after {len(body)} of {wanted} bytes")
        return body, None

    def read(self, environ: dict, wanted: int) -> tuple[bytes, tuple[str, str] | None]:
        """(what arrived, None) or (what arrived, (status, reason)) when the time ran out."""
        stream = environ["wsgi.input"]
        if isinstance(stream, io.BytesIO):  # read already, before WSGI: nothing to wait for
            return stream.read(wanted), None
        chunks: list[bytes] = []
        size = 0
        with deadline(time.monotonic() + self.seconds, how=socket.SHUT_RD) as exchange:
            sock = environ.get("gunicorn.socket")  # absent outside gunicorn (e.g. tests' client)
            if sock is not None:
                exchange.attach(sock)
            try:
                while size < wanted:
                    chunk = stream.read(min(_CHUNK, wanted - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
            except Exception as exc:  # gunicorn's NoMoreData, a reset, a bad chunk size ...
                if not exchange.expired:
                    return b"".join(chunks), ("400 Bad Request",
                                              f"the body could not be read ({type(exc).__name__})")
            if exchange.expired:
                return b"".join(chunks), ("408 Request Timeout",
                                          f"the body was not complete within {self.seconds:g} s "
                                          f"({size} bytes arrived)")
        return b"".join(chunks), None

    @staticmethod
    def refuse(environ: dict, start_response: Callable, status: str,
               reason: str) -> Iterable[bytes]:
        log.warning("refused %s %s from %s: %s", environ.get("REQUEST_METHOD"),
                    environ.get("PATH_INFO"), environ.get("REMOTE_ADDR"), reason)
        # gunicorn decides on keep-alive itself (it drops an app's Connection header) and would
        # read, or wait for, the rest of the refused body before the next request: with nothing
        # more to read, it closes the connection once the answer is out.
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            shutdown(sock, socket.SHUT_RD)
        text = f"{status.split(' ', 1)[1]}: {reason}.\n".encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(text))), ("Connection", "close")])
        return [text]


class RefusedBody(io.BytesIO):
    """A request's body that was read, and judged, before WSGI (`gunicorn_worker` reads the
    body of a request it may answer itself with `BoundedBody.read_whole`): handed on as the
    request's `wsgi.input`, so that `BoundedBody` answers the refusal as it would have, with its
    log line and gunicorn's access line, without reading again."""

    def __init__(self, read: bytes, status: str, reason: str):
        super().__init__(read)
        self.status = status
        self.reason = reason
