"""Plivo's `#ct=&rt=&tt=&rc=&rp=` delivery settings."""

from __future__ import annotations

import pytest

from gateway.app_side.fragment import (
    DEFAULT_POLICY,
    DeliveryPolicy,
    FragmentError,
    clamp_to_budget,
    split_fragment,
    strip_fragment,
)


def test_no_fragment_gives_plivos_defaults():
    url, policy = split_fragment("https://app.example.com/answer?x=1")
    assert url == "https://app.example.com/answer?x=1"
    assert policy == DEFAULT_POLICY == DeliveryPolicy(2.0, 40.0, 55.0, 1, frozenset({"ct", "rt"}))


def test_every_key_is_read_and_the_fragment_removed():
    url, policy = split_fragment(
        "https://app.example.com/answer?x=1#ct=500&rt=3000&tt=9000&rc=3&rp=5xx,ct")
    assert url == "https://app.example.com/answer?x=1"
    assert policy == DeliveryPolicy(0.5, 3.0, 9.0, 3, frozenset({"5xx", "ct"}))


def test_all_means_every_failure_class():
    _, policy = split_fragment("https://a.example/x#rp=all")
    assert policy.retry_on == frozenset({"4xx", "5xx", "ct", "rt"})


def test_attempts_count_the_first_try():
    assert split_fragment("https://a.example/x#rc=0")[1].attempts == 1
    assert split_fragment("https://a.example/x#rc=5")[1].attempts == 6


def test_edge_region_and_unknown_keys_are_ignored():
    _, policy = split_fragment("https://a.example/x#er=frankfurt&section-2&foo=bar&rc=2")
    assert policy == DeliveryPolicy(retries=2)


def test_an_app_anchor_is_not_an_error():
    url, policy = split_fragment("https://a.example/x#top")
    assert (url, policy) == ("https://a.example/x", DEFAULT_POLICY)


@pytest.mark.parametrize(("fragment", "key"), [
    ("ct=99", "ct"), ("ct=10001", "ct"), ("rt=40001", "rt"), ("tt=55001", "tt"), ("tt=0", "tt"),
    ("rc=6", "rc"), ("rc=-1", "rc"), ("ct=fast", "ct"), ("rt=1.5", "rt"), ("rp=sometimes", "rp"),
    ("rp=", "rp"), ("rc", "rc")])
def test_bad_value_names_its_key(fragment, key):
    with pytest.raises(FragmentError) as caught:
        split_fragment(f"https://a.example/x#{fragment}")
    assert caught.value.key == key
    assert repr(key) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_limits_are_inclusive():
    _, policy = split_fragment("https://a.example/x#ct=100&rt=40000&tt=55000&rc=5")
    assert policy == DeliveryPolicy(0.1, 40.0, 55.0, 5)


def test_strip_fragment():
    assert strip_fragment("https://a.example/x?q=1#rc=2") == "https://a.example/x?q=1"


def test_clamp_shortens_every_timeout_to_the_budget():
    clamped = clamp_to_budget(DEFAULT_POLICY, 1.5)
    assert clamped == DeliveryPolicy(1.5, 1.5, 1.5, 1, frozenset({"ct", "rt"}))


def test_clamp_never_lengthens():
    short = DeliveryPolicy(0.2, 0.5, 1.0, 2)
    assert clamp_to_budget(short, 14.0) == short


def test_clamp_to_a_spent_budget_leaves_no_time():
    assert clamp_to_budget(DEFAULT_POLICY, -3).total_timeout == 0
