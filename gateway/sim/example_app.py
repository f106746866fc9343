"""The example Plivo app that `gateway demo` runs: the seed's seven `<Conference>` examples and
the IVR story (a menu in front of a room, voicemail after it) served on loopback HTTP exactly as
a customer's app would serve them to Plivo.

One base URL replaces the documentation's www.foo.com placeholder, so every URL the examples
name lands here:

    /answer/<n>/<role>   example n's document for that role (a mapping's answer_url)
    /waitmusic/          the waitSound document: hold music, then a spoken reassurance
    /nextstep/           example 6's <Redirect> target
    /confevents/         example 7's callbackUrl (ConferenceAction=enter/exit/digits...)
    /ivr/choice/         the IVR menu's action: Digits=1 joins the team room, 2 leaves a message
    /ivr/recorded/       the voicemail's Record action (thanks the caller)
    /ivr/transcription/  the voicemail's transcriptionUrl
    /hangup/             every mapping's hangup_url
    /audio/hold-music.wav  the music the waitSound document plays

Every request is recorded with its arrival time and the verdict on its Plivo signatures (V2 and
V3, computed as the plivo SDK's validators compute them). A request whose signatures do not
verify is refused with 403, as an app that validates would refuse it: the demo then fails
visibly instead of pretending.
"""

from __future__ import annotations

import hmac
import io
import math
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from ..app_side.signing import (
    HEADER_V2,
    HEADER_V2_NONCE,
    HEADER_V3,
    HEADER_V3_NONCE,
    plivo_signature_v2,
    plivo_signature_v3,
)
from ..examples import FOO, SEED_EXAMPLES, SeedExample

XML = "text/xml; charset=utf-8"
HOLD_MUSIC_PATH = "/audio/hold-music.wav"
WAIT_MESSAGE = "Thanks for waiting."
NEXT_STEP_MESSAGE = "You left the conference. This is the next step. Goodbye."

# The IVR story: the normal shape of a Plivo app, a menu in front of a room and voicemail.
IVR_MENU = "Welcome to Example Corp. Press 1 to join the team room, or 2 to leave a message."
IVR_NO_CHOICE = "We did not get your choice. Goodbye."
IVR_JOINING = "Joining the team room."
IVR_ROOM = "Team Room"
IVR_VOICEMAIL = "Please leave a message after the beep, then press the hash key."
IVR_THANKS = "Thank you, your message was recorded. Goodbye."
IVR_STORY = SeedExample(8, "An IVR in front of a room, voicemail after it", (
    ("caller", '<Response>\n<GetDigits action="http://www.foo.com/ivr/choice/" numDigits="1" '
               'timeout="5" retries="2" validDigits="12">\n'
               f"<Speak>{IVR_MENU}</Speak>\n</GetDigits>\n<Speak>{IVR_NO_CHOICE}</Speak>\n"
               "</Response>"),
))
# What the menu's action answers, by the key pressed (www.foo.com: this app).
IVR_CHOICES: dict[str, str] = {
    "1": f"<Response><Speak>{IVR_JOINING}</Speak><Conference>{IVR_ROOM}</Conference></Response>",
    "2": (f"<Response><Speak>{IVR_VOICEMAIL}</Speak><Record "
          'action="http://www.foo.com/ivr/recorded/" maxLength="20" finishOnKey="#" '
          'playBeep="true" transcriptionType="auto" '
          'transcriptionUrl="http://www.foo.com/ivr/transcription/"/></Response>'),
}
IVR_RECORDED = f"<Response><Speak>{IVR_THANKS}</Speak></Response>"


@dataclass(frozen=True)
class AppRequest:
    """One request as the app received it. `params` is what a Plivo app reads (the query for
    GET, the form for POST; the last value of a repeated key)."""

    received_at: float  # time.monotonic()
    method: str
    path: str
    params: dict[str, str]
    signature_ok: bool
    signature_problem: str = ""


def answer_path(example: int, role: str) -> str:
    return f"/answer/{example}/{role}"


def hold_music_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A soft two-note chime, 8 kHz mono 16-bit: something real to serve as the hold music."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        note = 440.0 if i < rate * seconds / 2 else 554.37
        envelope = math.sin(math.pi * (i % (rate * seconds / 2)) / (rate * seconds / 2))
        frames += struct.pack("<h", int(6000 * envelope * math.sin(2 * math.pi * note * i / rate)))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the demo tells its own story; access lines would drown it


class ExampleApp:
    """A threaded werkzeug server on 127.0.0.1 (ephemeral port) serving the seed's examples."""

    def __init__(self, auth_token: str, *, examples: Iterable[SeedExample] = SEED_EXAMPLES):
        self.auth_token = auth_token
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.examples = {e.number: e.with_base_url(self.base_url)
                         for e in (*examples, IVR_STORY)}
        self._documents = {answer_path(e.number, role): xml
                           for e in self.examples.values() for role, xml in e.documents}
        self._music = hold_music_wav()
        self._requests: list[AppRequest] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    # --- life cycle -----------------------------------------------------------------------------
    def start(self) -> ExampleApp:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name="example-plivo-app", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ExampleApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str) -> str:
        return self.base_url + path

    def local(self, xml: str) -> str:
        """A document with the documentation's www.foo.com pointing at this app."""
        return xml.replace(FOO, self.base_url)

    # --- what was received ----------------------------------------------------------------------
    @property
    def requests(self) -> list[AppRequest]:
        with self._changed:
            return list(self._requests)

    def wait_for(self, predicate: Callable[[list[AppRequest]], bool], timeout: float) -> bool:
        """Wait (bounded) until `predicate(requests)` holds; False if it never did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._requests)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.2))
        return True

    # --- the app --------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        recorded = self._record(request, environ)
        if not recorded.signature_ok:
            response = Response(f"signature rejected: {recorded.signature_problem}\n",
                                status=403, content_type="text/plain")
        else:
            response = self._answer(request.path, recorded.params)
        return response(environ, start_response)

    def _answer(self, path: str, params: dict[str, str]) -> Response:
        if path in self._documents:
            return Response(self._documents[path], content_type=XML)
        if path == "/ivr/choice/":
            choice = IVR_CHOICES.get(params.get("Digits", ""),
                                     f"<Response><Speak>{IVR_NO_CHOICE}</Speak></Response>")
            return Response(self.local(choice), content_type=XML)
        if path == "/ivr/recorded/":
            return Response(IVR_RECORDED, content_type=XML)
        if path == "/waitmusic/":
            return Response(f"<Response><Play>{self.url(HOLD_MUSIC_PATH)}</Play>"
                            f"<Speak>{WAIT_MESSAGE}</Speak></Response>", content_type=XML)
        if path == "/nextstep/":
            return Response(f"<Response><Speak>{NEXT_STEP_MESSAGE}</Speak></Response>",
                            content_type=XML)
        if path in ("/confevents/", "/hangup/", "/ivr/transcription/"):
            return Response("", status=200, content_type="text/plain")
        if path == HOLD_MUSIC_PATH:
            return Response(self._music, content_type="audio/wav")
        return Response("not found\n", status=404, content_type="text/plain")

    def _record(self, request: Request, environ: dict[str, Any]) -> AppRequest:
        # The URL exactly as requested: the signatures cover it byte for byte.
        target = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path
        url = f"http://{request.host}{target}"
        form = {k: request.form.getlist(k) for k in request.form}
        ok, problem = self._verify(request, url, form)
        source = request.args if request.method == "GET" else request.form
        params = {k: source.getlist(k)[-1] for k in source}
        recorded = AppRequest(time.monotonic(), request.method, request.path, params, ok, problem)
        with self._changed:
            self._requests.append(recorded)
            self._changed.notify_all()
        return recorded

    def _verify(self, request: Request, url: str, form: dict[str, list[str]]
                ) -> tuple[bool, str]:
        headers = request.headers
        v2, v2_nonce = headers.get(HEADER_V2), headers.get(HEADER_V2_NONCE)
        v3, v3_nonce = headers.get(HEADER_V3), headers.get(HEADER_V3_NONCE)
        if not (v2 and v2_nonce and v3 and v3_nonce):
            return False, "X-Plivo-Signature-V2/V3 headers missing"
        if not hmac.compare_digest(v2, plivo_signature_v2(url, v2_nonce, self.auth_token)):
            return False, "X-Plivo-Signature-V2 does not match"
        # GET: the SDK reads the params from the URL's query itself.
        params: dict[str, str | list[str]] = {} if request.method == "GET" else {
            k: v[0] if len(v) == 1 else v for k, v in form.items()}
        expected = plivo_signature_v3(request.method, url, params, v3_nonce, self.auth_token)
        # Plivo may send several comma-separated V3 signatures (one per token in use).
        if not any(hmac.compare_digest(s.strip(), expected) for s in v3.split(",")):
            return False, "X-Plivo-Signature-V3 does not match"
        return True, ""
