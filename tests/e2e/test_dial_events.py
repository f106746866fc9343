"""A forward's requests as Twilio may order them: Twilio's status callbacks for the caller and
for the callee it was connected to come separately, in either order. Whatever comes first, the
app gets the callee's DialAction=hangup before the call's hangup request, once each."""

from __future__ import annotations

from tests.e2e.test_call_failures import end_call
from tests.support.gateway_server import twilio_call_params

CALLEE = "+14155550177"


def forward(gateway, customer_app) -> tuple[dict[str, str], dict[str, str]]:
    customer_app.route("/answer", '<Response><Dial callbackUrl="'
                       + customer_app.url("/legs") + f'"><Number>{CALLEE}</Number></Dial>'
                       "</Response>")
    for path in ("/legs", "/hangup"):
        customer_app.route(path, body="")
    caller = twilio_call_params()
    assert b"<Number" in gateway.signed_post("/twilio/voice", caller).content
    callee = {**twilio_call_params(to=CALLEE, from_=caller["From"]), "ParentCallSid":
              caller["CallSid"], "Direction": "outbound-dial", "CallStatus": "in-progress"}
    events = gateway.url + "/twilio/dial/events?step=1"
    assert gateway.session.post(events, data=callee, headers={
        "X-Twilio-Signature": gateway.validator.compute_signature(events, callee)}
    ).status_code == 204
    return caller, callee


def requests_of(customer_app, n: int) -> list[tuple[str, str | None]]:
    customer_app.wait_for(lambda requests: len(requests) >= n, timeout=15)
    return [(r.path, r.params.get("DialAction")) for r in customer_app.requests]


def test_the_callers_end_reported_first_still_sends_the_callees_hangup_first(
        gateway, customer_app):
    caller, callee = forward(gateway, customer_app)
    end_call(gateway, caller, "completed", duration="9")
    # The callee's own completed event, later: already reported, not sent again.
    events = gateway.url + "/twilio/dial/events?step=1"
    done = {**callee, "CallStatus": "completed", "CallDuration": "7"}
    gateway.session.post(events, data=done, headers={
        "X-Twilio-Signature": gateway.validator.compute_signature(events, done)})
    assert requests_of(customer_app, 5) == [
        ("/answer", None), ("/legs", "answer"), ("/legs", "connected"), ("/legs", "hangup"),
        ("/hangup", None)]
    assert all(r.signatures_valid for r in customer_app.requests)
