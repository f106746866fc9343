"""The end of a call whose processing the store interrupted is processed again.

Found by the fault campaign (a full disk): the status callback flagged the call ended, then the
store failed before the hangup request was queued; the event was spooled and replayed, and the
replay took the call for one already ended (Twilio's duplicate): the app never got its hangup
request. Here the store is left as the interrupted attempt left it (the call flagged, nothing
queued), then Twilio's final status arrives as the spool replays it."""

from __future__ import annotations

import time

from gateway.calls import Calls
from gateway.state import open_store
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import (
    APP_AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)


def test_an_end_interrupted_before_its_hangup_request_still_sends_it(tmp_path):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        app.route("/answer", "<Response><Speak>Hello</Speak></Response>")
        app.route("/hangup", body="")
        with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"),
                                                      hangup_url=app.url("/hangup"))]) as gw:
            params = twilio_call_params()
            assert gw.signed_post("/twilio/voice", params).status_code == 200
            store = open_store(gw.store_url)
            assert Calls(store).mark_ended(params["CallSid"]) is not None  # the first half
            store.close()

            final = dict(params, CallStatus="completed", CallDuration="7")
            assert gw.signed_post("/twilio/status", final).status_code == 204
            hangup = app.wait_for_request("/hangup", timeout=15)
            assert hangup.params["CallUUID"] == app.requests_to("/answer")[0].params["CallUUID"]

            # Once queued, the same end again is Twilio's duplicate: nothing more is sent.
            assert gw.signed_post("/twilio/status", final).status_code == 204
            time.sleep(1.0)
            assert app.count("/hangup") == 1
