"""The Store contract, single-process: every test runs on SQLite and on a real Redis."""

from __future__ import annotations

import math
import time

import pytest

from gateway.state import Store

LIVE = 60.0  # never expires during a test
SHORT = 0.1  # expires during the test
EXPIRY_WAIT = 10.0  # bound on waiting for a SHORT key to go (generous for a loaded machine)

AWKWARD_KEYS = [
    "with space",
    "quote'and\"double",
    "ünïcödé-会议-📞",
    "glob*star",
    "glob?mark",
    "glob[bracket]",
    "back\\slash",
    "tab\tand\nnewline",
    "nul\x00inside",
    "%_like_wildcards",
]


def let_short_ttls_pass(store: Store) -> None:
    """Return once a key written now with the SHORT TTL has expired.

    Waiting for a sentinel rather than sleeping a fixed time keeps the tests fast and immune to
    a slow machine: every SHORT key written before this call has expired when it returns.
    """
    store.put("sentinel", {}, SHORT)
    deadline = time.monotonic() + EXPIRY_WAIT
    while store.get("sentinel") is not None:
        assert time.monotonic() < deadline, "a key with a short TTL never expired"
        time.sleep(0.02)


def test_value_round_trips(store: Store):
    value = {"call": "CA1", "members": [1, 2], "nested": {"ok": True, "n": None}, "f": 1.5}
    store.put("call:CA1", value, LIVE)
    assert store.get("call:CA1") == value


def test_missing_key_reads_none(store: Store):
    assert store.get("never-written") is None


def test_put_overwrites(store: Store):
    store.put("k", {"v": 1}, LIVE)
    store.put("k", {"v": 2}, LIVE)
    assert store.get("k") == {"v": 2}


def test_unicode_values_round_trip(store: Store):
    value = {"name": "Salle de réunion 会议室 📞", "quote": "it's \"fine\""}
    store.put("room", value, LIVE)
    assert store.get("room") == value


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_awkward_keys_are_plain_text(store: Store, key: str):
    store.put(key, {"key": key}, LIVE)
    assert store.get(key) == {"key": key}
    assert store.incr(key, LIVE) == 1
    assert list(store.scan(key)) == [(key, {"key": key})]
    store.delete(key)
    assert store.get(key) is None
    assert store.incr(key, LIVE) == 1


def test_awkward_keys_do_not_match_as_patterns(store: Store):
    for key in AWKWARD_KEYS:
        store.put(key, {}, LIVE)
    assert store.get("glob") is None
    assert store.get("globXstar") is None
    assert store.get("glob*") is None


def test_expired_value_is_invisible(store: Store):
    store.put("short", {"v": 1}, SHORT)
    store.put("long", {"v": 2}, LIVE)
    let_short_ttls_pass(store)
    assert store.get("short") is None
    assert store.get("long") == {"v": 2}
    assert [key for key, _ in store.scan("")] == ["long"]


def test_value_is_live_until_its_ttl_passes(store: Store):
    store.put("k", {"v": 1}, 30.0)
    time.sleep(0.1)  # long past 30 ms, in case a TTL were taken as milliseconds
    assert store.get("k") == {"v": 1}


def test_put_resets_ttl(store: Store):
    store.put("k", {"v": 1}, SHORT)
    store.put("k", {"v": 2}, LIVE)
    let_short_ttls_pass(store)
    assert store.get("k") == {"v": 2}


def test_put_if_absent_writes_once(store: Store):
    assert store.put_if_absent("k", {"first": True}, LIVE) is True
    assert store.put_if_absent("k", {"second": True}, LIVE) is False
    assert store.get("k") == {"first": True}


def test_put_if_absent_takes_the_place_of_an_expired_value(store: Store):
    store.put("k", {"old": True}, SHORT)
    let_short_ttls_pass(store)
    assert store.put_if_absent("k", {"new": True}, LIVE) is True
    assert store.get("k") == {"new": True}


def test_put_if_absent_unless_another_key_holds_a_value(store: Store):
    store.put("ended:CA1", {"at": 1}, LIVE)
    assert store.put_if_absent("call:CA1", {"new": True}, LIVE, unless="ended:CA1") is False
    assert store.get("call:CA1") is None
    assert store.put_if_absent("call:CA2", {"new": True}, LIVE, unless="ended:CA2") is True
    assert store.put_if_absent("call:CA2", {"again": True}, LIVE, unless="ended:CA2") is False
    assert store.get("call:CA2") == {"new": True}


def test_put_if_absent_unless_an_expired_value_writes(store: Store):
    store.put("ended:CA3", {"at": 1}, SHORT)
    let_short_ttls_pass(store)
    assert store.put_if_absent("call:CA3", {"new": True}, LIVE, unless="ended:CA3") is True
    assert store.get("call:CA3") == {"new": True}


def test_put_unless_writes_and_overwrites_while_the_other_key_is_empty(store: Store):
    assert store.put("call:CA4", {"step": 1}, LIVE, unless="ended:CA4") is True
    assert store.put("call:CA4", {"step": 2}, LIVE, unless="ended:CA4") is True
    assert store.get("call:CA4") == {"step": 2}


def test_put_unless_is_refused_once_the_other_key_holds_a_value(store: Store):
    store.put("call:CA5", {"ended": True}, LIVE)
    store.put("ended:CA5", {"at": 1}, LIVE)
    assert store.put("call:CA5", {"ended": False}, LIVE, unless="ended:CA5") is False
    assert store.get("call:CA5") == {"ended": True}
    assert store.put("call:CA6", {"new": True}, LIVE, unless="ended:CA6") is True


def test_put_unless_an_expired_value_writes(store: Store):
    store.put("ended:CA7", {"at": 1}, SHORT)
    let_short_ttls_pass(store)
    assert store.put("call:CA7", {"new": True}, LIVE, unless="ended:CA7") is True
    assert store.get("call:CA7") == {"new": True}


def test_put_unless_sets_the_ttl_it_is_given(store: Store):
    store.put("call:CA8", {"v": 1}, LIVE)
    assert store.put("call:CA8", {"v": 2}, SHORT, unless="ended:CA8") is True
    store.put("call:CA9", {"v": 1}, SHORT)
    assert store.put("call:CA9", {"v": 2}, LIVE, unless="ended:CA9") is True
    let_short_ttls_pass(store)
    assert store.get("call:CA8") is None
    assert store.get("call:CA9") == {"v": 2}


def test_update_of_absent_key_sees_none_and_writes(store: Store):
    seen = []

    def create(current):
        seen.append(current)
        return {"count": 1}

    assert store.update("k", create, LIVE) == {"count": 1}
    assert seen == [None]
    assert store.get("k") == {"count": 1}


def test_update_modifies_current_value(store: Store):
    store.put("room", {"members": ["a"]}, LIVE)
    written = store.update("room", lambda v: {"members": [*v["members"], "b"]}, LIVE)
    assert written == {"members": ["a", "b"]}
    assert store.get("room") == {"members": ["a", "b"]}


def test_update_returning_none_deletes(store: Store):
    store.put("k", {"v": 1}, LIVE)
    assert store.update("k", lambda v: None, LIVE) is None
    assert store.get("k") is None


def test_update_of_expired_key_sees_none(store: Store):
    store.put("k", {"stale": True}, SHORT)
    let_short_ttls_pass(store)
    assert store.update("k", lambda v: {"was": v}, LIVE) == {"was": None}


def test_update_resets_ttl(store: Store):
    store.put("k", {"v": 1}, SHORT)
    store.update("k", lambda v: {"v": v["v"] + 1}, LIVE)
    let_short_ttls_pass(store)
    assert store.get("k") == {"v": 2}


def test_update_whose_function_fails_writes_nothing(store: Store):
    store.put("k", {"v": 1}, LIVE)

    def broken(current):
        raise KeyError("no such member")

    with pytest.raises(KeyError):
        store.update("k", broken, LIVE)
    assert store.get("k") == {"v": 1}
    # and the store is still usable afterwards
    assert store.update("k", lambda v: {"v": 2}, LIVE) == {"v": 2}


def test_update_rejects_a_non_dict_result_and_keeps_the_value(store: Store):
    store.put("k", {"v": 1}, LIVE)
    with pytest.raises(TypeError):
        store.update("k", lambda v: ["not", "a", "dict"], LIVE)
    assert store.get("k") == {"v": 1}


def test_update_many_sees_every_key_and_writes_only_what_it_returns(store: Store):
    store.put("member", {"state": "pending"}, LIVE)
    store.put("room", {"ids": 1}, SHORT)
    seen = []

    def join(current):
        seen.append(current)
        return {"member": {"state": "joined", "id": current["room"]["ids"] + 1},
                "outbox": {"items": ["enter"]}}

    after = store.update_many({"member": LIVE, "room": LIVE, "outbox": LIVE}, join)
    assert seen == [{"member": {"state": "pending"}, "room": {"ids": 1}, "outbox": None}]
    assert after == {"member": {"state": "joined", "id": 2}, "room": {"ids": 1},
                     "outbox": {"items": ["enter"]}}
    assert store.get("outbox") == {"items": ["enter"]}
    let_short_ttls_pass(store)
    assert store.get("room") is None  # only read: its TTL was not reset
    assert store.get("member") == {"state": "joined", "id": 2}


def test_update_many_deletes_keys_mapped_to_none(store: Store):
    store.put("job", {"due": 1}, LIVE)
    store.put("outbox", {"items": []}, LIVE)
    after = store.update_many({"job": LIVE, "outbox": LIVE}, lambda current: {"job": None})
    assert after == {"job": None, "outbox": {"items": []}}
    assert store.get("job") is None
    assert store.get("outbox") == {"items": []}


def test_update_many_that_changes_nothing_reads_and_writes_nothing(store: Store):
    """A claim that does not take its job returns {}: what was read comes back, no TTL is
    reset (Redis ends after its MGET)."""
    store.put("job", {"lease": "held"}, SHORT)
    after = store.update_many({"job": LIVE, "outbox": LIVE}, lambda current: {})
    assert after == {"job": {"lease": "held"}, "outbox": None}
    let_short_ttls_pass(store)
    assert store.get("job") is None  # its short TTL ran out: nothing was written


def test_update_many_is_all_or_nothing(store: Store):
    store.put("a", {"v": 1}, LIVE)
    with pytest.raises(ValueError):  # the second value cannot be stored: nothing is
        store.update_many({"a": LIVE, "b": LIVE},
                          lambda current: {"a": {"v": 2}, "b": {"bad": math.nan}})
    with pytest.raises(KeyError):  # a key it was not given
        store.update_many({"a": LIVE}, lambda current: {"a": {"v": 3}, "z": {"v": 1}})
    assert store.get("a") == {"v": 1}
    assert store.get("b") is None
    assert store.get("z") is None


def test_counter_starts_at_one_and_counts(store: Store):
    assert [store.incr("room:members", LIVE) for _ in range(3)] == [1, 2, 3]


def test_counter_is_separate_from_the_value_of_the_same_key(store: Store):
    store.put("room", {"name": "r"}, LIVE)
    assert store.incr("room", LIVE) == 1
    assert store.get("room") == {"name": "r"}
    assert list(store.scan("room")) == [("room", {"name": "r"})]


def test_counters_do_not_show_in_scan(store: Store):
    store.incr("member-id:room1", LIVE)
    assert list(store.scan("member-id")) == []


def test_expired_counter_starts_again_at_one(store: Store):
    store.incr("c", SHORT)
    store.incr("c", SHORT)
    let_short_ttls_pass(store)
    assert store.incr("c", LIVE) == 1


def test_incr_refreshes_the_counter_ttl(store: Store):
    store.incr("c", SHORT)
    store.incr("c", LIVE)
    let_short_ttls_pass(store)
    assert store.incr("c", LIVE) == 3


def test_delete_removes_value_and_counter(store: Store):
    store.put("room", {"v": 1}, LIVE)
    store.incr("room", LIVE)
    store.delete("room")
    assert store.get("room") is None
    assert store.incr("room", LIVE) == 1


def test_delete_of_missing_key_is_quiet(store: Store):
    store.delete("never-written")
    assert store.get("never-written") is None


def test_scan_lists_live_keys_with_prefix_in_key_order(store: Store):
    for key in ["room:b", "room:a", "room:c", "call:x", "roomy"]:
        store.put(key, {"k": key}, LIVE)
    assert list(store.scan("room:")) == [
        ("room:a", {"k": "room:a"}),
        ("room:b", {"k": "room:b"}),
        ("room:c", {"k": "room:c"}),
    ]


def test_scan_with_empty_prefix_lists_everything(store: Store):
    for key in ["b", "a", "c"]:
        store.put(key, {}, LIVE)
    assert [key for key, _ in store.scan("")] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("room:a*b:", ["room:a*b:1", "room:a*b:2"]),
        ("room:a?b:", ["room:a?b:1"]),
        ("room:[ab]", ["room:[ab]:1"]),
        ("room:a\\b", ["room:a\\b:1"]),
        ("room:%", ["room:%:1"]),
        ("room:_", ["room:_:1"]),
        ("room:a", ["room:a*b:1", "room:a*b:2", "room:a?b:1", "room:a\\b:1", "room:axb:1"]),
    ],
)
def test_scan_prefix_is_literal_not_a_pattern(store: Store, prefix: str, expected: list[str]):
    for key in [
        "room:a*b:1", "room:a*b:2", "room:axb:1", "room:a?b:1", "room:[ab]:1", "room:a:1",
        "room:b:1", "room:a\\b:1", "room:%:1", "room:_:1", "room:x:1",
    ]:
        store.put(key, {}, LIVE)
    listed = [key for key, _ in store.scan(prefix)]
    assert [key for key in listed if key != "room:a:1"] == expected


def test_scan_of_unicode_prefix_at_the_top_of_the_code_space(store: Store):
    top = "\U0010ffff"
    for key in [f"z{top}", f"z{top}{top}a", "z", f"{top}"]:
        store.put(key, {}, LIVE)
    assert [key for key, _ in store.scan(f"z{top}")] == [f"z{top}", f"z{top}{top}a"]
    assert [key for key, _ in store.scan(top)] == [top]


def test_scan_pages_through_many_keys(store: Store):
    for n in range(450):
        store.put(f"member:{n:04d}", {"n": n}, LIVE)
    store.put("other", {}, LIVE)
    listed = list(store.scan("member:"))
    assert [value["n"] for _, value in listed] == list(range(450))


def test_scan_tolerates_writes_while_iterating(store: Store):
    for n in range(300):
        store.put(f"m:{n:03d}", {"n": n}, LIVE)
    seen = []
    for key, value in store.scan("m:"):
        seen.append(value["n"])
        store.delete(key)
        store.put(f"z:{key}", value, LIVE)
    assert seen == list(range(300))
    assert list(store.scan("m:")) == []


@pytest.mark.parametrize("bad", [["list"], "text", 3, None])
def test_values_must_be_dicts(store: Store, bad):
    with pytest.raises(TypeError):
        store.put("k", bad, LIVE)
    assert store.get("k") is None


def test_values_must_be_json(store: Store):
    with pytest.raises(TypeError):
        store.put("k", {"when": object()}, LIVE)
    with pytest.raises(ValueError):
        store.put("k", {"x": math.nan}, LIVE)
    assert store.put_if_absent("k", {"ok": 1}, LIVE) is True


@pytest.mark.parametrize("ttl", [0, -1, math.inf, math.nan])
def test_every_key_must_expire(store: Store, ttl: float):
    with pytest.raises(ValueError):
        store.put("k", {}, ttl)
    with pytest.raises(ValueError):
        store.incr("k", ttl)
    with pytest.raises(ValueError):
        store.update("k", lambda v: {}, ttl)
    assert store.get("k") is None


def test_keys_must_be_non_empty_text(store: Store):
    with pytest.raises(ValueError):
        store.put("", {}, LIVE)
    with pytest.raises(TypeError):
        store.get(b"bytes")  # type: ignore[arg-type]


def test_healthy_store_pings(store: Store):
    assert store.ping() is True


def test_url_is_the_one_it_was_opened_from(store: Store, store_url: str):
    assert store.url == store_url
