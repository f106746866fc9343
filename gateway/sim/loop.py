"""The simulator's clock and its single engine thread: a command queue plus a timer heap.

All simulation state (calls, rooms, recordings) is touched only on this thread, so the engine needs
no locks: webhook workers, the REST server and stream threads hand their results in with `post`
(fire and forget) or `call` (wait for the answer, bounded). Timers are cancellable handles.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


class Timer:
    __slots__ = ("args", "callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.due = due
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EngineStopped(RuntimeError):
    """The engine thread is not running (stopped, or never started)."""


class EventLoop:
    """Runs posted commands and due timers, in order, on one thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._commands: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...],
                                                Future[Any] | None]] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._running = False
        # Told about an exception a handler raised (the engine records it as an internal error).
        self.on_error: Callable[[BaseException, str], None] = lambda exc, where: log.error(
            "simulator engine: %s failed: %r", where, exc)

    # --- any thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="sim-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if not self._running:
            return
        self._running = False
        self._commands.put((lambda: None, (), None))  # wake the loop
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def post(self, callback: Callable[..., Any], *args: Any) -> None:
        self._commands.put((callback, args, None))

    def call(self, callback: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run `callback(*args)` on the engine thread and return its result (or raise)."""
        if threading.current_thread() is self._thread:
            return callback(*args)
        if not self._running:
            raise EngineStopped("the simulator is not running")
        future: Future[Any] = Future()
        self._commands.put((callback, args, future))
        return future.result(timeout)

    # --- engine thread ------------------------------------------------------------------------
    def at(self, due: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(due, callback, args)
        heapq.heappush(self._timers, (due, next(self._order), timer))
        return timer

    def after(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.at(self.clock() + max(0.0, delay), callback, *args)

    def _run(self) -> None:
        while self._running:
            now = self.clock()
            while self._timers and self._timers[0][0] <= now:
                _, _, timer = heapq.heappop(self._timers)
                if not timer.cancelled:
                    self._guarded(timer.callback, timer.args, None)
            wait = min(self._timers[0][0] - now, 0.5) if self._timers else 0.5
            try:
                callback, args, future = self._commands.get(timeout=max(wait, 0.0))
            except queue.Empty:
                continue
            self._guarded(callback, args, future)

    def _guarded(self, callback: Callable[..., Any], args: tuple[Any, ...],
                 future: Future[Any] | None) -> None:
        try:
            result = callback(*args)
        except BaseException as exc:  # a bug in one handler must not kill the engine
            if future is not None:
                future.set_exception(exc)
            else:
                self.on_error(exc, getattr(callback, "__qualname__", repr(callback)))
            return
        if future is not None:
            future.set_result(result)
