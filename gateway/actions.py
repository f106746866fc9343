"""Plivo's action URL after an element that hands control back (Conference, Record).

One rule, shared: with `redirect="true"` (Plivo's default) the action's XML replaces the rest of
the document; with `redirect="false"` the request is delivered in the background (durable, in
order with the call's other requests), its answer ignored, and the document goes on with the
next element. The caller of `follow_action` builds Plivo's parameters and says how a background
request is queued (its stream and number).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from .calls import CallRecord
from .mappings import PlivoApp
from .runner import CallRunner


def follow_action(runner: CallRunner, call: CallRecord, app: PlivoApp, *, url: str, method: str,
                  params: Mapping[str, str], redirect: bool, deadline: float | None = None,
                  send_in_background: Callable[[dict], None],
                  stop_streams: tuple[str, ...] = ()) -> str:
    """Request the app's action URL as Plivo would; returns the TwiML that goes on (after
    stopping `stop_streams`, the side streams of a member that left a room)."""
    deadline = deadline if deadline is not None else time.monotonic() + runner.budget
    if redirect:
        fetched = runner.fetch_or_fail(call, app, url, method, params, deadline)
        return runner.run(call, app, fetched, start=0, stop_streams=stop_streams)
    send_in_background({"url": url, "method": method, "app": app.name, "kind": "action",
                        "params": dict(params)})
    return runner.continue_document(call, app, deadline, stop_streams)
