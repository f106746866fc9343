"""`<Message>` end to end: the gateway sends the SMS through the simulator's Messages API and turns
Twilio's status callbacks into Plivo's delivery reports, signed as Plivo signs (checked with the
plivo SDK's validators). The simulator lists what it accepted as Twilio does (twilio-python's
`client.messages.list()`)."""

from __future__ import annotations

import pytest
from twilio.rest import Client

from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import ACCOUNT_SID, APP_AUTH_TOKEN, AUTH_TOKEN, app_config
from tests.support.plivo_signed import every_request_is_signed_as_plivo_signs  # noqa: F401
from tests.support.stack import Stack

NUMBER = "+14155550901"
SENDER = "+14155550999"


@pytest.fixture(scope="module")
def app():
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as customer_app:
        customer_app.route("/sms-status", body="")
        customer_app.route("/hangup", body="")
        yield customer_app


@pytest.fixture(scope="module")
def stack(app, tmp_path_factory):
    apps = [app_config(app.url("/answer"), numbers=(NUMBER,), hangup_url=app.url("/hangup"),
                       sms_from=SENDER)]
    with Stack(tmp_path_factory.mktemp("message"), apps=apps) as running:
        yield running


@pytest.fixture(scope="module")
def twilio(stack) -> Client:
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = stack.simulator.api_base_url
    return client


def call(name: str) -> dict:
    return {"name": name, "from": "+12025550191", "to": NUMBER}


def reports(app: CustomerApp, to: str) -> list[dict[str, str]]:
    out = []
    for request in app.requests_to("/sms-status"):
        if request.params.get("To") == to:
            assert request.signatures_valid  # the plivo SDK's V2 and V3 validators
            out.append(request.params)
    return out


def sent_to(twilio: Client, to: str) -> list:
    return [m for m in twilio.messages.list() if m.to == to]


def test_a_message_is_sent_from_the_mappings_number_and_its_reports_arrive_in_order(
        stack, app, twilio):
    app.route("/answer", f'<Response><Message src="14155550901" dst="14155550123" '
                         f'callbackUrl="{app.url("/sms-status")}">Your code is 1234</Message>'
                         "<Speak>We sent you a text</Speak></Response>")
    t = stack.run({"duration": 5.0, "call": [call("ana")]})
    assert t.ok, t.errors
    assert [d for _, d in t.heard("ana")] == ["We sent you a text"]
    (message,) = sent_to(twilio, "+14155550123")
    assert (message.from_, message.body) == (SENDER, "Your code is 1234")
    app.wait_for(lambda _: len(reports(app, "14155550123")) == 3, timeout=15)
    got = reports(app, "14155550123")
    assert [r["Status"] for r in got] == ["queued", "sent", "delivered"]
    assert [r["Sequence"] for r in got] == ["1", "2", "3"]
    assert {r["MessageUUID"] for r in got} != {""} and len({r["MessageUUID"] for r in got}) == 1
    assert got[0]["From"] == SENDER.lstrip("+") and got[0]["Type"] == "sms"


def test_each_destination_gets_its_own_message_and_a_refused_number_is_reported_failed(
        stack, app, twilio):
    app.route("/answer", f'<Response><Message dst="14155550124&lt;15005550009" callbackUrl='
                         f'"{app.url("/sms-status")}">Two of you</Message></Response>')
    t = stack.run({"duration": 4.0, "call": [call("ben")]})
    assert t.ok, t.errors
    assert len(sent_to(twilio, "+14155550124")) == 1
    assert sent_to(twilio, "+15005550009") == []  # Twilio refused it: "not SMS-capable"
    app.wait_for(lambda _: reports(app, "15005550009") and len(
        reports(app, "14155550124")) == 3, timeout=15)
    (failed,) = reports(app, "15005550009")
    assert (failed["Status"], failed["ErrorCode"]) == ("failed", "21614")
    assert "refused by Twilio (21614)" in stack.gateway.logs()


def test_a_message_of_ten_thousand_characters_is_a_clear_error_and_nothing_is_sent(
        stack, app, twilio):
    before = len(twilio.messages.list())
    app.route("/answer", f'<Response><Speak>Hello</Speak><Message dst="14155550125">'
                         f'{"x" * 10_000}</Message></Response>')
    t = stack.run({"duration": 4.0, "call": [call("cai")]})
    (failed,) = t.failed_calls
    assert failed["reason"] == "app-failed"
    assert "Hello" not in [d for _, d in t.heard("cai")]  # nothing half-done
    assert len(twilio.messages.list()) == before
    assert "10,000 characters: Twilio sends at most 1,600; nothing was sent" in (
        stack.gateway.logs())


def test_an_mms_cannot_run_and_says_why(stack, app, twilio):
    before = len(twilio.messages.list())
    app.route("/answer", '<Response><Message dst="14155550126" type="mms">Look</Message>'
                         "</Response>")
    t = stack.run({"duration": 4.0, "call": [call("dee")]})
    (failed,) = t.failed_calls
    assert failed["reason"] == "cannot-run; element=Message; line=1"
    assert len(twilio.messages.list()) == before
    assert "the gateway sends SMS only" in stack.gateway.logs()
