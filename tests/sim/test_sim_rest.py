"""The simulated REST API, driven with the real twilio-python client as the gateway would."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from gateway.sim import Simulator, scenario_from_dict
from tests.sim.runs import Run, Scenario, concurrently, scenario
from tests.sim.support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FakeGateway,
    Received,
    call,
)
from tests.sim.test_sim_conference import BOB, of, room, sid_of

ACCOUNT = f"/2010-04-01/Accounts/{ACCOUNT_SID}"


def client_for(sim: Simulator) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = sim.api_base_url
    return client


class Gateway:
    """Acts once, on the first conference event named `on`, with the twilio client."""

    def __init__(self, gateway: FakeGateway, on: str, act: Any):
        self.client: Client | None = None
        self.result: Any = None
        self._done = threading.Event()

        def events(received: Received) -> str:
            if received.params["StatusCallbackEvent"] == on and not self._done.is_set():
                self._done.set()
                assert self.client is not None
                self.result = act(self.client, received.params)
            return ""
        gateway.routes["/events"] = events

    def attach(self, sim: Simulator) -> None:
        self.client = client_for(sim)


def run_with(acting: Gateway, calls: list[dict[str, Any]], **options: Any) -> Scenario:
    """The scenario, with the acting gateway's client pointed at this run's simulator."""
    return scenario(calls, before=acting.attach, **options)


def two_in_a_room(**hangups: float) -> list[dict[str, Any]]:
    """Alice at 0, Bob at 0.4; both hang up at 2 s unless told otherwise."""
    return [call("alice", hangup_at=hangups.get("alice", 2.0)),
            call("bob", from_=BOB, at=0.4, hangup_at=hangups.get("bob", 2.0))]


@concurrently
def test_rest_end_conference_with_twilio_client(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room(dial='action="/left"'))
    gateway.twiml("/left", "<Say>Meeting over</Say>")
    acting = Gateway(gateway, "conference-start", lambda client, p: client.conferences(
        p["ConferenceSid"]).update(status="completed"))
    transcript = yield run_with(acting, two_in_a_room())
    assert acting.result.status == "completed"
    assert acting.result.reason_conference_ended == "conference-ended-via-api"
    (end,) = of(gateway, "conference-end")
    assert end["ReasonConferenceEnded"] == "conference-ended-via-api"
    assert "CallSidEndingConference" not in end
    reasons = {p["ReasonParticipantLeft"] for p in of(gateway, "participant-leave")}
    assert reasons == {"conference_ended_via_api"}
    assert [r.params["DialCallStatus"] for r in gateway.requests_to("/left")] == ["answered"] * 2
    assert transcript.heard("alice")[-1] == ("say", "Meeting over")
    (rest,) = transcript.events(type="rest", method="POST")
    assert rest["params"] == {"Status": "completed"} and rest["status"] == 200


@concurrently
def test_rest_lists_and_fetches_conferences_and_participants(gateway: FakeGateway) -> Run:
    def inspect(client: Client, p: dict[str, str]) -> dict[str, Any]:
        live = client.conferences.list(friendly_name="room", status="in-progress")
        conference = client.conferences(p["ConferenceSid"]).fetch()
        members = client.conferences(p["ConferenceSid"]).participants.list()
        bob = client.conferences(p["ConferenceSid"]).participants(sid_of(gateway, BOB)).fetch()
        return {"live": live, "conference": conference, "members": members, "bob": bob}
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "conference-start", inspect)
    yield run_with(acting, two_in_a_room())
    found = acting.result
    assert [c.sid for c in found["live"]] == [found["conference"].sid]
    conference = found["conference"]
    assert (conference.friendly_name, conference.status) == ("room", "in-progress")
    assert conference.account_sid == ACCOUNT_SID and conference.date_created is not None
    assert len(found["members"]) == 2
    assert {m.muted for m in found["members"]} == {False}
    assert found["bob"].call_sid == sid_of(gateway, BOB)
    assert found["bob"].conference_sid == conference.sid


@concurrently
def test_rest_mute_and_unmute_emit_events(gateway: FakeGateway) -> Run:
    def mute(client: Client, p: dict[str, str]) -> Any:
        member = client.conferences(p["ConferenceSid"]).participants(sid_of(gateway, BOB))
        muted = member.update(muted=True)
        member.update(muted=False)
        return muted
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "conference-start", mute)
    yield run_with(acting, two_in_a_room())
    assert acting.result.muted is True
    (muted,) = of(gateway, "participant-mute")
    (unmuted,) = of(gateway, "participant-unmute")
    assert muted["Muted"] == "true" and unmuted["Muted"] == "false"
    assert muted["CallSid"] == sid_of(gateway, BOB)


@concurrently
def test_a_muted_participant_stops_speaking(gateway: FakeGateway) -> Run:
    def mute(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).participants(p["CallSid"]).update(muted=True)
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "participant-speech-start", mute)
    calls = two_in_a_room(alice=2.6, bob=2.6)
    calls[1]["speech"] = [{"from": 1.0, "to": 2.4}]
    yield run_with(acting, calls)
    speech = [p["StatusCallbackEvent"] for p in of(gateway, "participant-speech-start")
              + of(gateway, "participant-speech-stop")]
    assert speech == ["participant-speech-start", "participant-speech-stop"]
    stop = of(gateway, "participant-speech-stop")[0]
    mute_event = of(gateway, "participant-mute")[0]
    assert int(mute_event["SequenceNumber"]) < int(stop["SequenceNumber"])


@concurrently
def test_rest_hold_plays_the_hold_url(gateway: FakeGateway) -> Run:
    def hold(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).participants(sid_of(gateway, BOB)).update(
            hold=True, hold_url=gateway.url("/hold"), hold_method="POST")
    gateway.twiml("/twilio/voice", room())
    gateway.twiml("/hold", "<Say>On hold</Say>")
    acting = Gateway(gateway, "conference-start", hold)
    transcript = yield run_with(acting, two_in_a_room(alice=3.0, bob=3.0))
    (held,) = of(gateway, "participant-hold")
    assert held["Hold"] == "true"
    assert ("wait", "say On hold") in transcript.heard("bob")
    assert gateway.requests_to("/hold")[0].method == "POST"


@concurrently
def test_rest_kick_participant(gateway: FakeGateway) -> Run:
    def kick(client: Client, p: dict[str, str]) -> bool:
        return client.conferences(p["ConferenceSid"]).participants(sid_of(gateway, BOB)).delete()
    gateway.twiml("/twilio/voice", room(dial='action="/left"'))
    gateway.twiml("/left", "<Hangup/>")
    acting = Gateway(gateway, "conference-start", kick)
    yield run_with(acting, two_in_a_room(alice=1.5, bob=2.0))
    assert acting.result is True
    bob = sid_of(gateway, BOB)
    (kicked,) = [p for p in of(gateway, "participant-leave") if p["CallSid"] == bob]
    assert kicked["ReasonParticipantLeft"] == "participant_updated_via_api"
    (left,) = [r.params for r in gateway.requests_to("/left") if r.params["CallSid"] == bob]
    assert left["DialCallStatus"] == "answered"


@concurrently
def test_kicking_the_last_participant_ends_the_room(gateway: FakeGateway) -> Run:
    def kick(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).participants(p["CallSid"]).delete()
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "participant-join", kick)
    yield run_with(acting, [call("alice", hangup_at=1.2)])
    (end,) = of(gateway, "conference-end")
    assert end["ReasonConferenceEnded"] == "last-participant-kicked"


@concurrently
def test_rest_announce_to_the_conference(gateway: FakeGateway) -> Run:
    def announce(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).update(announce_url=gateway.url("/announce"))
    gateway.twiml("/twilio/voice", room())
    gateway.twiml("/announce", "<Say>Hello everyone</Say>")
    acting = Gateway(gateway, "conference-start", announce)
    transcript = yield run_with(acting, two_in_a_room(alice=3.0, bob=3.0))
    for name in ("alice", "bob"):
        assert ("announcement", "say Hello everyone") in transcript.heard(name)
    (done,) = of(gateway, "announcement-end")
    assert done["AnnounceUrl"] == gateway.url("/announce")
    assert "CallSid" not in done
    assert gateway.requests_to("/announce")[0].method == "POST"


@concurrently
def test_rest_announce_to_one_participant(gateway: FakeGateway) -> Run:
    def announce(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).participants(sid_of(gateway, BOB)).update(
            announce_url=gateway.url("/announce"))
    gateway.twiml("/twilio/voice", room())
    gateway.twiml("/announce", "<Play>/ding.mp3</Play>")
    acting = Gateway(gateway, "conference-start", announce)
    transcript = yield run_with(acting, two_in_a_room(alice=3.0, bob=3.0),
                          play_seconds=0.2)
    assert ("announcement", f"play {gateway.url('/ding.mp3')}") in transcript.heard("bob")
    assert not [h for h in transcript.heard("alice") if h[0] == "announcement"]
    (done,) = of(gateway, "announcement-end")
    assert done["CallSid"] == sid_of(gateway, BOB)


@concurrently
def test_a_failing_announcement_sends_announcement_fail(gateway: FakeGateway) -> Run:
    def announce(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).update(announce_url=gateway.url("/announce"))
    gateway.twiml("/twilio/voice", room())
    gateway.twiml("/announce", "<Dial>+14155550199</Dial>")
    acting = Gateway(gateway, "conference-start", announce)
    transcript = yield run_with(acting, two_in_a_room(alice=1.6, bob=1.6))
    (failed,) = of(gateway, "announcement-fail")
    assert failed["ReasonAnnouncementFailed"]
    assert transcript.errors[0]["code"] == 13238


@concurrently
def test_rest_modify_emits_participant_modify(gateway: FakeGateway) -> Run:
    def modify(client: Client, p: dict[str, str]) -> None:
        client.conferences(p["ConferenceSid"]).participants(p["CallSid"]).update(
            end_conference_on_exit=True)
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "participant-join", modify)
    yield run_with(acting, two_in_a_room(alice=1.2, bob=2.0))
    (modified,) = of(gateway, "participant-modify")
    assert modified["EndConferenceOnExit"] == "true"
    (end,) = of(gateway, "conference-end")  # alice now ends the room when she leaves
    assert end["ReasonConferenceEnded"] == "participant-with-end-conference-on-exit-left"


@concurrently
def test_rest_redirect_call_with_url(gateway: FakeGateway) -> Run:
    def redirect(client: Client, p: dict[str, str]) -> None:
        client.calls(p["CallSid"]).update(url=gateway.url("/next"), method="POST")
    gateway.twiml("/twilio/voice", room(dial='action="/left"'))
    gateway.twiml("/next", "<Say>Moved</Say>")
    acting = Gateway(gateway, "participant-join", redirect)
    transcript = yield run_with(acting, [call("alice", hangup_at=2.0)])
    assert transcript.heard("alice")[-1] == ("say", "Moved")
    (leave,) = of(gateway, "participant-leave")
    assert leave["ReasonParticipantLeft"] == "participant_updated_via_api"
    assert gateway.requests_to("/left") == []  # a redirect abandons the Dial and its action


@concurrently
def test_rest_redirect_call_with_inline_twiml(gateway: FakeGateway) -> Run:
    def redirect(client: Client, p: dict[str, str]) -> None:
        client.calls(p["CallSid"]).update(twiml="<Response><Say>Inline</Say></Response>")
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "participant-join", redirect)
    transcript = yield run_with(acting, [call("alice", hangup_at=2.0)])
    assert transcript.heard("alice")[-1] == ("say", "Inline")


@concurrently
def test_rest_hangup_call(gateway: FakeGateway) -> Run:
    def hang_up(client: Client, p: dict[str, str]) -> Any:
        client.calls(p["CallSid"]).update(status="completed")
        return client.calls(p["CallSid"]).fetch()
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "participant-join", hang_up)
    transcript = yield run_with(acting, [call("alice", hangup_at=2.5)])
    fetched = acting.result
    assert (fetched.status, fetched.direction, fetched._from) == ("completed", "inbound",
                                                                  "+14155550101")
    end = transcript.call_end("alice")
    assert end["status"] == "completed" and "REST" in end["reason"]
    assert end["t"] < 2.0  # by the REST call, not the caller at 2.5 s


def test_rest_errors_have_twilios_shape(gateway: FakeGateway) -> None:
    gateway.twiml("/twilio/voice", '<Pause length="1"/>')
    with Simulator(gateway.base, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as sim:
        base, auth = sim.api_base_url, (ACCOUNT_SID, AUTH_TOKEN)
        missing = requests.get(f"{base}{ACCOUNT}/Conferences/CF{'0' * 32}.json", auth=auth)
        assert missing.status_code == 404
        body = missing.json()
        assert body == {"code": 20404, "message": f"The requested resource {ACCOUNT}/"
                        f"Conferences/CF{'0' * 32}.json was not found",
                        "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}
        assert requests.get(f"{base}/2010-04-01/Nothing", auth=auth).json()["code"] == 20404

        denied = requests.get(f"{base}{ACCOUNT}/Conferences.json", auth=(ACCOUNT_SID, "wrong"))
        assert denied.status_code == 401 and denied.json()["code"] == 20003
        assert requests.get(f"{base}{ACCOUNT}/Conferences.json").status_code == 401

        with pytest.raises(TwilioRestException) as caught:
            client_for(sim).conferences(f"CF{'0' * 32}").fetch()
        assert (caught.value.status, caught.value.code) == (404, 20404)

        bad = requests.post(f"{base}{ACCOUNT}/Conferences/CF{'0' * 32}.json",
                            data={"Status": "paused"}, auth=auth)
        assert bad.status_code == 400 and bad.json()["code"] == 20422


@concurrently
def test_rest_bad_parameters_on_calls_and_participants(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room())
    outcomes: dict[str, Any] = {}

    def probe(received: Received) -> str:
        if received.params["StatusCallbackEvent"] == "participant-join":
            p, auth = received.params, (ACCOUNT_SID, AUTH_TOKEN)
            base = outcomes["base"] + ACCOUNT
            member = f"{base}/Conferences/{p['ConferenceSid']}/Participants/{p['CallSid']}.json"
            outcomes["muted"] = requests.post(member, data={"Muted": "maybe"}, auth=auth)
            outcomes["url"] = requests.post(f"{base}/Calls/{p['CallSid']}.json",
                                            data={"Url": "not a url"}, auth=auth)
            outcomes["twiml"] = requests.post(f"{base}/Calls/{p['CallSid']}.json",
                                              data={"Twiml": "<Response><Nope/></Response>"},
                                              auth=auth)
        return ""
    gateway.routes["/events"] = probe
    yield scenario([call("alice", hangup_at=1.0)],
             before=lambda sim: outcomes.update(base=sim.api_base_url))
    assert (outcomes["muted"].status_code, outcomes["muted"].json()["code"]) == (400, 20422)
    assert (outcomes["url"].status_code, outcomes["url"].json()["code"]) == (400, 21205)
    assert (outcomes["twiml"].status_code, outcomes["twiml"].json()["code"]) == (400, 12100)


def test_rest_recording_fetch_and_media(gateway: FakeGateway) -> None:
    gateway.twiml("/twilio/voice", room(record="record-from-start",
                                        recordingStatusCallback="/rec"))
    data = {"duration": 5.0, "call": two_in_a_room(alice=1.8, bob=1.8)}
    with Simulator(gateway.base, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as sim:
        sim.run(scenario_from_dict(data))
        (done,) = (r.params for r in gateway.requests_to("/rec"))
        recording = client_for(sim).recordings(done["RecordingSid"]).fetch()
        assert (recording.status, recording.duration, recording.source) == (
            "completed", "1", "Conference")
        assert recording.conference_sid == done["ConferenceSid"]
        auth = (ACCOUNT_SID, AUTH_TOKEN)
        mp3 = requests.get(done["RecordingUrl"] + ".mp3", auth=auth)
        wav = requests.get(done["RecordingUrl"] + ".wav", auth=auth)
        plain = requests.get(done["RecordingUrl"], auth=auth)
        assert (mp3.status_code, mp3.headers["Content-Type"]) == (200, "audio/mpeg")
        assert mp3.content[:2] == b"\xff\xfb"
        assert wav.headers["Content-Type"] == "audio/x-wav" and wav.content[:4] == b"RIFF"
        assert plain.headers["Content-Type"] == "audio/x-wav"
        assert requests.get(done["RecordingUrl"] + ".mp3").status_code == 401


@concurrently
def test_every_rest_call_is_in_the_transcript(gateway: FakeGateway) -> Run:
    gateway.twiml("/twilio/voice", room())
    acting = Gateway(gateway, "participant-join", lambda client, p: client.conferences.list())
    transcript = yield run_with(acting, [call("alice", hangup_at=1.0)])
    (listed,) = transcript.events(type="rest")
    assert (listed["method"], listed["path"], listed["status"]) == (
        "GET", f"{ACCOUNT}/Conferences.json", 200)


@concurrently
def test_rest_cancel_while_ringing_ends_the_call_canceled(gateway: FakeGateway) -> Run:
    api: dict[str, Client] = {}

    def answer(received: Received) -> str:
        api["client"].calls(received.params["CallSid"]).update(status="canceled")
        return "<Response><Say>Too late</Say></Response>"
    gateway.routes["/twilio/voice"] = answer

    def attach(sim: Simulator) -> None:
        api["client"] = client_for(sim)
    transcript = yield scenario([call("alice")], before=attach)
    assert transcript.call_end("alice")["status"] == "canceled"
    assert transcript.heard("alice") == []  # the answer came after the call was gone
    (status,) = gateway.requests_to("/twilio/status")
    assert (status.params["CallStatus"], status.params["CallDuration"]) == ("canceled", "0")
