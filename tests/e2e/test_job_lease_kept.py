"""A job whose lease the job worker could not give back (the store failed with the job) runs
again as soon as it is due, not when the lease runs out.

Found by the fault campaign (Redis restarts): a member's flush delivered its enter, then the
store failed before the outbox was advanced and before the lease was released; every later run
of the job in the same worker took the worker's own lease for a live one, for the lease's 90 s,
and the call's hangup request went before the member's exit. Here the store holds such a job
(the lease the worker's, due 6 s ago) and its callback, as the failed run left them."""

from __future__ import annotations

import socket
import time

from gateway.state import open_store
from tests.support.customer_app import CustomerApp
from tests.support.gateway_server import APP_AUTH_TOKEN, GatewayServer, app_config


def test_a_lease_the_worker_kept_does_not_hold_its_job(tmp_path):
    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app:
        app.route("/cb", body="")
        with GatewayServer(tmp_path, apps=[app_config(app.url("/answer"))]) as gw:
            (worker,) = gw.pids_running("gateway.cli worker")
            stream, now = "member:member-1-CA" + "e" * 32, time.time()
            store = open_store(gw.store_url)
            store.put(f"outbox:{stream}", {"done": 0, "items": {"1": {
                "url": app.url("/cb"), "method": "POST", "app": "support", "kind": "enter",
                "params": {"CallUUID": "kept-lease", "ConferenceAction": "enter"},
                "queued_at": now - 6}}}, 3600)
            store.put(f"job:flush:{stream}", {
                "kind": "flush", "args": {"stream": stream}, "due_at": now - 6,
                "lease_until": now + 84, "owner": f"{socket.gethostname()}:{worker}",
                "created_at": now - 6}, 3600)
            store.close()
            callback = app.wait_for_request("/cb", timeout=20)  # the sweep's round: 5 s
            assert callback.params["CallUUID"] == "kept-lease"
