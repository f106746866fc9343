"""Forwarding calls end to end: Twilio simulator <-> gateway <-> customer app, real HTTP.

A Plivo `<Dial>` rings the scenario's callees through Twilio's `<Dial><Number|Sip>`; the app gets
Plivo's action parameters (DialStatus, DialRingStatus, DialHangupCause, DialALegUUID,
DialBLegUUID) and, with a callbackUrl, DialAction answer / connected / hangup in that order,
before the action; confirmSound + confirmKey make the callee press the key (the whisper), and
without it that leg is dropped. Every request the app receives is checked with the plivo SDK's
validators.
"""

from __future__ import annotations

import pytest

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, app_config
from tests.support.stack import Stack

NAMES = ["answer", "busy", "silent", "both", "confirm", "refuse", "confirm-fails", "sip",
         "bad-number", "eleven", "sip-elsewhere", "keys", "callee-keys", "gone", "redis"]
NUMBERS = {name: f"+1415557{i + 1:04d}" for i, name in enumerate(NAMES)}
ACCOUNT = "MA00000000000000000011"
ALICE = "+14155559001"  # answers after a second, hangs up two seconds later
BUSY = "+14155559002"
SILENT = "+14155559003"  # rings until the Dial's timeout
CAREFUL = "+14155559004"  # answers, then presses 5
CARELESS = "+14155559005"  # answers, then presses 3
SIP_BOB = "sip:bob@sip.example.com"
PATIENT = "+14155559006"  # answers at once, stays five seconds
TYPIST = "+14155559007"  # answers at once, types 1 2 two seconds later, stays five seconds

CALLEES = [
    {"number": ALICE, "answers_after": 1.0, "hangup_after": 2.0},
    {"number": BUSY, "busy": True},
    {"number": SILENT, "no_answer": True},
    {"number": CAREFUL, "answers_after": 1.0, "hangup_after": 4.0,
     "keys": [{"at": 1.5, "digits": "5"}]},
    {"number": CARELESS, "answers_after": 1.0, "keys": [{"at": 1.5, "digits": "3"}]},
    {"number": SIP_BOB, "answers_after": 0.5, "hangup_after": 1.5},
    {"number": PATIENT, "answers_after": 0.3, "hangup_after": 5.0},
    {"number": TYPIST, "answers_after": 0.3, "hangup_after": 5.0,
     "keys": [{"at": 2.0, "digits": "12"}]},
]


def apps_for(app: CustomerApp) -> list[dict]:
    return [app_config(app.url(f"/answer/{name}"), name=name, numbers=(NUMBERS[name],),
                       account=ACCOUNT, hangup_url=app.url("/hangup"),
                       allowed_hosts=["127.0.0.1", "sip.example.com"]) for name in NAMES]


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        for path in ("/hangup", "/legs", "/quiet"):
            customer_app.route(path, body="")
        customer_app.route("/dialed", "<Response><Speak>Thanks for calling.</Speak></Response>")
        customer_app.route("/confirm", "<Response><Speak>Press 5 to take this call.</Speak>"
                                       "<Hangup/></Response>")
        customer_app.route("/confirm-broken", "oops", status=500)
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("dial"), apps=apps_for(app)) as running:
        yield running


def run(stack: Stack, name: str, duration: float = 10.0, twilio: dict | None = None, **caller):
    return stack.run({"duration": duration, "callee": CALLEES, "twilio": twilio or {}, "call": [
        {"name": name, "from": "+12025550142", "to": NUMBERS[name], **caller}]})


def dial_doc(app: CustomerApp, numbers: list[str], **attributes: str) -> str:
    attrs = " ".join(f'{k}="{v}"' for k, v in attributes.items())
    nouns = "".join(f'<User sendDigits="12">{n}</User>' if n.startswith("sip:")
                    else f"<Number>{n}</Number>" for n in numbers)
    return (f"<Response><Speak>Please wait while we connect you.</Speak><Dial {attrs}>{nouns}"
            "</Dial><Speak>Nobody took the call.</Speak></Response>")


def of_call(app: CustomerApp, path: str, call_uuid: str) -> list[dict[str, str]]:
    found = [r for r in app.requests_to(path) if r.params.get("CallUUID") == call_uuid]
    for request in found:
        assert request.signatures_valid, (path, request.signature_error)
    return [r.params for r in found]


def call_uuid_of(app: CustomerApp, name: str) -> str:
    answer = app.requests_to(f"/answer/{name}")[-1]
    assert answer.signatures_valid
    return answer.params["CallUUID"]


def test_a_forward_that_answers_sends_callbacks_in_order_then_the_action(stack, app):
    app.route("/answer/answer", dial_doc(app, [ALICE], action=app.url("/dialed"),
                                         callbackUrl=app.url("/legs")))
    t = run(stack, "answer")
    assert t.ok, t.errors
    heard = t.heard("answer")
    assert ("say", "Thanks for calling.") in heard
    assert ("say", "Nobody took the call.") not in heard
    uuid = call_uuid_of(app, "answer")
    app.wait_for(lambda _: len(of_call(app, "/hangup", uuid)) == 1, timeout=10)
    (action,) = of_call(app, "/dialed", uuid)
    assert action["DialStatus"] == "completed" and action["DialRingStatus"] == "true"
    assert action["DialHangupCause"] == "NORMAL_CLEARING"
    assert action["DialALegUUID"] == uuid and action["DialBLegUUID"]
    assert int(action["DialBLegDuration"]) >= 1
    legs = of_call(app, "/legs", uuid)
    assert [p["DialAction"] for p in legs] == ["answer", "connected", "hangup"]
    for params in legs:
        assert params["DialALegUUID"] == uuid
        assert params["DialBLegUUID"] == action["DialBLegUUID"]
        assert (params["DialBLegTo"], params["DialBLegFrom"]) == (ALICE[1:], "12025550142")
    assert legs[2]["DialBLegHangupCause"] == "NORMAL_CLEARING"
    assert legs[2]["DialBLegBillDuration"] == "60"
    # Plivo's order for one call: the leg's callbacks, the action, then the call's hangup.
    order = [r.path for r in app.requests if r.params.get("CallUUID") == uuid]
    assert order == ["/answer/answer", "/legs", "/legs", "/legs", "/dialed", "/hangup"], order


def test_a_busy_number_tells_the_action_and_redirect_false_goes_on(stack, app):
    app.route("/answer/busy", dial_doc(app, [BUSY], action=app.url("/quiet"),
                                       redirect="false", callbackUrl=app.url("/legs")))
    t = run(stack, "busy")
    assert t.ok, t.errors
    assert ("say", "Nobody took the call.") in t.heard("busy")  # the next element
    uuid = call_uuid_of(app, "busy")
    app.wait_for(lambda _: len(of_call(app, "/quiet", uuid)) == 1, timeout=10)
    (action,) = of_call(app, "/quiet", uuid)
    assert (action["DialStatus"], action["DialRingStatus"], action["DialHangupCause"],
            action["DialBLegUUID"]) == ("busy", "false", "USER_BUSY", "")
    assert of_call(app, "/legs", uuid) == []  # nobody answered: no DialAction callback


def test_no_answer_rings_out_at_the_timeout_and_the_document_goes_on(stack, app):
    app.route("/answer/silent", dial_doc(app, [SILENT], timeout="2"))
    t = run(stack, "silent", duration=8.0)
    assert t.ok, t.errors
    heard = t.heard("silent")
    assert heard.index(("say", "Nobody took the call.")) > heard.index(
        ("say", "Please wait while we connect you."))
    legs = [e for e in t.events(type="call-end") if e["call"] == f"silent>{SILENT}"]
    assert [e["status"] for e in legs] == ["no-answer"]


def test_two_numbers_ring_at_once_and_the_first_to_answer_is_connected(stack, app):
    app.route("/answer/both", dial_doc(app, [SILENT, ALICE], action=app.url("/dialed"),
                                       callbackUrl=app.url("/legs")))
    t = run(stack, "both")
    assert t.ok, t.errors
    ends = {e["call"]: e["status"] for e in t.events(type="call-end")}
    assert ends[f"both>{SILENT}"] == "canceled" and ends[f"both>{ALICE}"] == "completed"
    uuid = call_uuid_of(app, "both")
    (action,) = of_call(app, "/dialed", uuid)
    assert action["DialStatus"] == "completed"
    legs = of_call(app, "/legs", uuid)
    assert [p["DialAction"] for p in legs] == ["answer", "connected", "hangup"]
    assert {p["DialBLegTo"] for p in legs} == {ALICE[1:]}


def test_confirm_key_pressed_connects_the_callee(stack, app):
    app.route("/answer/confirm", dial_doc(app, [CAREFUL], action=app.url("/dialed"),
                                          callbackUrl=app.url("/legs"),
                                          confirmSound=app.url("/confirm"), confirmKey="5"))
    t = run(stack, "confirm")
    assert t.ok, t.errors
    assert ("say", "Press 5 to take this call.") in t.heard(f"confirm>{CAREFUL}")
    assert ("say", "Thanks for calling.") in t.heard("confirm")
    uuid = call_uuid_of(app, "confirm")
    assert of_call(app, "/confirm", uuid)  # fetched with POST, signed, as Plivo does
    (action,) = of_call(app, "/dialed", uuid)
    assert action["DialStatus"] == "completed" and action["DialBLegUUID"]
    assert [p["DialAction"] for p in of_call(app, "/legs", uuid)] == [
        "answer", "connected", "hangup"]


# Twilio's docs do not say what the caller's Dial reports when its only callee declined in the
# whisper: the simulator plays both, and the app gets Plivo's answer either way.
@pytest.mark.parametrize("declined_dial", ["no-answer", "completed"])
def test_confirm_key_not_pressed_drops_that_leg(stack, app, declined_dial):
    app.route("/answer/refuse", dial_doc(app, [CARELESS], action=app.url("/dialed"),
                                         callbackUrl=app.url("/legs"),
                                         confirmSound=app.url("/confirm"), confirmKey="5"))
    t = run(stack, "refuse", twilio={"declined_dial": declined_dial})
    assert t.ok, t.errors
    uuid = call_uuid_of(app, "refuse")
    (action,) = of_call(app, "/dialed", uuid)
    assert action["DialStatus"] == "no-answer" and action["DialBLegUUID"] == ""
    # It answered (so the app heard of it), was never connected, and was hung up.
    assert [p["DialAction"] for p in of_call(app, "/legs", uuid)] == ["answer", "hangup"]
    assert ("say", "Thanks for calling.") in t.heard("refuse")


def test_a_confirm_sound_that_fails_never_connects_the_callee(stack, app):
    app.route("/answer/confirm-fails", dial_doc(app, [CAREFUL],
                                                confirmSound=app.url("/confirm-broken"),
                                                confirmKey="5"))
    t = run(stack, "confirm-fails")
    assert t.ok, t.errors
    assert ("say", "Nobody took the call.") in t.heard("confirm-fails")
    leg = f"confirm-fails>{CAREFUL}"
    assert t.heard(leg) == []  # the callee heard nothing and was hung up
    assert t.call_end(leg)["status"] == "completed"


def test_a_sip_user_gets_plivos_headers_and_its_digits(stack, app):
    app.route("/answer/sip", dial_doc(app, [SIP_BOB], action=app.url("/dialed"),
                                      sipHeaders="team=sales"))
    t = run(stack, "sip")
    assert t.ok, t.errors
    (dial,) = [e for e in t.events(type="dial") if e.get("noun") == "Sip"]
    assert (dial["target"], dial["headers"]) == (SIP_BOB, "X-PH-team=sales")
    assert ("play", "digits 12") in t.heard(f"sip>{SIP_BOB}")  # the whisper's <Play digits>
    assert ("say", "Thanks for calling.") in t.heard("sip")


@pytest.mark.parametrize(("name", "dial", "reason"), [
    ("bad-number", "<Dial><Number>415-555-0100</Number></Dial>", "app-failed"),
    ("eleven", "<Dial>" + "".join(f"<Number>1415555{n:04d}</Number>" for n in range(11))
     + "</Dial>", "cannot-run; element=Dial; line=1"),
    ("sip-elsewhere", "<Dial><User>sip:bob@pbx.evil.example</User></Dial>",
     "cannot-run; element=User; line=1"),
])
def test_a_dial_that_cannot_be_placed_is_an_apology_and_nothing_rings(stack, app, name, dial,
                                                                       reason):
    app.route(f"/answer/{name}", f"<Response><Speak>Connecting you.</Speak>{dial}</Response>")
    t = run(stack, name, duration=6.0)
    (failed,) = t.failed_calls
    assert failed["reason"] == reason
    assert [kind for kind, _ in t.heard(name)] == ["say"]  # the apology, not "Connecting you."
    assert ("say", "Connecting you.") not in t.heard(name)
    assert t.events(type="dial") == []  # nothing half-done: nobody was rung
    uuid = call_uuid_of(app, name)
    app.wait_for(lambda _: len(of_call(app, "/hangup", uuid)) == 1, timeout=10)


def test_digits_match_reports_the_callers_pattern_between_connected_and_hangup(stack, app):
    app.route("/answer/keys", dial_doc(app, [PATIENT], action=app.url("/dialed"),
                                       callbackUrl=app.url("/legs"), digitsMatch="99,#0"))
    t = run(stack, "keys", keys=[{"at": 4.5, "digits": "99"}])
    assert t.ok, t.errors
    uuid = call_uuid_of(app, "keys")
    legs = of_call(app, "/legs", uuid)
    assert [p["DialAction"] for p in legs] == ["answer", "connected", "digits", "hangup"]
    digits = legs[2]
    assert (digits["DialDigitsMatch"], digits["DialDigitsPressedBy"]) == ("99", "ALeg")
    assert digits["DialBLegUUID"] == legs[1]["DialBLegUUID"] != ""
    assert ("say", "Thanks for calling.") in t.heard("keys")


def test_digits_match_b_leg_reports_the_callees_pattern(stack, app):
    app.route("/answer/callee-keys", dial_doc(app, [TYPIST], action=app.url("/dialed"),
                                              callbackUrl=app.url("/legs"),
                                              digitsMatchBLeg="12"))
    t = run(stack, "callee-keys")
    assert t.ok, t.errors
    uuid = call_uuid_of(app, "callee-keys")
    legs = of_call(app, "/legs", uuid)
    assert [p["DialAction"] for p in legs] == ["answer", "connected", "digits", "hangup"]
    digits = legs[2]
    assert (digits["DialDigitsMatch"], digits["DialDigitsPressedBy"]) == ("12", "BLeg")
    assert digits["DialBLegUUID"] == legs[1]["DialBLegUUID"] != ""


def test_a_caller_who_hangs_up_while_connected_gets_the_legs_hangup_before_the_calls(stack, app):
    app.route("/answer/gone", dial_doc(app, [PATIENT], action=app.url("/dialed"),
                                       callbackUrl=app.url("/legs")))
    t = run(stack, "gone", hangup_at=4.0)
    assert t.ok, t.errors
    uuid = call_uuid_of(app, "gone")
    app.wait_for(lambda _: len(of_call(app, "/hangup", uuid)) == 1, timeout=10)
    order = [(r.path, r.params.get("DialAction")) for r in app.requests
             if r.params.get("CallUUID") == uuid]
    # Plivo requests no action after the caller hung up; the callee's hangup comes first.
    assert order == [("/answer/gone", None), ("/legs", "answer"), ("/legs", "connected"),
                     ("/legs", "hangup"), ("/hangup", None)], order
    hangup = of_call(app, "/legs", uuid)[2]
    assert hangup["DialBLegHangupCause"] == "NORMAL_CLEARING"
    assert int(hangup["DialBLegDuration"]) >= 1


@pytest.mark.redis
def test_a_forward_on_redis_reaches_the_app_in_plivos_order(app, tmp_path_factory,
                                                            redis_server):
    app.route("/answer/redis", dial_doc(app, [ALICE], action=app.url("/dialed"),
                                        callbackUrl=app.url("/legs"), confirmKey="5",
                                        confirmSound=app.url("/confirm")))
    callees = [{**c, "keys": [{"at": 0.5, "digits": "5"}]} if c["number"] == ALICE else c
               for c in CALLEES]
    with Stack(tmp_path_factory.mktemp("dial-redis"), apps=apps_for(app),
               store_url=redis_server.url(db=6)) as redis_stack:
        t = redis_stack.run({"duration": 10.0, "callee": callees, "call": [
            {"name": "red", "from": "+12025550142", "to": NUMBERS["redis"]}]})
        assert t.ok, t.errors
        uuid = call_uuid_of(app, "redis")
        app.wait_for(lambda _: len(of_call(app, "/hangup", uuid)) == 1, timeout=15)
    order = [(r.path, r.params.get("DialAction")) for r in app.requests
             if r.params.get("CallUUID") == uuid and r.path != "/confirm"]
    assert order == [("/answer/redis", None), ("/legs", "answer"), ("/legs", "connected"),
                     ("/legs", "hangup"), ("/dialed", None), ("/hangup", None)], order
    assert of_call(app, "/dialed", uuid)[0]["DialStatus"] == "completed"
