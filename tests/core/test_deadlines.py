"""The watchdog cuts each exchange at its own deadline, whatever order the deadlines come in:
it is woken only for a deadline earlier than the one it sleeps towards."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from gateway.deadlines import Watchdog, deadline


def blocked_read_ends_after(watchdog: Watchdog, seconds: float) -> float:
    """How long a recv() on a silent socket lasts under a deadline `seconds` from now."""
    ours, peer = socket.socketpair()
    try:
        started = time.monotonic()
        with deadline(started + seconds, watchdog=watchdog) as exchange:
            exchange.attach(ours)
            assert ours.recv(1) == b""  # shut down under the read
            assert exchange.expired
        return time.monotonic() - started
    finally:
        ours.close()
        peer.close()


def test_an_earlier_deadline_than_the_one_watched_cuts_in_time():
    watchdog = Watchdog()
    far = deadline(time.monotonic() + 30, watchdog=watchdog)
    with far:  # the watchdog now sleeps towards 30 s from now
        assert blocked_read_ends_after(watchdog, 0.2) < 2.0


def test_later_deadlines_fire_too_after_finished_ones():
    watchdog = Watchdog()
    for _ in range(50):  # finished long before their deadlines: never woken for them
        with deadline(time.monotonic() + 0.3, watchdog=watchdog):
            pass
    assert 0.25 < blocked_read_ends_after(watchdog, 0.4) < 2.0
    assert 0.5 < blocked_read_ends_after(watchdog, 0.6) < 2.5


def test_a_finished_exchange_is_never_cut():
    watchdog = Watchdog()
    ours, peer = socket.socketpair()
    try:
        with deadline(time.monotonic() + 0.1, watchdog=watchdog) as exchange:
            exchange.attach(ours)
        time.sleep(0.3)
        peer.sendall(b"x")
        assert ours.recv(1) == b"x"
        assert not exchange.expired
    finally:
        ours.close()
        peer.close()


GEVENT_READS = """
from gevent import monkey
monkey.patch_all()
import socket, sys, time
import gevent
from gateway.deadlines import LoopExchange, deadline

def cut_after(seconds):
    ours, peer = socket.socketpair()
    started = time.monotonic()
    with deadline(started + seconds) as exchange:
        assert isinstance(exchange, LoopExchange), type(exchange)
        exchange.attach(ours)
        assert ours.recv(1) == b""  # shut down under the read
        assert exchange.expired
    return time.monotonic() - started

def never_cut():
    ours, peer = socket.socketpair()
    with deadline(time.monotonic() + 0.1) as exchange:
        exchange.attach(ours)
    gevent.sleep(0.3)
    peer.sendall(b"x")
    return ours.recv(1) == b"x" and not exchange.expired

# two readers at once, each cut at its own deadline, the later one started first
late = gevent.spawn(cut_after, 0.6)
early = gevent.spawn(cut_after, 0.2)
print(round(early.get(), 2), round(late.get(), 2), never_cut())
"""


def test_under_gevent_each_exchange_is_cut_by_the_event_loop_at_its_own_deadline():
    """The web workers' path (gevent's monkey-patching): a timer of the loop per exchange."""
    out = subprocess.run([sys.executable, "-c", GEVENT_READS], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    early, late, finished_untouched = out.stdout.split()
    assert 0.19 <= float(early) < 1.5
    assert 0.59 <= float(late) < 2.0
    assert finished_untouched == "True"
