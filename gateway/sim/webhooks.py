"""Requests from "Twilio" to the gateway: signed, bounded in time, run on a bounded worker pool.

Every request carries `X-Twilio-Signature` computed with twilio's own
`RequestValidator(auth_token).compute_signature(url, params)` over the exact URL requested (for
GET, the parameters are in that URL's query and the signed parameter set is empty), as
https://www.twilio.com/docs/usage/webhooks/webhooks-security describes. A request either returns a
`Reply` or raises `FetchError` with the Twilio error code that applies: connection refused 11202,
other connection failures and timeouts 11205 (Twilio waits 15 s in all, error 11205's page),
non-2xx 11200, a body over 64 kB 11750.

`Deliveries` sends callbacks Twilio does not wait on (call status, conference events, recording
and stream status). Callbacks sharing a key (a conference, a call) go out one at a time in order,
unless the scenario asks for Twilio's documented faults: duplicates and reordering.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.request_validator import RequestValidator

from .errors import FetchError
from .transcript import CALL_FAILED_HEADER, Transcript

MAX_BODY = 64 * 1024  # Twilio's limit on a TwiML response body (error 11750)
TWIML_TYPES = ("text/xml", "application/xml", "text/html")
AUDIO_TYPES = ("audio/mpeg", "audio/mp3", "audio/wav", "audio/wave", "audio/x-wav",
               "audio/aiff", "audio/x-aiff", "audio/x-aifc", "audio/gsm", "audio/x-gsm",
               "audio/ulaw")


@dataclass(frozen=True)
class Request:
    """One webhook: where, how, what; `kind` and `call` label it in the transcript."""

    url: str
    method: str
    params: dict[str, str]
    kind: str
    call: str | None = None
    extra: dict[str, object] = field(default_factory=dict)  # more transcript fields
    # I-Twilio-Idempotency-Token: the same on every delivery of one callback, retries included
    token: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    url: str
    # Set when the server marked its answer as a failed call's apology (see transcript.py).
    call_failed: str | None = None

    @property
    def is_twiml(self) -> bool:
        return self.content_type in TWIML_TYPES

    @property
    def is_audio(self) -> bool:
        return self.content_type in AUDIO_TYPES


def strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class Webhooks:
    """Signs and sends requests; `send` blocks (call it from a worker), `submit` does not."""

    def __init__(self, auth_token: str, transcript: Transcript, *, timeout: float = 15.0,
                 workers: int = 32):
        self._validator = RequestValidator(auth_token)
        self.transcript = transcript
        self.timeout = timeout
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-webhook")
        self._local = threading.local()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # loopback only: never a proxy from the environment
            self._local.session = session
        return session

    def signed(self, request: Request) -> tuple[str, dict[str, str], dict[str, str] | None]:
        """(url, headers, form body) exactly as sent; GET puts the parameters in the query."""
        url = strip_fragment(request.url)
        if request.method == "GET":
            url = with_query(url, request.params)
            signature = self._validator.compute_signature(url, {})
            body = None
        else:
            signature = self._validator.compute_signature(url, request.params)
            body = request.params
        headers = {
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": request.token,
            "Accept": "*/*",
        }
        return url, headers, body

    def sign_url(self, url: str) -> str:
        """The signature Twilio puts on a WebSocket handshake (URL only, no parameters)."""
        return self._validator.compute_signature(url, {})

    def send(self, request: Request) -> Reply:
        """Send one request and wait for the answer (at most `timeout` seconds in all)."""
        url, headers, body = self.signed(request)
        self.transcript.record("sent", kind=request.kind, call=request.call,
                               method=request.method, url=url, params=request.params,
                               **request.extra)
        deadline = time.monotonic() + self.timeout
        try:
            response = self._open(request, url, headers, body)
            chunks, size = [], 0
            with response:
                for chunk in response.iter_content(8192):
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise FetchError(11750, f"response body over {MAX_BODY} bytes",
                                         response.status_code)
                    if time.monotonic() > deadline:
                        raise FetchError(11205, f"no complete response within {self.timeout:g} s")
                    chunks.append(chunk)
        except requests.exceptions.Timeout:
            raise self._failed(request, FetchError(
                11205, f"no response within {self.timeout:g} s")) from None
        except requests.exceptions.ConnectionError as exc:
            refused = "refused" in str(exc).lower()
            raise self._failed(request, FetchError(
                11202 if refused else 11205,
                "connection refused" if refused else f"connection failed: {exc}")) from None
        except requests.exceptions.RequestException as exc:
            raise self._failed(request, FetchError(11205, f"request failed: {exc}")) from None
        except FetchError as exc:
            raise self._failed(request, exc) from None
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        reply = Reply(response.status_code, content_type, b"".join(chunks), response.url,
                      response.headers.get(CALL_FAILED_HEADER))
        self.transcript.record("received", kind=request.kind, call=request.call, url=url,
                               status=reply.status, content_type=content_type,
                               body=reply.body[:4000].decode("utf-8", "replace"))
        if not 200 <= reply.status < 300:
            raise FetchError(11200, f"HTTP {reply.status} from {url}", reply.status)
        return reply

    def _open(self, request: Request, url: str, headers: dict, body) -> requests.Response:
        """Open the request; once more on a fresh connection if a kept-alive one was closed by
        the server just as it was reused (no response began: an HTTP client reconnects, and the
        idempotency token tells the server it is the same request)."""
        for attempt in (1, 2):
            try:
                return self._session().request(
                    request.method, url, data=body, headers=headers, stream=True,
                    allow_redirects=True, timeout=(min(5.0, self.timeout), self.timeout))
            except requests.exceptions.ConnectionError as exc:
                if attempt == 2 or "aborted" not in str(exc).lower():
                    raise
        raise AssertionError("unreachable")

    def _failed(self, request: Request, error: FetchError) -> FetchError:
        self.transcript.record("received", kind=request.kind, call=request.call,
                               url=strip_fragment(request.url), status=error.status,
                               failure=error.reason)
        return error

    def submit(self, request: Request, done: Callable[[Reply | FetchError], None]) -> None:
        """Send on a worker; `done` gets the Reply or the FetchError (on the worker thread)."""
        def work() -> None:
            try:
                outcome: Reply | FetchError = self.send(request)
            except FetchError as exc:
                outcome = exc
            done(outcome)
        self.pool.submit(work)


class Deliveries:
    """Fire-and-forget callbacks, in order per key, with optional duplicate/reorder faults."""

    REORDER_WINDOW = 3
    REORDER_HOLD = 0.15  # seconds an idle key waits so that there is something to reorder

    def __init__(self, webhooks: Webhooks, *,
                 on_failure: Callable[[Request, FetchError], None]):
        self._webhooks = webhooks
        self._on_failure = on_failure
        self._lock = threading.Condition()
        self._queues: dict[str, deque[Request]] = {}
        self._busy: set[str] = set()
        self._pending = 0
        self.duplicate_probability = 0.0
        self.reorder = False
        self._random = random.Random()

    def configure(self, duplicate_events: float, reorder_events: bool, seed: int | None) -> None:
        self.duplicate_probability = duplicate_events
        self.reorder = reorder_events
        self._random = random.Random(seed)

    def deliver(self, key: str, request: Request, *, faults: bool = False) -> None:
        copies = [request]
        with self._lock:
            if faults and self._random.random() < self.duplicate_probability:
                copies.append(replace(request, extra={**request.extra, "duplicate": True}))
            self._queues.setdefault(key, deque()).extend(copies)
            self._pending += len(copies)
            start = key not in self._busy
            if start:
                self._busy.add(key)
        if start:
            self._webhooks.pool.submit(self._drain, key, faults and self.reorder)

    def _drain(self, key: str, reorder: bool) -> None:
        if reorder:
            time.sleep(self.REORDER_HOLD)
        while True:
            with self._lock:
                waiting = self._queues.get(key)
                if not waiting:
                    self._busy.discard(key)
                    self._queues.pop(key, None)
                    self._lock.notify_all()
                    return
                index = 0
                if reorder and len(waiting) > 1:
                    index = self._random.randrange(min(len(waiting), self.REORDER_WINDOW))
                request = waiting[index]
                del waiting[index]
            try:
                self._webhooks.send(request)
            except FetchError as exc:
                self._on_failure(request, exc)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._lock.notify_all()

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every callback has been delivered (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True
