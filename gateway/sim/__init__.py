"""A faithful local Twilio voice simulator: the ground truth of the gateway's end-to-end tests.

It talks to a gateway only as Twilio would, over loopback HTTP and WebSocket: signed voice
webhooks, strict TwiML execution (Say, Play, Pause, Redirect, Hangup, Reject, Gather, Record,
Dial with Conference, Start/Stop Stream), a conference engine with Twilio's status callbacks and
recordings, call recordings (Record, REST) whose files hold what the caller said,
a REST API that twilio-python can talk to, Media Streams with in-band DTMF, and the number's call
status callback. Rules and the choices made where Twilio's docs are silent: docs/simulator.md.

Python API (the CLI is `gateway simulate`, see `cli.py`):

    from gateway.sim import Simulator, load_scenario, scenario_from_dict

    scenario = scenario_from_dict({"duration": 5.0, "call": [
        {"name": "alice", "from": "+14155550101", "to": "+14155550100", "hangup_at": 3.0}]})
    with Simulator("http://127.0.0.1:8000", account_sid=AC, auth_token=TOKEN,
                   api_port=0, voice_path="/twilio/voice", status_path="/twilio/status") as sim:
        client.api.base_url = sim.api_base_url      # twilio.rest.Client, for the gateway
        transcript = sim.run(scenario)

    transcript.ok                                   # no error events
    transcript.errors                               # [{"type": "error", "code": 11200, ...}]
    transcript.heard("alice")                       # [("say", "Welcome"), ("beep", "enter")]
    transcript.events(type="conference", event="participant-join")
    transcript.events                               # every event, in order (also callable)

`Simulator` options: `webhook_timeout` (Twilio's 15 s), `play_seconds` (nominal length of one
<Play> loop, default 1 s), `workers` (webhook threads), `echo` (called with each event as it
happens; the CLI prints them). `load_scenario(path, mappings=DIR)` and
`scenario_from_dict(data)` raise `ScenarioInvalid` (with `.errors`: file, key, reason).
"""

from .scenario import (
    CallSpec,
    KeyPress,
    Scenario,
    ScenarioError,
    ScenarioInvalid,
    Speech,
    TwilioFaults,
    load_scenario,
    scenario_from_dict,
)
from .simulator import Simulator
from .transcript import Event, EventList, Transcript

__all__ = [
    "CallSpec",
    "Event",
    "EventList",
    "KeyPress",
    "Scenario",
    "ScenarioError",
    "ScenarioInvalid",
    "Simulator",
    "Speech",
    "Transcript",
    "TwilioFaults",
    "load_scenario",
    "scenario_from_dict",
]
