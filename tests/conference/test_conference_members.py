"""Rooms and members in the shared store: IDs, idempotent transitions, ordering, the floor.

Every test runs against SQLite and a real Redis.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

from gateway.conference.members import Member, Members
from gateway.state import open_store

CONFERENCE = "CF" + "a" * 32


def member(label: str, **settings) -> Member:
    call_sid = label.split("-")[0]
    return Member(label=label, call_sid=call_sid, step=1, app="support", room="Room",
                  twilio_room="plivo-MA1-x", settings={"callback_url": "http://a/cb",
                                                       "stay_alone": True, **settings},
                  call_params={"CallUUID": "u"})


def test_fifty_simultaneous_joins_get_ids_one_to_fifty(store):
    members = Members(store)
    members.open_room(CONFERENCE, "plivo-MA1-x", "MA1", "Room")
    labels = [f"CA{i:032d}-1" for i in range(50)]

    def join(label: str) -> int:
        room = members.enter_room(CONFERENCE, label, stay_alone=True)
        return room.members[label]

    with ThreadPoolExecutor(max_workers=25) as pool:
        ids = list(pool.map(join, labels))
    assert sorted(ids) == list(range(1, 51))
    room = members.room(CONFERENCE)
    assert len(room.present) == 50 and room.peak == 50


def _join_in_process(args) -> list[int]:
    url, labels = args
    members = Members(open_store(url))
    return [members.enter_room(CONFERENCE, label, stay_alone=True).members[label]
            for label in labels]


def test_member_ids_have_no_gap_across_processes(store_url):
    members = Members(open_store(store_url))
    members.open_room(CONFERENCE, "plivo-MA1-x", "MA1", "Room")
    batches = [(store_url, [f"CA{p:02d}{i:030d}-1" for i in range(10)]) for p in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        ids = [i for batch in pool.map(_join_in_process, batches) for i in batch]
    assert sorted(ids) == list(range(1, 41))


def test_the_same_join_twice_keeps_its_id(store):
    members = Members(store)
    members.open_room(CONFERENCE, "plivo-MA1-x", "MA1", "Room")
    first = members.enter_room(CONFERENCE, "CA1-1", stay_alone=True).members["CA1-1"]
    again = members.enter_room(CONFERENCE, "CA1-1", stay_alone=True).members["CA1-1"]
    other = members.enter_room(CONFERENCE, "CA2-1", stay_alone=True).members["CA2-1"]
    assert (first, again, other) == (1, 1, 2)


def test_enter_is_numbered_before_exit_and_only_once(store):
    members = Members(store)
    members.expect(member("CA1-1"))
    joined = members.mark_joined("CA1-1", CONFERENCE, 1, ("enter",))
    assert joined.changed and joined.numbered == ((1, "enter"),)
    again = members.mark_joined("CA1-1", CONFERENCE, 1, ("enter",))  # duplicate or retry
    assert not again.changed and again.numbered == ((1, "enter"),)   # same number: idempotent
    left = members.mark_left("CA1-1", ("exit",))
    assert left.numbered == ((2, "exit"),) and left.member.state == "left"
    again = members.mark_left("CA1-1", ("exit",))
    assert not again.changed and again.numbered == ((2, "exit"),)
    assert not members.number_callback("CA1-1", "floor").changed  # no floor after leaving


def test_leave_cannot_come_before_join(store):
    members = Members(store)
    members.expect(member("CA1-1"))
    assert not members.mark_left("CA1-1", ("exit",)).changed  # still pending: join first


def test_floor_goes_to_the_newest_speaker_and_stale_events_are_ignored(store):
    members = Members(store)
    members.open_room(CONFERENCE, "plivo-MA1-x", "MA1", "Room")
    for label in ("A-1", "B-1"):
        members.enter_room(CONFERENCE, label, stay_alone=True)
    assert members.take_floor(CONFERENCE, "A-1", 5)
    assert not members.take_floor(CONFERENCE, "A-1", 6)      # already holds it
    assert members.take_floor(CONFERENCE, "B-1", 8)
    assert not members.take_floor(CONFERENCE, "A-1", 7)      # older than B's: stale
    assert members.room(CONFERENCE).floor == "B-1"


def test_stay_alone_false_marks_the_room(store):
    members = Members(store)
    members.open_room(CONFERENCE, "plivo-MA1-x", "MA1", "Room")
    members.enter_room(CONFERENCE, "A-1", stay_alone=True)
    room = members.enter_room(CONFERENCE, "B-1", stay_alone=False)
    assert room.min_two and room.peak == 2
    room = members.leave_room(CONFERENCE, "B-1")
    assert room.present == ["A-1"]


def test_events_are_seen_once(store):
    members = Members(store)
    assert members.first_seen(CONFERENCE, "3:CA1", "participant-join")
    assert not members.first_seen(CONFERENCE, "3:CA1", "participant-join")
    assert members.first_seen(CONFERENCE, "4:CA1", "participant-join")


def test_pending_member_travels_in_its_call_record_until_asked_for(store):
    from gateway.calls import CallRecord, Calls
    from gateway.translate.context import member_label

    calls = Calls(store)
    members = Members(store, calls)
    label = member_label("CA" + "1" * 32, 2)
    pending = member(label)
    pending.call_sid, pending.step = "CA" + "1" * 32, 2
    calls.save(CallRecord(call_sid=pending.call_sid, app="support", call_uuid="u", params={},
                          step=2, member=pending.to_dict()))
    assert store.get(f"member:{label}") is None          # nothing written for it yet
    found = members.get(label)
    assert found is not None and found.state == "pending" and found.step == 2
    assert store.get(f"member:{label}") is not None      # from now on it has its own record
    assert members.mark_joined(label, CONFERENCE, 1, ("enter",)).changed
    assert members.get(member_label("CA" + "1" * 32, 1)) is None  # another step: not this one
    assert members.get("not-a-label") is None


def test_a_member_is_stored_without_plivos_defaults_and_read_back_whole(store):
    """Half a member was defaults, written with every answer and every event: only what
    differs from Plivo's defaults (and from the record's own) is stored."""
    from dataclasses import fields

    from gateway.calls import CallRecord, Calls
    from gateway.plivoxml.elements.conference import Conference
    from gateway.plivoxml.parser import parse_document
    from gateway.translate.context import member_label

    conference = parse_document('<Response><Conference maxMembers="20" callbackUrl='
                                '"http://a/cb" digitsMatch="12,345">Room</Conference>'
                                '</Response>').steps[0]
    assert isinstance(conference, Conference)
    settings = {f.name: getattr(conference, f.name) for f in fields(conference)
                if f.name not in ("line", "body")}
    call_sid = "CA" + "2" * 32
    label = member_label(call_sid, 1)
    pending = Member(label=label, call_sid=call_sid, step=1, app="support", room="Room",
                     twilio_room="plivo-MA1-x", settings=settings, call_params={"CallUUID": "u"})
    Calls(store).save(CallRecord(call_sid=call_sid, app="support", call_uuid="u", params={},
                                 step=1, member=pending.to_dict(), member_labels=[label]))

    stored = store.get(f"call:{call_sid}")
    assert stored["member"]["settings"] == {"max_members": 20, "callback_url": "http://a/cb",
                                            "digits_match": ["12", "345"]}
    assert "state" not in stored["member"] and "ended" not in stored
    members = Members(store, Calls(store))
    found = members.get(label)
    assert found.settings == {**settings, "digits_match": ["12", "345"]}
    assert found.settings["time_limit"] == 0 and found.settings["transcription_method"] == "GET"
    assert found.state == "pending" and found.numbers == {} and found.exit_status == "in-progress"
    assert Calls(store).get(call_sid).ended is False

    joined = members.mark_joined(label, CONFERENCE, 1, ("enter",))
    assert joined.changed and members.get(label).state == "joined"
    assert store.get(f"member:{label}")["state"] == "joined"  # no longer the default: stored
