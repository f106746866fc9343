"""The per-app guard on the voice path: a limit on fetches in flight, and a circuit breaker that
answers at once while an app is known to be down, then lets one probe through after a cool-down.
The clock is a plain number the tests move."""

from __future__ import annotations

import pytest

from gateway.app_side import AppRequestError
from gateway.app_side.guard import AppGuard

ANSWER = "http://app.example.com/answer"
FALLBACK = "http://backup.example.net/fallback"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock) -> AppGuard:
    return AppGuard(max_in_flight=2, failures_to_open=3, cool_down=10.0, clock=clock)


def fetch(guard: AppGuard, outcome: str = "ok", app: str = "sales", url: str = ANSWER) -> None:
    """One fetch through the guard that ends with `outcome`: ok, or an AppRequestError kind."""
    with guard.admit(app, url):
        if outcome != "ok":
            raise AppRequestError(url, f"failed: {outcome}", outcome)


def refusal(guard: AppGuard, app: str = "sales", url: str = ANSWER) -> AppRequestError:
    with pytest.raises(AppRequestError) as caught, guard.admit(app, url):
        pytest.fail("the guard let the fetch through")
    return caught.value


def fail_times(guard: AppGuard, times: int, kind: str = "tt", **where) -> None:
    for _ in range(times):
        with pytest.raises(AppRequestError):
            fetch(guard, kind, **where)


def test_fetches_beyond_the_limit_are_refused_at_once_and_admitted_again_when_one_ends(guard):
    with guard.admit("sales", ANSWER), guard.admit("sales", ANSWER):
        error = refusal(guard)
        assert error.kind == "busy"
        assert "limit 2" in error.reason
        fetch(guard, app="support")  # another app is not held back
    fetch(guard)


@pytest.mark.parametrize("kind", ["ct", "rt", "tt", "5xx"])
def test_consecutive_failures_open_the_circuit(guard, kind):
    fail_times(guard, 3, kind)
    error = refusal(guard)
    assert error.kind == "down"
    assert "3 times in a row" in error.reason
    assert guard.state("sales", ANSWER) == "open"


@pytest.mark.parametrize("kind", ["4xx", "other", "host"])
def test_an_app_that_answers_wrongly_is_up_and_never_opens_the_circuit(guard, kind):
    fail_times(guard, 5, kind)
    fetch(guard)
    assert guard.state("sales", ANSWER) == "closed"


def test_a_success_between_failures_starts_the_count_again(guard):
    fail_times(guard, 2)
    fetch(guard)
    fail_times(guard, 2)
    fetch(guard)
    assert guard.state("sales", ANSWER) == "closed"


def test_after_the_cool_down_one_probe_goes_through_and_its_success_closes(guard, clock):
    fail_times(guard, 3)
    clock.now += 10.0
    assert guard.state("sales", ANSWER) == "half-open"
    with guard.admit("sales", ANSWER):  # the probe
        assert refusal(guard).kind == "down"  # others wait for its verdict
    assert guard.state("sales", ANSWER) == "closed"
    fetch(guard)


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(guard, clock):
    fail_times(guard, 3)
    clock.now += 10.0
    fail_times(guard, 1)
    assert refusal(guard).kind == "down"
    clock.now += 9.9
    assert refusal(guard).kind == "down"
    clock.now += 0.1
    fetch(guard)
    assert guard.state("sales", ANSWER) == "closed"


def test_the_fallback_origin_and_other_apps_are_judged_apart(guard):
    fail_times(guard, 3)
    assert refusal(guard).kind == "down"
    fetch(guard, url=FALLBACK)
    fetch(guard, app="support")
    fetch(guard, url=ANSWER.replace("/answer", "/other-path"), app="support")


def test_an_error_that_is_not_the_apps_leaves_the_record_alone(guard):
    fail_times(guard, 2)
    with pytest.raises(KeyError), guard.admit("sales", ANSWER):
        raise KeyError("a bug of ours, not the app's")
    fail_times(guard, 1)
    assert refusal(guard).kind == "down"
