"""Under gevent (gunicorn's gevent workers), AppClient keeps reusing a kept-alive connection to
the app while it is fit, and opens a new one once the app has closed it: the check before reuse
peeks at the socket instead of polling it (gevent's poll emulation cost ~10 µs per fetch).

Monkey-patching is for the whole process, so the client runs in a child process; the app is a
loopback HTTP/1.1 server in this one that counts its connections and can close them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, sys
    from gateway.app_side import AppClient
    url = sys.argv[1]
    answers = []
    with AppClient() as client:
        for _ in range(3):
            answers.append(client.request(url, "POST", {"CallUUID": "u"}, auth_token="t",
                                          allowed_hosts=["127.0.0.1"]).text)
        print("asked", flush=True)
        sys.stdin.readline()  # the app has closed the idle connection meanwhile
        answers.append(client.request(url, "POST", {"CallUUID": "u"}, auth_token="t",
                                      allowed_hosts=["127.0.0.1"]).text)
    print(json.dumps(answers), flush=True)
""")

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 11\r\n\r\n"
          b"<Response/>")


class KeepAliveApp:
    """Answers every request on a connection and keeps it open until told to close them all."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            while b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                if len(rest) < length:
                    break
                data = rest[length:]
                conn.sendall(ANSWER)

    def close_connections(self) -> None:
        for conn in self.connections:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self.listener.close()


def test_kept_alive_connection_is_reused_until_the_app_closes_it():
    app = KeepAliveApp()
    child = subprocess.Popen([sys.executable, "-c", CHILD, f"http://127.0.0.1:{app.port}/a"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "asked"
        assert len(app.connections) == 1  # three requests, one connection
        app.close_connections()
        child.stdin.write("go\n")
        child.stdin.flush()
        answers = json.loads(child.stdout.readline())
        assert answers == ["<Response/>"] * 4  # the closed one was not used: no failure
        assert len(app.connections) == 2
    finally:
        child.kill()
        child.wait(10)
        app.close()
