"""The I/O edge towards the customer's app: one signed request, as Plivo would make it.

`AppClient.request` does, in order:

1. splits Plivo's `#ct=&rt=&tt=&rc=&rp=` fragment off the URL (a bad fragment is logged and the
   defaults apply); the fragment is never sent;
2. clamps the policy to `deadline` (a time.monotonic() value), so a request Twilio waits on ends
   inside Twilio's webhook window;
3. builds the request as Plivo does: GET puts the params in the query (the URL's own query pairs
   kept unless a param replaces them), POST sends them as a form body (the URL's query kept);
4. refuses hosts the mapping does not allow (hosts.check_url), before anything is sent, and again
   at connect time for the socket's actual peer;
5. signs the exact URL sent with Plivo's V2 and V3 signatures (a fresh nonce per attempt): the
   URL as urllib3 puts it on the wire (host lower-cased, dot segments removed, characters that
   may not appear in a URL percent-encoded), never a form the app will not see;
6. retries per the policy's `rc`/`rp` (a plain loop: most requests succeed at once, and a retry
   library's bookkeeping cost more than the signatures), with a short backoff, never past the
   total timeout; every attempt gets min(ct, time left) to connect and min(rt, time left) per
   read;
7. reads the body as a stream and gives up as soon as it passes `max_bytes`;
8. holds each attempt to one deadline, the end of the total time (`gateway.deadlines`): connect,
   status line, headers and body together, so an app that trickles its answer a byte at a time,
   which no per-read timeout ever catches, is cut off when the time is up (kind "tt").

The request goes straight through a urllib3 pool manager (keep-alive, thread-safe): the form body,
query and headers are built here, so no cookie jar, proxy or .netrc setting ever applies, and the
per-request preparation a general-purpose HTTP library does is not paid on the voice path. A URL
with `user:password@` sends them as HTTP basic auth; they are not part of what is signed.

Redirects (3xx) are not followed: a 3xx is an error of kind "other" that names the Location, so a
request never lands somewhere the mapping did not allow, and signatures always cover the URL the
app configured. One log line (WARNING) per failed request names the URL without its query and the
reason; parameters and the auth token are never logged.
"""

from __future__ import annotations

import _socket
import base64
import contextlib
import contextvars
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection, _ResponseOptions
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import Retry, Timeout, make_headers, parse_url

from ..cooperative import greenlets_share_this_thread
from ..deadlines import Exchange, deadline
from ..formencoding import form_encoded
from .fragment import DEFAULT_POLICY, DeliveryPolicy, FragmentError, clamp_to_budget, split_fragment
from .hosts import (
    HostNotAllowed,
    HostUnresolvable,
    Resolver,
    address_allowed,
    check_url,
    resolve_host,
)
from .signing import signature_headers

log = logging.getLogger("gateway.app_side")

KINDS = frozenset({"ct", "rt", "4xx", "5xx", "tt", "host", "other", "busy", "down"})
METHODS = ("GET", "POST")
DEFAULT_MAX_BYTES = 1 << 20
_CHUNK = 64 * 1024
# Below this much time left there is no point starting (or retrying) a request.
_MIN_ATTEMPT_SECONDS = 0.05
_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_FORM = "application/x-www-form-urlencoded"
# gzip and deflate (and br/zstd when their decoders are installed): the body is decoded on reading.
_ACCEPT_ENCODING = ", ".join(
    re.split(r",\s*", make_headers(accept_encoding=True)["accept-encoding"]))
# One try per urlopen: `AppClient.request` does the retrying, under the fragment's rules.
# read=False hands a read error back as itself instead of wrapped in MaxRetryError.
_ONE_TRY = Retry(0, read=False)


class AppRequestError(Exception):
    """A request to the app failed for good. `kind` is one of KINDS: ct (could not connect),
    rt (no response in time), 4xx/5xx (the app answered with that status), tt (the total time,
    or the caller's deadline, ran out), host (not allowed), other; and, from `guard.AppGuard`,
    busy (too many requests to the app in flight) or down (its circuit is open: not asked).
    `url` has no query or fragment, so it is safe to log."""

    def __init__(self, url: str, reason: str, kind: str, status: int | None = None,
                 attempts: int = 0):
        assert kind in KINDS, kind
        self.url = url
        self.reason = reason
        self.kind = kind
        self.status = status
        self.attempts = attempts
        super().__init__(f"{url}: {reason}")


@dataclass(frozen=True)
class AppResponse:
    """A 2xx answer from the app. `url` is the URL requested (fragment removed, params not
    merged); `text` is `body` decoded with the Content-Type charset, else UTF-8."""

    url: str
    status: int
    text: str
    content_type: str
    elapsed: float
    attempts: int
    body: bytes = b""


class AppClient:
    """Requests to customers' apps over one pool of keep-alive connections; safe to share between
    threads. Nothing is kept from one request to the next but open connections (no cookies), and
    nothing is taken from the environment (no proxy, no .netrc), so nothing from one app leaks
    into requests to another."""

    def __init__(self, *, user_agent: str = "PlivoHTTP/1.0 (gateway)",
                 resolve: Resolver = resolve_host, pool_size: int = 32,
                 extra_headers: Mapping[str, str] | None = None):
        # HTTPS is verified against certifi's CA bundle, as before this edge dropped `requests`.
        self._pools = urllib3.PoolManager(num_pools=pool_size, maxsize=pool_size, block=False,
                                          cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
        self._pools.pool_classes_by_scheme = {
            "http": _CheckedHTTPConnectionPool,
            "https": _CheckedHTTPSConnectionPool,
        }
        self._headers = {"User-Agent": user_agent, "Accept-Encoding": _ACCEPT_ENCODING,
                         "Accept": "*/*", "Connection": "keep-alive", **(extra_headers or {})}
        self._resolve = resolve

    def close(self) -> None:
        self._pools.clear()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, url: str, method: str, params: Mapping[str, str], *, auth_token: str,
                allowed_hosts: Sequence[str], deadline: float | None = None,
                max_bytes: int = DEFAULT_MAX_BYTES) -> AppResponse:
        """One request as Plivo makes it (see the module doc). Raises AppRequestError."""
        method = method.upper()
        if method not in METHODS:
            raise ValueError(f"method must be GET or POST, not {method!r}")
        target, policy = _policy_for(url)
        started = time.monotonic()
        if deadline is not None:
            policy = clamp_to_budget(policy, deadline - started)
        send_url = _merge_query(target, params) if method == "GET" else target
        attempt = _Attempt(self, target, send_url, method, dict(params), auth_token,
                           tuple(allowed_hosts), policy, started + policy.total_timeout,
                           max_bytes)
        try:
            response = self._attempts(attempt, policy)
        except AppRequestError as error:
            error.attempts = attempt.count
            if error.kind in ("ct", "rt") and attempt.remaining() < _MIN_ATTEMPT_SECONDS:
                error = AppRequestError(error.url, f"total time of {policy.total_timeout:g} s "
                                        f"used up ({error.reason})", "tt", error.status,
                                        attempt.count)
            log.warning("app request failed: %s %s: %s [%s, %d attempt%s]", method,
                        error.url, error.reason, error.kind, error.attempts,
                        "" if error.attempts == 1 else "s")
            raise error from None
        return response

    @staticmethod
    def _attempts(attempt: _Attempt, policy: DeliveryPolicy) -> AppResponse:
        """Attempt after attempt: a failure of a kind the policy retries is tried again, after a
        short backoff, while attempts and time remain; any other failure ends at once."""
        while True:
            try:
                return attempt()
            except AppRequestError as error:
                if (error.kind not in policy.retry_on or attempt.count >= policy.attempts
                        or attempt.remaining() < _MIN_ATTEMPT_SECONDS):
                    raise
                log.debug("retrying %s %s after attempt %d: %s", attempt.method,
                          attempt.safe_url, attempt.count, error)
                time.sleep(attempt.backoff())

    def _send(self, wire: _Wire, method: str, headers: dict[str, str], body: bytes | None,
              timeout: Timeout, allowed_hosts: Sequence[str]) -> urllib3.HTTPResponse:
        pool = self._pools.connection_from_host(wire.host, wire.port, wire.scheme)
        token = _PEER_CHECK.set(lambda address: address_allowed(address, allowed_hosts))
        try:
            return pool.urlopen(method, wire.target, body=body, headers=headers,
                                retries=_ONE_TRY, redirect=False, assert_same_host=False,
                                timeout=timeout, preload_content=False, decode_content=False,
                                chunked=False)
        finally:
            _PEER_CHECK.reset(token)


@dataclass(frozen=True)
class _Wire:
    """Where a request goes and what it signs. `target` is the path and query exactly as they go
    on the wire; `signed_url` is scheme://host[:port] + target, without any user:password."""

    scheme: str
    host: str
    port: int | None
    target: str
    signed_url: str
    authorization: str | None


@lru_cache(maxsize=512)
def _wire(url: str) -> _Wire:
    """Raises urllib3's LocationValueError for a URL it cannot send. Pure, so remembered: an
    app's answer URL is sent on every call."""
    parsed = parse_url(url)
    if not parsed.host or not parsed.scheme:
        raise urllib3.exceptions.LocationValueError(f"no host or scheme in {safe_url(url)}")
    # parse_url normalises the path and query the way urlopen will again (percent-encoding what
    # may not appear in a URL, removing dot segments); a second pass changes nothing, so the
    # signature covers the very bytes the app receives.
    target = parsed.request_uri
    netloc = f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host
    return _Wire(parsed.scheme, parsed.host, parsed.port, target,
                 f"{parsed.scheme}://{netloc}{target}", _basic_auth(url))


def _basic_auth(url: str) -> str | None:
    """An Authorization header for a URL with user:password@, as HTTP clients send it."""
    if "@" not in url:
        return None
    parts = urlsplit(url)
    if parts.username is None or parts.password is None:
        return None
    user, password = unquote(parts.username), unquote(parts.password)
    if not (user or password):
        return None
    credentials = f"{user}:{password}"
    try:
        raw = credentials.encode("latin-1")
    except UnicodeEncodeError:
        raw = credentials.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


class _Attempt:
    """One request's retry state: called once per attempt."""

    def __init__(self, client: AppClient, target: str, send_url: str, method: str,
                 params: dict[str, str], auth_token: str, allowed_hosts: tuple[str, ...],
                 policy: DeliveryPolicy, end: float, max_bytes: int):
        self.client = client
        self.target = target
        self.send_url = send_url
        self.safe_url = safe_url(target)
        self.method = method
        self.params = params
        self.auth_token = auth_token
        self.allowed_hosts = allowed_hosts
        self.policy = policy
        self.end = end
        self.max_bytes = max_bytes
        self.count = 0
        # Built on the first attempt that passes the host check, then the same for every retry.
        self.wire: _Wire | None = None
        self.headers: dict[str, str] = {}
        self.body: bytes | None = None

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def backoff(self) -> float:
        """The pause after the attempt that just failed: 0.1 s, 0.2 s, 0.4 s ... capped at 1 s,
        and never past the end of the total time."""
        wanted = min(1.0, 0.1 * 2 ** (self.count - 1))
        return max(0.0, min(wanted, self.remaining() - _MIN_ATTEMPT_SECONDS))

    def fail(self, reason: str, kind: str, status: int | None = None) -> AppRequestError:
        return AppRequestError(self.safe_url, reason, kind, status, self.count)

    def __call__(self) -> AppResponse:
        self.count += 1
        remaining = self.remaining()
        if remaining < _MIN_ATTEMPT_SECONDS:
            raise self.fail(f"no time left for attempt {self.count}", "tt")
        try:
            addresses = check_url(self.send_url, self.allowed_hosts, resolve=self._look_up)
        except HostNotAllowed as exc:
            raise self.fail(f"host not allowed: {exc}", "host") from None
        except HostUnresolvable as exc:
            raise self.fail(f"cannot connect: {exc}", "ct") from None
        wire = self.wire or self._prepare()

        headers = _HeaderLines({**self.headers, **signature_headers(
            self.method, wire.signed_url, self.params if self.method == "POST" else {},
            self.auth_token)})
        connect, read = (min(self.policy.connect_timeout, remaining),
                         min(self.policy.read_timeout, remaining))
        began = time.monotonic()
        with deadline(self.end) as exchange:
            token = _EXCHANGE.set(exchange)
            vetted = _ADDRESSES.set(addresses)
            try:
                return self._exchange(wire, headers, connect, read, began)
            except AppRequestError:
                raise
            except Exception as exc:
                if not exchange.expired:
                    raise
                # Whatever the read was in the middle of when its socket was shut down.
                raise self.fail(f"no complete answer within {self.end - began:.3g} s "
                                f"({type(exc).__name__} when cut off)", "tt") from None
            finally:
                _ADDRESSES.reset(vetted)
                _EXCHANGE.reset(token)

    def _look_up(self, host: str, port: int) -> list[str]:
        """The client's resolver, within what is left of the exchange's time: a name server that
        does not answer must not hold the request past its deadline (the socket watchdog has no
        socket to shut while getaddrinfo waits)."""
        return look_up_within(self.client._resolve, host, port, self.remaining())

    def _exchange(self, wire: _Wire, headers: dict[str, str], connect: float, read: float,
                  began: float) -> AppResponse:
        exchange = _EXCHANGE.get()
        try:
            response = self.client._send(wire, self.method, headers, self.body,
                                         Timeout(connect=connect, read=read), self.allowed_hosts)
        except HostNotAllowed as exc:
            raise self.fail(f"host not allowed at connect time: {exc}", "host") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if exchange is not None and exchange.expired:
                raise self.fail(f"no answer within {self.end - began:.3g} s (the status line "
                                "or headers did not arrive in time)", "tt") from None
            raise self.fail(*_send_failure(exc, connect, read)) from None
        try:
            return self._read(response, began)
        finally:
            # After a full read the connection is already back in the pool and this does
            # nothing; otherwise it drops the connection rather than download the rest.
            response.close()
            response.release_conn()

    def _prepare(self) -> _Wire:
        try:
            wire = _wire(self.send_url)
        except urllib3.exceptions.LocationValueError:
            raise self.fail("request failed: InvalidURL", "other") from None
        headers = dict(self.client._headers)
        if self.method == "POST":
            # A POST without params still says Content-Length: 0, and has no Content-Type.
            body = form_encoded(self.params).encode("ascii") if self.params else b""
            headers["Content-Length"] = str(len(body))
            if body:
                headers["Content-Type"] = _FORM
            self.body = body or None
        if wire.authorization:
            headers["Authorization"] = wire.authorization
        self.wire, self.headers = wire, headers
        return wire

    def _read(self, response: urllib3.HTTPResponse, began: float) -> AppResponse:
        status = response.status
        if 300 <= status < 400:
            location = safe_url(response.headers.get("Location", "") or "(none)")
            raise self.fail(f"HTTP {status} redirect to {location} not followed "
                            "(configure the final URL)", "other", status)
        if status >= 400 or status < 200:
            kind = "4xx" if 400 <= status < 500 else "5xx" if status >= 500 else "other"
            raise self.fail(f"HTTP {status}", kind, status)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self.fail(f"response of {declared} bytes is larger than the "
                            f"{self.max_bytes} allowed", "other", status)
        body = self._read_body(response, status)
        content_type = response.headers.get("Content-Type", "")
        return AppResponse(
            url=self.target, status=status,
            text=body.decode(_charset(content_type, body), "replace"),
            content_type=content_type, elapsed=time.monotonic() - began, attempts=self.count,
            body=body)

    def _read_body(self, response: urllib3.HTTPResponse, status: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = self.remaining()
            if remaining <= 0:
                raise self.fail("total time used up while reading the response", "tt", status)
            _set_read_timeout(response, min(self.policy.read_timeout, remaining))
            try:
                chunk = response.read1(_CHUNK, decode_content=True)
            except ReadTimeoutError:
                raise self.fail("the response stopped arriving", "rt", status) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                exchange = _EXCHANGE.get()
                if exchange is not None and exchange.expired:
                    raise self.fail("total time used up while reading the response", "tt",
                                    status) from None
                raise self.fail(f"the response was cut short ({type(exc).__name__})", "other",
                                status) from None
            if not chunk:
                exchange = _EXCHANGE.get()
                if exchange is not None and exchange.expired:  # the shutdown looks like an end
                    raise self.fail("total time used up while reading the response", "tt",
                                    status)
                # Read to the end: the connection goes back to the pool for the next request.
                response.release_conn()
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise self.fail(f"response is larger than the {self.max_bytes} bytes allowed",
                                "other", status)
            chunks.append(chunk)


@lru_cache(maxsize=1024)
def safe_url(url: str) -> str:
    """A URL fit for a log line: scheme, host, port and path; no credentials, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def _policy_for(url: str) -> tuple[str, DeliveryPolicy]:
    try:
        return split_fragment(url)
    except FragmentError as exc:
        target = url.split("#", 1)[0]
        log.warning("bad delivery settings in the URL fragment of %s: %s; using Plivo's defaults",
                    safe_url(target), exc)
        return target, DEFAULT_POLICY


def _merge_query(url: str, params: Mapping[str, str]) -> str:
    """GET as Plivo sends it: the URL's own query pairs, minus any a param replaces, then the
    params."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode(kept + list(params.items()))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _charset(content_type: str, body: bytes) -> str:
    """The Content-Type's charset, else the XML declaration's encoding, else UTF-8 (XML's own
    default; a generic HTTP client would guess ISO-8859-1 for any text/* without a charset)."""
    candidates = [value.strip().strip('"') for name, _, value in
                  (piece.partition("=") for piece in content_type.split(";")[1:])
                  if name.strip().lower() == "charset"]
    declared = _XML_ENCODING.match(body)
    if declared:
        candidates.append(declared.group(1).decode("ascii"))
    for candidate in candidates:
        try:
            # A text codec that can replace what it cannot decode: `idna` cannot, `hex` and
            # `rot13` are not text codecs at all; such a charset counts as unknown.
            b"\xff".decode(candidate, "replace")
        except (LookupError, UnicodeError):
            continue
        return candidate
    return "utf-8"


def _send_failure(exc: Exception, connect: float, read: float) -> tuple[str, str]:
    """(reason, kind) for an error urlopen raised before any response arrived."""
    if isinstance(exc, MaxRetryError):
        reason = exc.reason
        # urllib3 counts a refused connection as a kind of connect timeout; only a real one is.
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return f"no connection within {connect:g} s", "ct"
        return _connection_failure(reason)
    if isinstance(exc, ReadTimeoutError):
        return f"no response within {read:g} s", "rt"
    if isinstance(exc, ProtocolError | OSError | ClosedPoolError | SSLError):
        return _connection_failure(exc)
    return f"request failed: {type(exc).__name__}", "other"


def _connection_failure(reason: BaseException | None) -> tuple[str, str]:
    if isinstance(reason, ReadTimeoutError):
        return "no response in time", "rt"
    if isinstance(reason, ProtocolError | ConnectionResetError):
        return "the app closed the connection without answering", "rt"
    if isinstance(reason, NewConnectionError):
        return f"cannot connect ({_short(reason)})", "ct"
    if isinstance(reason, SSLError):
        return f"TLS handshake failed ({_short(reason)})", "ct"
    return f"cannot connect ({type(reason).__name__})", "ct"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text.rsplit(": ", 1)[-1][:200]


def _set_read_timeout(response: urllib3.HTTPResponse, seconds: float) -> None:
    # The socket timeout bounds each read; shrinking it as time runs out keeps a trickling body
    # from stretching past the total time.
    sock = getattr(response.connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


# --- connect-time peer check ------------------------------------------------------------------
# The pool opens sockets deep inside urllib3; the allowed-address rule for the request in flight
# reaches it through a context variable, set around each send.

_PEER_CHECK: contextvars.ContextVar[Callable[[str], bool] | None] = contextvars.ContextVar(
    "gateway_app_side_peer_check", default=None)
# The attempt's deadline, which must know the socket to shut: a new one, or a pooled one reused.
_EXCHANGE: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "gateway_app_side_exchange", default=None)


# The addresses the host check vetted for the request in flight: a new connection goes to one of
# them instead of looking the name up again (which could take long, or answer differently).
_ADDRESSES: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "gateway_app_side_addresses", default=())


def look_up_within(resolve: Resolver, host: str, port: int, seconds: float) -> list[str]:
    """`resolve(host, port)`, or HostUnresolvable after `seconds`. Under gevent the waiting
    greenlet is cut short; with threads the look-up runs on a daemon thread of its own and is
    abandoned at the deadline (it ends by itself at the system resolver's own timeout)."""
    late = HostUnresolvable(host, f"no answer from the name servers within {seconds:.3g} s")
    if greenlets_share_this_thread():
        import gevent

        with gevent.Timeout(max(seconds, 0.001), late):
            return list(resolve(host, port))
    outcome: list = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(list(resolve(host, port)))
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)
        done.set()

    threading.Thread(target=run, name="dns", daemon=True).start()
    if not done.wait(max(seconds, 0.001)):
        raise late
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


class _VettedAddress:
    """Connect a new socket to the first vetted address, keeping the host name for the Host
    header and TLS (urllib3 connects to `_dns_host`, which is also what `host` returns)."""

    def _new_conn(self):  # type: ignore[no-untyped-def]
        addresses = _ADDRESSES.get()
        name = self._dns_host  # type: ignore[attr-defined]
        if addresses:
            self._dns_host = addresses[0]  # type: ignore[attr-defined]
        try:
            sock = super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = name  # type: ignore[attr-defined]
        _check_peer(sock, name)
        _attach(sock)
        return sock


def _attach(sock: object) -> None:
    exchange = _EXCHANGE.get()
    if exchange is not None and sock is not None:
        exchange.attach(sock)


def _check_peer(sock: object, host: str) -> None:
    check = _PEER_CHECK.get()
    if check is None:
        return
    try:
        peer = str(sock.getpeername()[0])  # type: ignore[attr-defined]
    except OSError:
        return  # not connected after all; the request fails on its own
    if not check(peer):
        sock.close()  # type: ignore[attr-defined]
        raise HostNotAllowed(host, f"connected to {peer}, which is not a public address and is "
                                   "not listed in allowed_hosts")


# A header value that would end its line early (header injection): never written as it is.
_LINE_BREAKING = re.compile(r"[\r\n\x00]")


class _HeaderLines(dict):
    """A request's headers, as this client builds them: written to the wire as ready lines
    (`lines()`) when every value is safe to write as it is (no line break); otherwise they go
    through urllib3's and http.client's own checks, one header at a time. urllib3 copies the
    headers it is given before sending: the copy stays one of these."""

    def copy(self) -> _HeaderLines:
        return _HeaderLines(self)

    def lines(self) -> bytes | None:
        if _LINE_BREAKING.search("".join(self.values())):
            return None
        return b"\r\n".join(f"{name}: {value}".encode("latin-1")
                             for name, value in self.items())

    def names(self) -> set[str]:
        return {name.lower() for name in self}


class _HeadersWithBody:
    """A request goes out in one send, headers and body together, its header lines written once.

    urllib3 sends the headers, then the body, in two sends: two packets for the app to take in
    (on loopback, the kernel delivers each in the sender's time), on every fetch. The headers
    are the first send of a request (`endheaders`), the body the next; the first is held and
    sent with the second. Headers that come as `_HeaderLines` are put in the request as their
    ready lines: the same bytes as urllib3 writes (the request line and Host first, then the
    headers in order), without its per-header checks and encoding, a dozen per fetch."""

    _hold_headers = False
    _held: bytes | None = None

    def request(self, method, url, body=None, headers=None, *, chunked=False,  # type: ignore[no-untyped-def]
                preload_content=True, decode_content=True, enforce_content_length=True):
        _attach(self.sock)  # type: ignore[attr-defined]  # a kept-alive connection (None: new)
        self._hold_headers = isinstance(body, bytes) and bool(body) and not chunked
        self._held = None
        try:
            lines = (headers.lines() if isinstance(headers, _HeaderLines)
                     and (body is None or isinstance(body, bytes)) and not chunked else None)
            if lines is not None:
                self._send_lines(method, url, body, lines, headers.names(), _ResponseOptions(
                    request_method=method, request_url=url, preload_content=preload_content,
                    decode_content=decode_content,
                    enforce_content_length=enforce_content_length))
            else:
                super().request(method, url, body, headers, chunked=chunked,  # type: ignore[misc]
                                preload_content=preload_content, decode_content=decode_content,
                                enforce_content_length=enforce_content_length)
            if self._held is not None:  # no body was sent after all: the headers go alone
                held, self._held = self._held, None
                super().send(held)  # type: ignore[misc]
        finally:
            self._hold_headers, self._held = False, None

    def _send_lines(self, method: str, url: str, body: bytes | None, lines: bytes,
                    names: set[str], options: _ResponseOptions) -> None:
        """What urllib3's HTTPConnection.request does for a body of bytes whose headers carry
        its Content-Length (or no body), with the header lines already written."""
        if self.sock is not None:  # type: ignore[attr-defined]  # a reused connection
            self.sock.settimeout(self.timeout)  # type: ignore[attr-defined]
        # Kept before sending, as urllib3 does: a response may be read even if sending fails.
        self._response_options = options
        self.putrequest(method, url, skip_host="host" in names,  # type: ignore[attr-defined]
                        skip_accept_encoding="accept-encoding" in names)
        self._output(lines)  # type: ignore[attr-defined]  # http.client's header buffer
        self.endheaders()  # type: ignore[attr-defined]
        if body:
            self.send(body)

    def send(self, data):  # type: ignore[no-untyped-def]
        if self._hold_headers:
            self._hold_headers, self._held = False, bytes(data)
            return
        if self._held is not None:
            data, self._held = self._held + bytes(data), None
        super().send(data)  # type: ignore[misc]


class _QuickLivenessCheck:
    """Whether a pooled connection is still fit for a request, asked of the socket in one call.

    urllib3 asks before reusing a kept-alive connection, by polling its socket for anything to
    read (a peer that closed it, or stray bytes, make it unfit). Under gevent, a poll is
    gevent's emulation of `select.poll` (~10 µs, on every fetch). There the socket beneath is
    non-blocking, and a peek at one byte gives the same answer: nothing to read (EAGAIN) means
    fit; an end of stream, stray bytes or an error mean not. A blocking socket (threads) is
    left to urllib3's poll, which a peek would wait on."""

    @property
    def is_connected(self) -> bool:
        sock = self.sock  # type: ignore[attr-defined]
        raw = getattr(sock, "_sock", None)  # gevent keeps the real socket there
        if not isinstance(raw, _socket.socket) or raw.gettimeout() != 0.0:
            return super().is_connected  # type: ignore[misc]
        try:
            raw.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return False  # the peer closed it (b""), or sent what no request asked for


class _CheckedHTTPConnection(_QuickLivenessCheck, _HeadersWithBody, _VettedAddress,
                             HTTPConnection):
    pass


class _CheckedHTTPSConnection(_QuickLivenessCheck, _HeadersWithBody, _VettedAddress,
                              HTTPSConnection):
    def connect(self):  # type: ignore[no-untyped-def]
        super().connect()
        _attach(self.sock)  # the TLS socket took over the raw one's descriptor


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection
