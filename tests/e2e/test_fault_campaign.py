"""One small fault of the campaign (`benchmarks/fault_campaign.py`), through its own functions:
10 callers in 2 rooms while a gunicorn web worker and the job worker are SIGKILLed in turn
every 1.5 s. Twilio gets no 5xx and no wait past 15 s, every callback of an acknowledged event
reaches the app once and in Plivo's order, and nothing is left pending. The whole campaign runs
outside the test suite (`python -m benchmarks.fault_campaign`)."""

from __future__ import annotations

import random

from benchmarks.fault_campaign import Size, fault_sigkill


def test_sigkill_loop_small(tmp_path):
    size = Size(members=10, rooms=2, spread=4.0, hold=(1.0, 3.0), every=1.5, settle=60.0)
    verdict = fault_sigkill(tmp_path, size, random.Random(9))
    assert verdict.ok, verdict.problems
    assert "SIGKILLs" in verdict.action and not verdict.action.startswith("0 ")
    assert verdict.callbacks_expected >= 20  # enter, exit, hangup of (nearly) every caller
    assert verdict.callbacks_delivered == verdict.callbacks_expected
