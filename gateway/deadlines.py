"""One deadline over a whole blocking exchange on a socket, whatever the peer does.

A socket timeout bounds each read, not the exchange: a peer that sends one byte a second never
trips it, so an app that writes `HTTP/1.1 200 OK` and then one header byte per second, or a client
that sends its body one byte every two seconds, could hold a request for minutes. Here a
`Watchdog` (one per process, a single daemon thread; a greenlet under gevent's monkey-patching)
keeps the deadlines of the exchanges in flight in a heap and, when one passes, shuts its socket
down: the blocked read returns at once, whatever layer (http.client, urllib3, TLS, gunicorn's body
reader) is reading, and the owner sees that its `Exchange` expired and says so.

Shutting down (not closing) is what is safe from another thread: the file descriptor stays the
owner's, so it cannot be reused under its feet. The shutdown goes to the raw socket beneath any
TLS wrapper, which is left alone (its state belongs to the reading thread).

Under gevent's monkey-patching (the web workers), in the thread that runs gevent's event loop,
an exchange is timed by the loop itself instead (`LoopExchange`: one timer, started and closed,
no lock, no heap): every request reads its body under a deadline, and the watchdog's locks,
heap and Condition cost a speaker event more than its signature check. The timer's callback
does what the watchdog would: it shuts the socket down.
"""

from __future__ import annotations

import _socket
import contextlib
import heapq
import itertools
import os
import socket
import threading
import time

from .cooperative import greenlets_share_this_thread


class Exchange:
    """One exchange under a deadline. `attach(sock)` names the socket to shut when it expires
    (attach again when the socket changes); `expired` says whether the watchdog cut it short."""

    __slots__ = ("_lock", "_sock", "deadline", "done", "expired", "how")

    def __init__(self, deadline: float, how: int = socket.SHUT_RDWR):
        self.deadline = deadline
        self.how = how
        self.expired = False
        self.done = False
        self._sock = None
        self._lock = threading.Lock()

    def attach(self, sock) -> None:
        with self._lock:
            self._sock = sock
            late = self.expired
        if late:  # it expired while the socket was being opened: cut this one too
            shutdown(sock, self.how)

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            sock = self._sock
        if sock is not None:
            shutdown(sock, self.how)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._sock = None


class LoopExchange(Exchange):
    """An exchange timed by gevent's event loop (see the module doc). Every greenlet that can
    touch it runs in the loop's thread, and none can switch inside these methods, so it needs
    no lock."""

    __slots__ = ("_timer",)

    def __init__(self, deadline: float, how: int, loop):
        self.deadline = deadline
        self.how = how
        self.expired = False
        self.done = False
        self._sock = None
        self._timer = loop.timer(max(0.0, deadline - time.monotonic()), ref=False)
        self._timer.start(self.expire, update=True)  # from now, not from the loop's last turn

    def attach(self, sock) -> None:
        self._sock = sock
        if self.expired:
            shutdown(sock, self.how)

    def expire(self) -> None:
        if self.done:
            return
        self.expired = True
        if self._sock is not None:
            shutdown(self._sock, self.how)

    def finish(self) -> None:
        self.done = True
        self._sock = None
        self._timer.close()


def shutdown(sock, how: int) -> None:
    """Shut `sock` down (no error if it is already gone), from any thread."""
    # gevent's socket keeps the real one in `_sock`; ssl.SSLSocket *is* a socket.socket, and
    # calling the base method skips its override, which would drop the TLS state under the reader.
    raw = getattr(sock, "_sock", sock)
    if isinstance(raw, _socket.socket):
        with contextlib.suppress(OSError):
            _socket.socket.shutdown(raw, how)


_IDLE_LOOK = 1.0  # seconds between looks of an idle watchdog


class Watchdog:
    """Expires `Exchange`s at their deadlines. Safe to share between threads; survives fork (a
    child starts its own thread on first use)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Exchange]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._pid = 0
        # When the thread wakes by itself next (inf: not started). A new exchange wakes it only
        # when it is due before that: deadlines are nearly always later (now + the same budget,
        # seconds away), and a wake-up per exchange cost more than the rest of the watch (a
        # thread switch, twice per voice webhook).
        self._waking_at = float("inf")

    def watch(self, exchange: Exchange) -> Exchange:
        with self._wake:
            if self._pid != os.getpid():  # first use in this process (or in a forked child)
                self._heap.clear()
                self._waking_at = float("inf")
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()
            heapq.heappush(self._heap, (exchange.deadline, next(self._order), exchange))
            if exchange.deadline < self._waking_at:  # due before the thread would look again
                self._waking_at = exchange.deadline
                self._wake.notify()
        return exchange

    def _run(self) -> None:
        while True:
            due: list[Exchange] = []
            with self._wake:
                # Finished exchanges are dropped as they reach the top, not searched for.
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    # Idle, it still looks again within a second: otherwise every exchange that
                    # starts after the last one ended would have to wake it.
                    self._waking_at = time.monotonic() + _IDLE_LOOK
                    self._wake.wait(_IDLE_LOOK)
                    continue
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._waking_at = self._heap[0][0]
                    self._wake.wait(self._heap[0][0] - now)
                    continue
            for exchange in due:
                exchange.expire()


WATCHDOG = Watchdog()


class Deadline:
    """The context manager `deadline()` returns: the exchange is watched from construction and
    finished on leaving the block."""

    __slots__ = ("exchange",)

    def __init__(self, exchange: Exchange):
        self.exchange = exchange

    def __enter__(self) -> Exchange:
        return self.exchange

    def __exit__(self, *exc_info) -> None:
        self.exchange.finish()


def deadline(at: float, *, how: int = socket.SHUT_RDWR,
             watchdog: Watchdog | None = None) -> Deadline:
    """`with deadline(t) as exchange: exchange.attach(sock); ...`: the socket is shut down at
    time.monotonic() == t if the block is still running. Timed by gevent's loop in its thread
    under monkey-patching, else by `watchdog` (the process's by default)."""
    loop = _event_loop() if watchdog is None else None
    if loop is not None:
        return Deadline(LoopExchange(at, how, loop))
    return Deadline((watchdog or WATCHDOG).watch(Exchange(at, how)))


def _event_loop():
    """gevent's event loop when this code runs in the thread that runs it (the web workers'
    greenlets), else None."""
    if not greenlets_share_this_thread():
        return None
    from gevent import get_hub  # imported only where gevent already is
    loop = get_hub().loop
    return loop if loop.default else None  # only the main thread's loop is always running
