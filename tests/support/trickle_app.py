"""A customer app that misbehaves at the byte level, on a raw loopback socket, for fault tests.

Every connection's request is read in full (headers, then Content-Length bytes of body); then the
app answers the way its `behaviour` says, a byte every `interval` seconds where it trickles, and
never closes the connection itself (it lingers until the client goes or the app stops). With
`first_fine`, the app's first request is answered properly on a kept-alive connection, and the
misbehaviour starts with the next one:

- `slow-status`:  the status line `HTTP/1.1 200 OK` a byte at a time;
- `slow-headers`: the status line at once, then the headers a byte at a time;
- `slow-body`:    status and headers at once (Content-Length announced), the body a byte at a time;
- `no-end`:       status and headers without Content-Length, a few body bytes, then nothing;
- `silent`:       nothing at all.

A per-read timeout never trips on any of these (a byte always arrives before it would): only a
deadline over the whole exchange ends them.

    with TrickleApp("slow-headers", interval=0.3) as app:
        url = app.url("/answer")
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

BEHAVIOURS = ("slow-status", "slow-headers", "slow-body", "no-end", "silent")
DOCUMENT = b"<Response><Speak>Hello from the trickle app</Speak></Response>"


class TrickleApp:
    def __init__(self, behaviour: str, *, interval: float = 0.3, first_fine: bool = False):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}")
        self.behaviour = behaviour
        self.interval = interval
        self.first_fine = first_fine
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._listener.getsockname()[1]
        self._stopped = threading.Event()
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.requests = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> TrickleApp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                self._read_request(conn)
                with self._lock:
                    self.requests += 1
                    fine = self.first_fine and self.requests == 1
                if not fine:
                    break
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(DOCUMENT), DOCUMENT))
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                    + (b"" if self.behaviour == "no-end"
                       else b"Content-Length: %d\r\n" % len(DOCUMENT)) + b"\r\n")
            status, headers = head.split(b"\r\n", 1)
            if self.behaviour == "slow-status":
                self._trickle(conn, head)
            elif self.behaviour == "slow-headers":
                conn.sendall(status + b"\r\n")
                self._trickle(conn, headers)
            elif self.behaviour == "slow-body":
                conn.sendall(head)
                self._trickle(conn, DOCUMENT)
            elif self.behaviour == "no-end":
                conn.sendall(head + DOCUMENT[:10])
            self._stopped.wait()  # linger: never close first
        except OSError:
            pass  # the client gave up: that is the point
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _read_request(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("client went away")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                raise OSError("client went away")
            body += chunk

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for index in range(len(data)):
            if self._stopped.is_set():
                return
            conn.sendall(data[index:index + 1])
            time.sleep(self.interval)
