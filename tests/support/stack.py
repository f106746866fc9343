"""The whole chain on loopback, for end-to-end tests through the Twilio simulator.

    customer app (Plivo XML, callbacks)  <-  gateway (gateway serve)  <->  Twilio simulator

`Stack` starts the simulator's REST API on a known port, the gateway pointed at it
(TWILIO_API_BASE_URL), and offers `run(scenario_dict)` -> Transcript.

    with CustomerApp(auth_token=APP_AUTH_TOKEN) as app, Stack(tmp_path, apps=[...]) as stack:
        transcript = stack.run({"duration": 6.0, "call": [{"name": "alice", ...}]})
"""

from __future__ import annotations

from pathlib import Path

from gateway.sim import Simulator, Transcript, scenario_from_dict
from tests.support.gateway_server import ACCOUNT_SID, AUTH_TOKEN, GatewayServer, free_port


class Stack:
    def __init__(self, workdir: Path, *, apps: list[dict], store_url: str | None = None,
                 budget: float = 5.0, env: dict[str, str] | None = None,
                 **simulator_options):
        self.api_port = free_port()
        self.gateway = GatewayServer(workdir, apps=apps, store_url=store_url, budget=budget,
                                     api_base_url=f"http://127.0.0.1:{self.api_port}", env=env)
        self.simulator = Simulator(self.gateway.url, account_sid=ACCOUNT_SID,
                                   auth_token=AUTH_TOKEN, api_port=self.api_port,
                                   **simulator_options)

    def start(self) -> Stack:
        self.simulator.start()
        try:
            self.gateway.start()
        except Exception:
            self.simulator.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.gateway.stop()
        finally:
            self.simulator.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def run(self, scenario: dict) -> Transcript:
        return self.simulator.run(scenario_from_dict(scenario))
