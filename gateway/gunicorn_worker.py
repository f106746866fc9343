"""The web workers' class: gunicorn's gevent worker, except that a stopping worker lets its idle
kept-alive connections go at once.

gunicorn's gevent worker, told to stop, waits until no connection is open or its graceful timeout
(10 s here) has passed. Twilio, load balancers and HTTP clients keep connections open between
requests (`--keep-alive 75`), so every restart or deploy waited the whole 10 s for connections
that carried no request. Here the connections waiting for their next request are shut down when
the stop signal arrives (their reads end as at a client's close); requests in flight still run
to their end, and their connections close after the response (gunicorn closes only those that
began after the stop).
"""

from __future__ import annotations

import contextlib
import socket

from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker


class GeventWorker(_GunicornGeventWorker):
    def init_process(self) -> None:
        self._idle: set = set()  # client sockets waiting for a request (first, or next)
        super().init_process()

    def handle(self, listener, client, addr) -> None:
        self._idle.add(client)
        try:
            super().handle(listener, client, addr)
        finally:
            self._idle.discard(client)

    def handle_request(self, listener_name, req, sock, addr):
        self._idle.discard(sock)
        try:
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
