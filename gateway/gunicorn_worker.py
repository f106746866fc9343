"""The web workers' class: gunicorn's gevent worker, except that a stopping worker lets its idle
kept-alive connections go at once.

gunicorn's gevent worker, told to stop, waits until no connection is open or its graceful timeout
(10 s here) has passed. Twilio, load balancers and HTTP clients keep connections open between
requests (`--keep-alive 75`), so every restart or deploy waited the whole 10 s for connections
that carried no request. Here the connections waiting for their next request are shut down when
the stop signal arrives (their reads end as at a client's close); requests in flight still run
to their end, and their connections close after the response (gunicorn closes only those that
began after the stop).

It also answers, itself, the requests its app marks as answerable before WSGI
(`app.extensions[EARLY]`: speaker events that need no work, see
`twilio_side.speaker_events.EarlyAnswers`). Twilio sends one per talk spurt of every participant,
and gunicorn's WSGI machinery (the environ, the response object, its headers, the access-log
call) cost them more than the gateway's own decision. gunicorn still parses the request and
keeps the connection; the app reads the body within its limits and judges the event; the worker
writes a 204 as gunicorn would (Server, Date, Connection), or hands the request, with the body
as read, to gunicorn's usual path (`req.body`), where a refusal judged while reading is answered
and logged as before. Only plain HTTP/1.1 POSTs with one Content-Length, one Content-Type and at
most one X-Twilio-Signature are looked at; anything else goes the usual path untouched. Like
the access log, gunicorn's `pre_request` and `post_request` hooks (the gateway sets none) are
not called for the requests answered early.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

from gunicorn import SERVER
from gunicorn.util import http_date
from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker

log = logging.getLogger("gateway.twilio")

EARLY = "gateway.early"  # app.extensions key: requests the worker answers before WSGI
_WANTED = {"CONTENT-LENGTH": "CONTENT_LENGTH", "CONTENT-TYPE": "CONTENT_TYPE",
           "X-TWILIO-SIGNATURE": "HTTP_X_TWILIO_SIGNATURE"}
_NOT_PLAIN = frozenset({"TRANSFER-ENCODING", "EXPECT"})  # chunked, or 100-continue: gunicorn's


class GeventWorker(_GunicornGeventWorker):
    def init_process(self) -> None:
        self._idle: set = set()  # client sockets waiting for a request (first, or next)
        self._early = None
        self._date = (0, b"")  # (second, Date header): formatted once a second, not per answer
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self._early = getattr(self.wsgi, "extensions", {}).get(EARLY)

    def handle(self, listener, client, addr) -> None:
        self._idle.add(client)
        try:
            super().handle(listener, client, addr)
        finally:
            self._idle.discard(client)

    def handle_request(self, listener_name, req, sock, addr):
        self._idle.discard(sock)
        try:
            if self._early is not None and self._answered_early(req, sock, addr):
                return True
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            if self.alive:  # back to waiting for the next request
                self._idle.add(sock)
            else:  # the stop came during this request: the response is out, let it go
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        for sock in list(self._idle):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _answered_early(self, req, sock, addr) -> bool:
        """Answered here (see the module doc); False: gunicorn's usual path answers `req`."""
        early = self._early
        if (req.method != "POST" or req.path != early.path or req.query
                or req.version != (1, 1) or not self.alive):
            return False
        environ = plain_post_environ(req.headers)
        if environ is None:
            return False
        environ.update({"REQUEST_METHOD": "POST", "PATH_INFO": req.path, "QUERY_STRING": "",
                        "REMOTE_ADDR": addr[0] if isinstance(addr, tuple) else str(addr),
                        "wsgi.input": req.body, "gunicorn.socket": sock})
        try:
            answered = early.answers(environ)
        except Exception:  # a bug: the usual path answers (and the app logs what it finds)
            log.exception("answering %s before WSGI failed", req.path)
            answered = False
        req.body = environ["wsgi.input"]  # the body as read, for the usual path
        if not answered:
            return False
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        close = req.should_close() or not self.alive or not self.cfg.keepalive  # as gunicorn
        sock.sendall(b"HTTP/1.1 204 No Content\r\nServer: %s\r\nDate: %s\r\nConnection: %s\r\n\r\n"
                     % (SERVER.encode(), self._http_date(), b"close" if close else b"keep-alive"))
        if close:
            raise StopIteration()  # as gunicorn's handle_request ends a connection
        return True

    def _http_date(self) -> bytes:
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, http_date(second).encode("latin-1"))
        return self._date[1]


def plain_post_environ(headers: list[tuple[str, str]]) -> dict[str, str] | None:
    """The WSGI environ entries of the headers an early answer reads; None unless the request
    has one Content-Length, one Content-Type, at most one X-Twilio-Signature, and no other
    framing (gunicorn has checked the length is a number)."""
    environ: dict[str, str] = {}
    for name, value in headers:
        key = _WANTED.get(name)
        if key is not None:
            if key in environ:
                return None
            environ[key] = value
        elif name in _NOT_PLAIN:
            return None
    if "CONTENT_LENGTH" not in environ or "CONTENT_TYPE" not in environ:
        return None
    return environ
