"""A small WebSocket app speaking Plivo's stream protocol (the far end of a Plivo `<Stream>`).

What a Plivo customer's stream server does, for tests of the gateway's relay: it takes Plivo's
`start`, `media`, `dtmf`, `playedStream` and `clearedAudio` messages
(plivo.com/docs/voice/audio-streaming "Stream Event Protocol") and, in `echo` mode, sends each
frame of caller audio back as `playAudio` in the stream's own format, with a `checkpoint` after
every `checkpoint_every` frames. Optional behaviour: `clear_after` frames, send `clearAudio`;
`close_after` frames, close the socket (1000, the normal end of a bidirectional stream);
`drop_after` frames, drop it (1011); `refuse=True`, answer the handshake with 403.

    with PlivoStreamApp(close_after=100) as app:
        ... <Stream bidirectional="true">{app.url}</Stream> ...
        app.messages  # every message received, in order
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import threading

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response


class PlivoStreamApp:
    def __init__(self, *, echo: bool = True, checkpoint_every: int = 25,
                 clear_after: int | None = None, close_after: int | None = None,
                 drop_after: int | None = None, refuse: bool = False, host: str = "127.0.0.1"):
        self.echo = echo
        self.checkpoint_every = checkpoint_every
        self.clear_after = clear_after
        self.close_after = close_after
        self.drop_after = drop_after
        self.refuse = refuse
        self.host = host
        self.port = 0
        self.messages: list[dict] = []
        self.handshakes: list[dict[str, str]] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="plivo-stream-app")

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/stream"

    def events(self, name: str | None = None) -> list[dict]:
        with self._lock:
            return [m for m in self.messages if name is None or m.get("event") == name]

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> PlivoStreamApp:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Plivo stream app did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def __enter__(self) -> PlivoStreamApp:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, self.host, 0, process_request=self._handshake,
                         compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.handshakes.append(dict(request.headers.raw_items()))
        if self.refuse:
            self.refused += 1
            return connection.respond(http.HTTPStatus.FORBIDDEN, "no streams here\n")
        return None

    # -- one stream ---------------------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        frames = 0
        stream_id = ""
        media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000}
        with contextlib.suppress(Exception):
            async for raw in connection:
                message = json.loads(raw)
                with self._lock:
                    self.messages.append(message)
                event = message.get("event")
                if event == "start":
                    stream_id = message["start"]["streamId"]
                    media_format = message["start"]["mediaFormat"]
                elif event == "media" and message["media"].get("track") == "inbound":
                    frames += 1
                    await self._answer(connection, frames, stream_id, media_format,
                                       message["media"]["payload"])
                    if self.drop_after is not None and frames >= self.drop_after:
                        await connection.close(1011, "the app fell over")
                        return
                    if self.close_after is not None and frames >= self.close_after:
                        await connection.close(1000, "done")
                        return

    async def _answer(self, connection: ServerConnection, frames: int, stream_id: str,
                      media_format: dict, payload: str) -> None:
        if self.echo:
            await connection.send(json.dumps({
                "event": "playAudio",
                "media": {"contentType": media_format["encoding"],
                          "sampleRate": media_format["sampleRate"], "payload": payload}}))
            if frames % self.checkpoint_every == 0:
                await connection.send(json.dumps({"event": "checkpoint", "streamId": stream_id,
                                                  "name": f"echo-{frames}"}))
        if self.clear_after is not None and frames == self.clear_after:
            await connection.send(json.dumps({"event": "clearAudio", "streamId": stream_id}))
