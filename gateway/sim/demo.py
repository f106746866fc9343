"""`gateway demo`: the seed's seven `<Conference>` examples and an IVR story, end to end, on
this machine alone.

The eighth story is the normal shape of a Plivo app: a GetDigits menu in front of a conference
room (press 1) and a voicemail with transcription (press 2). It starts the example Plivo app
(`example_app.py`), the gateway exactly as `gateway serve` runs it
(a subprocess on the embedded SQLite store in a temporary directory, with generated tokens and
mappings: one app per example and role, one Plivo account per example), and the Twilio simulator
in process. Then it plays one scenario in which every example's callers call at once, checks each
call against what the example's documentation promises, and tells each call's story in time
order: who joined which room (as the app wrote it), what each caller heard, what the app received.

    gateway demo                # every example; exit status 0 when each went as documented
    gateway demo --example 2    # only one (8: the IVR story)
    gateway demo --json         # the simulator's transcript, one JSON object per line
    gateway demo --keep         # keep the temporary directory (gateway log, store) and say where
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import requests

from ..examples import SEED_EXAMPLES, SeedExample
from ..plivoxml import Conference, parse_document
from ..translate.rooms import twilio_room_name
from .example_app import (
    IVR_CHOICES,
    IVR_JOINING,
    IVR_MENU,
    IVR_ROOM,
    IVR_STORY,
    IVR_THANKS,
    IVR_VOICEMAIL,
    NEXT_STEP_MESSAGE,
    WAIT_MESSAGE,
    AppRequest,
    ExampleApp,
    answer_path,
)
from .scenario import scenario_from_dict
from .simulator import Simulator
from .transcript import Event, Transcript

APP_TOKEN_ENV = "DEMO_PLIVO_AUTH_TOKEN"
GATEWAY_START_TIMEOUT = 30.0
GATEWAY_STOP_TIMEOUT = 10.0
CALLBACKS_TIMEOUT = 20.0  # after the run: the hangup callbacks and the transcription still owed
SCENARIO_SECONDS = 16.0  # the longest story (the IVR) needs about 13 s; a bound, not a wait
# The seven examples of the documentation, then the IVR story: story n is STORIES[n - 1].
STORIES: tuple[SeedExample, ...] = (*SEED_EXAMPLES, IVR_STORY)
IVR = IVR_STORY.number
VOICEMAIL_TEXT = "please call me back tomorrow morning"


class DemoFailed(Exception):
    """The demo could not run (a part did not start); the message says which and why."""


class Interrupted(Exception):
    """SIGTERM (or a second signal) asked the demo to stop: clean up and exit."""


# --- the callers of each example --------------------------------------------------------------
@dataclass(frozen=True)
class Caller:
    """One scripted caller: who, running which role's document, when they call and hang up."""

    name: str
    role: str
    at: float
    hangup_at: float | None = None
    keys: tuple[tuple[float, str], ...] = ()
    speech: tuple[tuple[float, float, str], ...] = ()  # (from, to, what is said)


CALLERS: dict[int, tuple[Caller, ...]] = {
    1: (Caller("alice", "caller", 0.0, hangup_at=4.0),
        Caller("bob", "caller", 1.5, hangup_at=5.0)),
    2: (Caller("guest", "participant", 0.0),
        Caller("moderator", "moderator", 3.0, hangup_at=6.0)),
    3: (Caller("carol", "caller", 0.0, hangup_at=4.0),
        Caller("dave", "caller", 1.0, hangup_at=4.5)),
    4: (Caller("erin", "caller", 0.0, hangup_at=4.5),
        Caller("frank", "caller", 2.5, hangup_at=6.5)),
    5: (Caller("customer", "customer", 0.0),
        Caller("operator", "operator", 3.0, hangup_at=6.0)),
    6: (Caller("grace", "caller", 0.0, keys=((3.0, "*"),)),),
    7: (Caller("heidi", "caller", 0.0, hangup_at=5.0, keys=((2.5, "99"),)),),
    # The menu prompt takes about 3 s; a key pressed during it is taken, as on Plivo.
    # Keys come late in the 3.5 s prompt, and kim speaks well after the beep (about 6 s), so a
    # busy machine's slower answers do not change the story.
    IVR: (Caller("ivan", "caller", 0.0, hangup_at=9.5, keys=((2.5, "1"),)),
          Caller("judy", "caller", 0.6, hangup_at=9.5, keys=((3.1, "1"),)),
          Caller("kim", "caller", 0.3, keys=((2.8, "2"), (10.0, "#")),
                 speech=((7.0, 9.5, VOICEMAIL_TEXT),))),
}


def account_of(example: int) -> str:
    """One Plivo account per example: examples 1 and 2 both use room 9876 and must not meet."""
    return f"MA{example:018d}"


def number_of(example: int, role: str) -> str:
    roles = [r for r, _ in STORIES[example - 1].documents]
    return f"+1415555{example:02d}{roles.index(role) + 1:02d}"


def phone_of(example: int, caller: Caller) -> str:
    return f"+1202555{example:02d}{CALLERS[example].index(caller) + 1:02d}"


# --- the gateway, as `gateway serve` runs it --------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_mappings(directory: Path, app: ExampleApp, examples: list[int]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["# Generated by `gateway demo`: one app per (example, role), one account per example."]
    for n in examples:
        for role, _ in STORIES[n - 1].documents:
            lines += [
                "", "[[app]]",
                f"name = {toml_string(f'example-{n}-{role}')}",
                f"account = {toml_string(account_of(n))}",
                f"numbers = [{toml_string(number_of(n, role))}]",
                f"answer_url = {toml_string(app.url(answer_path(n, role)))}",
                f"hangup_url = {toml_string(app.url('/hangup/'))}",
                f"auth_token_env = {toml_string(APP_TOKEN_ENV)}",
                'allowed_hosts = ["127.0.0.1"]',
            ]
    (directory / "demo.toml").write_text("\n".join(lines) + "\n")


class GatewayProcess:
    """`gateway serve` (gunicorn, the job worker, the side streams) in its own process group."""

    def __init__(self, workdir: Path, env: dict[str, str], port: int, media_port: int):
        self.workdir = workdir
        self.env = env
        self.url = f"http://127.0.0.1:{port}"
        self.media_health_url = f"http://127.0.0.1:{media_port}/healthz"
        self.log_path = workdir / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve"], env=self.env, cwd=self.workdir,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Its own group: Ctrl-C reaches the demo only, which then stops it in order.
                start_new_session=True)
        deadline = time.monotonic() + GATEWAY_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoFailed(f"the gateway exited with status {self.process.returncode} "
                                 f"while starting:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200 and \
                        requests.get(self.media_health_url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet
            time.sleep(0.1)
        raise DemoFailed(f"the gateway did not answer {self.url}/healthz within "
                         f"{GATEWAY_START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=GATEWAY_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        # gunicorn's workers and the job worker share the group: make sure none outlives it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no gateway log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join("    " + line for line in text[-lines:])

    def problems(self) -> list[str]:
        """Log lines the gateway wrote at ERROR level or with a traceback."""
        if not self.log_path.exists():
            return []
        # The gateway's own format ("... ERROR name: ...") and gunicorn's ("[ERROR]").
        markers = (" ERROR ", " CRITICAL ", "[ERROR]", "[CRITICAL]", "Traceback")
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if any(marker in line for marker in markers)]


# --- one run ----------------------------------------------------------------------------------
@dataclass
class Run:
    """Everything one demo run produced, for the story and the checks."""

    examples: list[int]
    transcript: Transcript
    requests: list[AppRequest]
    t0: float  # time.monotonic() of the transcript's t = 0
    app_base_url: str
    gateway_problems: list[str] = field(default_factory=list)
    callbacks_complete: bool = True


def scenario_for(examples: list[int]) -> dict[str, Any]:
    calls = []
    for n in examples:
        for caller in CALLERS[n]:
            call: dict[str, Any] = {"name": caller.name, "from": phone_of(n, caller),
                                    "to": number_of(n, caller.role), "at": caller.at}
            if caller.hangup_at is not None:
                call["hangup_at"] = caller.hangup_at
            if caller.keys:
                call["keys"] = [{"at": at, "digits": digits} for at, digits in caller.keys]
            if caller.speech:
                call["speech"] = [{"from": start, "to": end, "text": text}
                                  for start, end, text in caller.speech]
            calls.append(call)
    return {"duration": SCENARIO_SECONDS, "call": calls}


def run_demo(examples: list[int], workdir: Path, say: TextIO) -> Run:
    """Start the three parts, play the scenario, wait (bounded) for the callbacks, stop."""
    app_token = secrets.token_urlsafe(24)
    account_sid = "AC" + secrets.token_hex(16)
    auth_token = secrets.token_hex(16)
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    media_port = free_port()  # the side-stream server (digitsMatch), named directly: no proxy
    app = ExampleApp(app_token)
    simulator = Simulator(gateway_url, account_sid=account_sid, auth_token=auth_token,
                          api_port=0)
    gateway: GatewayProcess | None = None
    try:
        app.start()
        simulator.start()
        write_mappings(workdir / "mappings", app, examples)
        env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": account_sid, "TWILIO_AUTH_TOKEN": auth_token,
            "GATEWAY_PUBLIC_URL": gateway_url, "GATEWAY_MAPPINGS": str(workdir / "mappings"),
            "GATEWAY_STORE_URL": f"sqlite:///{workdir / 'gateway.db'}",
            "GATEWAY_SPOOL": str(workdir / "spool.db"),
            "TWILIO_API_BASE_URL": simulator.api_base_url, "PORT": str(gateway_port),
            "GATEWAY_BIND": "127.0.0.1",  # the demo's gateway is for this machine only
            "GATEWAY_MEDIA_PORT": str(media_port),
            "GATEWAY_MEDIA_URL": f"ws://127.0.0.1:{media_port}/twilio/media",
            APP_TOKEN_ENV: app_token, "PYTHONUNBUFFERED": "1",
        }
        say.write(f"example Plivo app  {app.base_url}\n"
                  f"gateway            {gateway_url}  (gateway serve, SQLite in {workdir})\n"
                  f"side streams       ws://127.0.0.1:{media_port}/twilio/media\n"
                  f"Twilio simulator   {simulator.api_base_url}  (REST API)\n")
        gateway = GatewayProcess(workdir, env, gateway_port, media_port)
        gateway.start()
        calls = sum(len(CALLERS[n]) for n in examples)
        say.write(f"playing {len(examples)} example(s), {calls} call(s), all at once...\n")
        transcript = simulator.run(scenario_from_dict(scenario_for(examples), source="demo"))
        t0 = time.monotonic() - transcript.elapsed()
        # The gateway's worker delivers the hangup callbacks after the calls end: wait for them
        # (bounded) so that the story is complete.
        complete = app.wait_for(lambda reqs: _hangups_complete(reqs, examples), CALLBACKS_TIMEOUT)
        return Run(examples, transcript, app.requests, t0, app.base_url, gateway.problems(),
                   complete)
    finally:
        with _signals_held():
            if gateway is not None:
                gateway.stop()
            simulator.stop()
            app.stop()


def _hangups_complete(requests_: list[AppRequest], examples: list[int]) -> bool:
    """Every call's hangup_url was called (and example 7's exit callback, and the IVR
    voicemail's transcription, which may come after it: they are delivered independently)."""
    answered = {r.params.get("CallUUID") for r in requests_ if r.path.startswith("/answer/")}
    hung_up = {r.params.get("CallUUID") for r in requests_ if r.path == "/hangup/"}
    expected = sum(len(CALLERS[n]) for n in examples)
    exited = any(r.path == "/confevents/" and r.params.get("ConferenceAction") == "exit"
                 for r in requests_)
    transcribed = any(r.path == "/ivr/transcription/" for r in requests_)
    return (len(answered) >= expected and answered <= hung_up and (exited or 7 not in examples)
            and (transcribed or IVR not in examples))


# --- what happened, call by call --------------------------------------------------------------
def uuid_of(request: AppRequest) -> str:
    """The call a request to the app is about: CallUUID, or call_uuid in Plivo's transcription
    callback (which spells its parameters in snake case)."""
    return request.params.get("CallUUID") or request.params.get("call_uuid", "")


@dataclass(frozen=True)
class CallView:
    name: str
    example: int
    role: str
    phone: str


@dataclass(frozen=True)
class Line:
    """One line of a story: when, who, what."""

    t: float
    who: str
    text: str


@dataclass(frozen=True)
class Check:
    """One promise of an example, verified. `status`: ok, failed, or note (honest, not a fail)."""

    example: int
    status: str
    text: str


class Facts:
    """Queries over one run: the simulator's transcript and what the app received, per call."""

    def __init__(self, run: Run):
        self.run = run
        self.calls = {c.name: CallView(c.name, n, c.role, phone_of(n, c))
                      for n in run.examples for c in CALLERS[n]}
        by_phone = {v.phone.lstrip("+"): v.name for v in self.calls.values()}
        self.call_of_uuid: dict[str, str] = {}
        for r in run.requests:
            if r.path.startswith("/answer/") and r.params.get("From") in by_phone:
                self.call_of_uuid[r.params.get("CallUUID", "")] = by_phone[r.params["From"]]
        # Twilio FriendlyName -> (example, the room as the app wrote it)
        self.rooms: dict[str, tuple[int, str]] = {}
        for n in run.examples:
            for _, xml in STORIES[n - 1].documents:
                for element in parse_document(xml).elements:
                    if isinstance(element, Conference):
                        self.rooms[twilio_room_name(account_of(n), element.room)] = (
                            n, element.room)
        if IVR in run.examples:  # the IVR's room is in the menu action's answer
            self.rooms[twilio_room_name(account_of(IVR), IVR_ROOM)] = (IVR, IVR_ROOM)
        sid_to_name = {e["call_sid"]: e["call"] for e in run.transcript.events(type="call-start")}
        self.muted: dict[str, bool] = {}
        for e in run.transcript.events(type="sent", kind="conference-event"):
            params = e.get("params", {})
            if params.get("StatusCallbackEvent") == "participant-join":
                name = sid_to_name.get(params.get("CallSid", ""))
                if name:
                    self.muted[name] = params.get("Muted") == "true"

    # transcript
    def events(self, type: str, **match: Any) -> list[Event]:
        return self.run.transcript.events(type=type, **match)

    def conference(self, event: str, **match: Any) -> list[Event]:
        return self.events("conference", event=event, **match)

    def room(self, event: Event) -> str | None:
        known = self.rooms.get(event.get("conference", ""))
        return known[1] if known else None

    def example_of(self, event: Event) -> int | None:
        """The example an event belongs to: by its call, else by its room."""
        if event.get("call") in self.calls:
            return self.calls[event["call"]].example
        known = self.rooms.get(event.get("conference", ""))
        return known[0] if known else None

    def heard(self, name: str) -> list[Event]:
        return self.events("heard", call=name)

    def first(self, events: list[Event]) -> Event | None:
        return events[0] if events else None

    def call_end(self, name: str) -> Event | None:
        return self.run.transcript.call_end(name)

    # the app
    def t_of(self, request: AppRequest) -> float:
        return round(request.received_at - self.run.t0, 3)

    def app_requests(self, name: str, path: str | None = None) -> list[AppRequest]:
        return [r for r in self.run.requests
                if self.call_of_uuid.get(uuid_of(r)) == name
                and (path is None or r.path == path)]


# --- the examples' promises -------------------------------------------------------------------
PROMISES: dict[int, str] = {
    1: "two callers meet in room 9876: no beep, no hold music.",
    2: "the participant hears the wait music until the moderator starts the room; "
       "the moderator hanging up ends it for everyone.",
    3: "everyone joins SimpleRoom muted.",
    4: "printed malformed: the stray '>' makes endConferenceOnExit part of the room's name, "
       "so the room is named oddly, the waitSound plays while alone, and one caller hanging up "
       "does not end the room.",
    5: "the customer hears hold music until the operator joins, without a beep; "
       "the operator hanging up ends the room.",
    6: "the caller presses * to leave the room, then the <Redirect> document plays.",
    7: "the callbackUrl hears of the caller entering MyRoom, pressing 9 9 (digitsMatch: the "
       "gateway hears the keys on a side stream) and leaving.",
    IVR: "every caller hears the menu; ivan and judy press 1 and meet in the Team Room; kim "
         "presses 2, leaves a message after the beep and ends it with #; the app gets the key "
         "each pressed, the recording (with the # that ended it) and its transcription.",
}


class _Checker:
    def __init__(self, example: int):
        self.example = example
        self.checks: list[Check] = []

    def __call__(self, ok: bool, text: str) -> bool:
        self.checks.append(Check(self.example, "ok" if ok else "failed", text))
        return ok

    def note(self, text: str) -> None:
        self.checks.append(Check(self.example, "note", text))


def check_example(n: int, facts: Facts) -> list[Check]:
    check = _Checker(n)
    names = [c.name for c in CALLERS[n]]
    for name in names:
        _check_call(check, facts, name)
    errors = [e for e in facts.events("error") + facts.events("warning")
              + facts.events("call-failed") if facts.example_of(e) == n]
    check(not errors, "the simulator saw no application error" + "".join(
        f"; {e['type']} {e.get('code')}: {e.get('reason')}" for e in errors))
    EXAMPLE_CHECKS[n](check, facts)
    return check.checks


def _check_call(check: _Checker, facts: Facts, name: str) -> None:
    """The app answered the call with valid signatures, the call completed, the app heard of its
    end once: one line when all is well, every problem named when not."""
    problems = []
    received = facts.app_requests(name)
    if not received or not received[0].path.startswith("/answer/"):
        problems.append("the app's answer_url was never requested")
    problems += [f"{r.path} signature rejected ({r.signature_problem})"
                 for r in received if not r.signature_ok]
    end = facts.call_end(name)
    if end is None:
        problems.append("the call never ended")
    elif end["status"] != "completed" or end["reason"] == "scenario duration reached":
        problems.append(f"the call ended {end['status']} ({end['reason']})")
    hangups = [r for r in facts.app_requests(name, "/hangup/")
               if r.params.get("Event") == "Hangup"]
    if len(hangups) != 1:
        problems.append(f"the hangup_url was called {len(hangups)} times, not once")
    how = f" ({end['reason']})" if end else ""
    check(not problems, f"{name}: answered, {len(received)} signed request(s) all valid, "
          f"completed{how}, hangup_url called once" if not problems
          else f"{name}: " + "; ".join(problems))


def _joined(check: _Checker, facts: Facts, names: list[str], room: str) -> list[Event]:
    joins = [facts.first(facts.conference("participant-join", call=name)) for name in names]
    found = [j for j in joins if j is not None]
    same = len({j["conference_sid"] for j in found}) == 1
    together = "the same room, " if len(names) > 1 else "room "
    check(len(found) == len(names) and same and all(facts.room(j) == room for j in found),
          f"{' and '.join(names)} joined {together}{room!r} as the app wrote it")
    return found


def _no_beep(check: _Checker, facts: Facts, names: list[str]) -> None:
    beeps = [e for name in names for e in facts.heard(name) if e["kind"] == "beep"]
    check(not beeps, "nobody heard a beep")


def _waited_with_music(check: _Checker, facts: Facts, waiter: str, joiner: str) -> None:
    join = facts.first(facts.conference("participant-join", call=joiner))
    until = join["t"] if join else float("inf")
    waits = [e["detail"] for e in facts.heard(waiter) if e["kind"] == "wait" and e["t"] <= until]
    heard_music = any(d.startswith("play ") and d.endswith("/hold-music.wav") for d in waits)
    heard_words = f"say {WAIT_MESSAGE}" in waits
    check(heard_music and heard_words, f"{waiter} heard the waitSound document (its Play and "
          f"its Speak) until {joiner} joined")
    fetched = facts.app_requests(waiter, "/waitmusic/")
    check(bool(fetched), f"the gateway fetched the waitSound URL from the app for {waiter}")


def _room_started_by(check: _Checker, facts: Facts, starter: str) -> None:
    join = facts.first(facts.conference("participant-join", call=starter))
    start = [e for e in facts.conference("conference-start")
             if join and e["conference_sid"] == join["conference_sid"]]
    check(bool(start) and join is not None and start[0]["t"] >= join["t"],
          f"the room started only when {starter} joined")


def _ended_by(check: _Checker, facts: Facts, leaver: str, others: list[str]) -> None:
    join = facts.first(facts.conference("participant-join", call=leaver))
    ends = [e for e in facts.conference("conference-end")
            if join and e["conference_sid"] == join["conference_sid"]]
    check(bool(ends) and "end-conference-on-exit" in ends[0].get("ReasonConferenceEnded", ""),
          f"{leaver} hanging up ended the room (endConferenceOnExit)")
    for other in others:
        leave = facts.first(facts.conference("participant-leave", call=other))
        check(leave is not None and leave.get("ReasonParticipantLeft") != "participant_hung_up",
              f"{other} left the room because it ended, not by hanging up")


def _example_1(check: _Checker, facts: Facts) -> None:
    _joined(check, facts, ["alice", "bob"], "9876")
    _room_started_by(check, facts, "bob")
    _no_beep(check, facts, ["alice", "bob"])
    waits = {e["detail"] for n in ("alice", "bob") for e in facts.heard(n) if e["kind"] == "wait"}
    check(waits <= {"silence"}, "no hold music: alice waited in silence until bob joined")


def _example_2(check: _Checker, facts: Facts) -> None:
    _joined(check, facts, ["guest", "moderator"], "9876")
    _waited_with_music(check, facts, "guest", "moderator")
    _room_started_by(check, facts, "moderator")
    _ended_by(check, facts, "moderator", ["guest"])


def _example_3(check: _Checker, facts: Facts) -> None:
    _joined(check, facts, ["carol", "dave"], "SimpleRoom")
    check(facts.muted.get("carol") is True and facts.muted.get("dave") is True,
          "carol and dave joined muted")


def _example_4(check: _Checker, facts: Facts) -> None:
    room = 'endConferenceOnExit="true">NoMusicNoBeepRoom'
    _joined(check, facts, ["erin", "frank"], room)
    _waited_with_music(check, facts, "erin", "frank")
    _no_beep(check, facts, ["erin", "frank"])
    erin = facts.first(facts.conference("participant-leave", call="erin"))
    frank = facts.first(facts.conference("participant-leave", call="frank"))
    check(erin is not None and frank is not None and frank["t"] > erin["t"]
          and frank.get("ReasonParticipantLeft") == "participant_hung_up",
          "erin hanging up did not end the room: frank stayed until he hung up")
    check.note("as the documentation meant it (endConferenceOnExit, no wait music) the example "
               "would behave differently: the document runs as printed, as it would on Plivo")


def _example_5(check: _Checker, facts: Facts) -> None:
    _joined(check, facts, ["customer", "operator"], "Customer Waiting Room")
    _waited_with_music(check, facts, "customer", "operator")
    _room_started_by(check, facts, "operator")
    _no_beep(check, facts, ["customer", "operator"])
    _ended_by(check, facts, "operator", ["customer"])


def _example_6(check: _Checker, facts: Facts) -> None:
    _joined(check, facts, ["grace"], "plivo")
    key = facts.first(facts.events("key", call="grace", digit="*"))
    leave = facts.first(facts.conference("participant-leave", call="grace"))
    check(key is not None and leave is not None and leave["t"] >= key["t"],
          "grace left the room when she pressed *")
    redirects = facts.app_requests("grace", "/nextstep/")
    check(len(redirects) == 1 and redirects[0].params.get("Event") == "Redirect",
          "the app served the <Redirect> URL once (Event=Redirect)")
    said = [e for e in facts.heard("grace") if e["kind"] == "say"
            and e["detail"] == NEXT_STEP_MESSAGE and leave is not None and e["t"] >= leave["t"]]
    check(bool(said), "grace then heard the next step's <Speak>")


def _example_7(check: _Checker, facts: Facts) -> None:
    _joined(check, facts, ["heidi"], "MyRoom")
    events = facts.app_requests("heidi", "/confevents/")
    actions = [r.params.get("ConferenceAction") for r in events]
    check(actions[:1] == ["enter"] and actions[-1:] == ["exit"]
          and all(r.params.get("ConferenceName") == "MyRoom" for r in events),
          "the callbackUrl got ConferenceAction=enter then exit, ConferenceName=MyRoom")
    digits = [r.params.get("ConferenceDigitsMatch") for r in events
              if r.params.get("ConferenceAction") == "digits"]
    check(digits == ["99"] and actions.index("digits") > actions.index("enter"),
          "pressing 9 9 reached the callbackUrl once, after enter (ConferenceAction=digits, "
          "ConferenceDigitsMatch=99)")


def _heard_say(facts: Facts, name: str, text: str) -> Event | None:
    return facts.first([e for e in facts.heard(name) if e["kind"] == "say"
                        and e["detail"] == text])


def _example_ivr(check: _Checker, facts: Facts) -> None:
    for name in ("ivan", "judy", "kim"):
        check(_heard_say(facts, name, IVR_MENU) is not None, f"{name} heard the menu")
    choices = {name: [r.params.get("Digits") for r in facts.app_requests(name, "/ivr/choice/")]
               for name in ("ivan", "judy", "kim")}
    expected = {"ivan": ["1"], "judy": ["1"], "kim": ["2"]}
    check(choices == expected, "the menu's action got Digits=1 for ivan and judy, Digits=2 "
          "for kim, once each" + ("" if choices == expected else f" (got {choices})"))
    for name in ("ivan", "judy"):
        check(_heard_say(facts, name, IVR_JOINING) is not None,
              f"{name} heard \"{IVR_JOINING}\"")
    _joined(check, facts, ["ivan", "judy"], IVR_ROOM)
    prompt = _heard_say(facts, "kim", IVR_VOICEMAIL)
    beep = facts.first([e for e in facts.heard("kim") if e["kind"] == "beep"])
    check(prompt is not None and beep is not None and beep["t"] >= prompt["t"],
          "kim heard the voicemail prompt, then the beep")
    recorded = facts.app_requests("kim", "/ivr/recorded/")
    p = recorded[0].params if len(recorded) == 1 else {}
    check(len(recorded) == 1 and bool(p.get("RecordUrl")) and bool(p.get("RecordingID"))
          and p.get("Digits") == "#" and _positive(p.get("RecordingDuration")),
          "the Record action got RecordUrl, RecordingID, RecordingDuration "
          f"({p.get('RecordingDuration')} s) and Digits=# (the key that ended it), once")
    check(_heard_say(facts, "kim", IVR_THANKS) is not None,
          "kim then heard the action's answer (redirect=true: it replaces the document)")
    texts = [r.params for r in facts.app_requests("kim", "/ivr/transcription/")]
    t = texts[0] if len(texts) == 1 else {}
    heard = t.get("transcription", "")
    # The simulator speaks kim's words into the recording with espeak-ng; without it the
    # recording holds a speech-like signal, and no words can be expected back.
    speaks = shutil.which("espeak-ng") is not None
    check(len(texts) == 1 and (bool(heard.strip()) or not speaks) and not t.get("error")
          and t.get("recording_id") == p.get("RecordingID"),
          "the transcriptionUrl got Plivo's transcription parameters once (transcription, "
          "recording_id of that recording, duration, no error)")
    if texts and speaks:
        check.note(f'kim said "{VOICEMAIL_TEXT}"; the offline recogniser (no network) heard '
                   f'"{heard}"')
    elif texts:
        check.note("espeak-ng is not installed, so the simulator recorded a speech-like signal "
                   f'instead of kim\'s words; the recogniser heard "{heard}" (install espeak-ng '
                   "to hear the words come back)")


def _positive(value: str | None) -> bool:
    try:
        return float(value or 0) > 0
    except ValueError:
        return False


EXAMPLE_CHECKS = {1: _example_1, 2: _example_2, 3: _example_3, 4: _example_4, 5: _example_5,
                  6: _example_6, 7: _example_7, IVR: _example_ivr}


# --- the story ---------------------------------------------------------------------------------
MARKS = {"ok": "[ok]  ", "failed": "[FAIL]", "note": "[note]"}
WIDTH = 100


def _one_line(xml: str) -> str:
    body = xml.replace("<Response>", "").replace("</Response>", "")
    return " ".join(body.split())


def _wrap_document(head: str, xml: str) -> list[str]:
    """Wrap between attributes, never inside an element's text (a room name stays whole)."""
    glue = "\x00"
    text = re.sub(r">([^<]*)<", lambda m: ">" + m.group(1).replace(" ", glue) + "<",
                  _one_line(xml))
    lines = textwrap.wrap(f"{head} {text}", WIDTH, initial_indent="   ",
                          subsequent_indent="        ", break_long_words=False,
                          break_on_hyphens=False)
    return [line.replace(glue, " ") for line in lines]


def _basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1] or url


def _heard_text(event: Event) -> str:
    kind, detail = event["kind"], str(event["detail"])
    if kind == "say":
        return f'hears "{detail}"'
    if kind == "play":
        return f"hears {_basename(detail)}"
    if kind == "pause":
        return f"hears silence ({detail})"
    if kind == "beep":
        return f"hears a beep ({detail})"
    if kind == "wait":
        if detail == "silence":
            return "waits in silence"
        if detail == "default hold music":
            return "hears Twilio's default hold music"
        verb, _, rest = detail.partition(" ")
        if verb == "say":
            return f'hears, while waiting, "{rest}"'
        if verb in ("play", "audio"):
            return f"hears, while waiting, {_basename(rest)}"
        return f"hears, while waiting, {detail}"
    return f"hears {kind}: {detail}"


def _request_text(request: AppRequest, name: str) -> str:
    p = request.params
    if request.path.startswith("/answer/"):
        text = f"answer_url {request.path} for {name} (Event={p.get('Event')})"
    elif request.path == "/waitmusic/":
        text = f"waitSound /waitmusic/ for {name} (fetched by the gateway)"
    elif request.path == "/nextstep/":
        text = f"Redirect /nextstep/ for {name} (Event={p.get('Event')})"
    elif request.path == "/confevents/":
        details = ", ".join(f"{k}={p[k]}" for k in ("ConferenceAction", "ConferenceName",
                                                      "ConferenceMemberID",
                                                      "ConferenceDigitsMatch") if k in p)
        text = f"callbackUrl /confevents/ for {name}: {details}"
    elif request.path == "/ivr/choice/":
        text = f"the menu's action /ivr/choice/ for {name}: Digits={p.get('Digits')}"
    elif request.path == "/ivr/recorded/":
        details = ", ".join(f"{k}={p[k]}" for k in ("RecordingDuration", "Digits") if k in p)
        text = (f"the Record action /ivr/recorded/ for {name}: {details}, "
                f"RecordUrl=…/{_basename(p.get('RecordUrl', ''))}")
    elif request.path == "/ivr/transcription/":
        words = p.get("transcription", p.get("Transcription", ""))
        text = f"the transcriptionUrl for {name}: \"{words}\""
    elif request.path == "/hangup/":
        text = (f"hangup_url for {name} (HangupCause={p.get('HangupCause')}, "
                f"Duration={p.get('Duration')})")
    else:
        text = f"{request.method} {request.path} for {name}"
    if not request.signature_ok:
        text += f"  REJECTED: {request.signature_problem}"
    return "gets " + text


def _event_line(event: Event, facts: Facts) -> Line | None:
    kind, t, who = event["type"], event["t"], event.get("call") or "room"
    if kind == "call-start":
        view = facts.calls[who]
        return Line(t, who, f"calls {event['to']} (the {view.role}'s number)")
    if kind == "conference":
        room = facts.room(event) or event.get("conference", "?")
        name = event["event"]
        if name == "participant-join":
            muted = " (muted)" if facts.muted.get(who) else ""
            return Line(t, who, f"joins room '{room}'{muted}")
        if name == "participant-leave":
            why = str(event.get("ReasonParticipantLeft", "")).replace("_", " ")
            return Line(t, who, f"leaves room '{room}' ({why})")
        if name == "conference-start":
            return Line(t, "room", f"'{room}' starts")
        if name == "conference-end":
            return Line(t, "room", f"'{room}' ends ({event.get('Reason', '')})")
        return None  # mute/hold/speaker events: the story keeps to who came and went
    if kind == "heard":
        return Line(t, who, _heard_text(event))
    if kind == "key":
        return Line(t, who, f"presses {event['digit']}")
    if kind == "speech" and event.get("state") == "start":
        said = [text for start, _, text in _caller(who).speech if abs(start - t) < 1.0]
        return Line(t, who, f'starts speaking: "{said[0]}"' if said and said[0] else "speaks")
    if kind == "speech":
        return Line(t, who, "stops speaking")
    if kind == "hangup":
        return Line(t, who, "hangs up")
    if kind == "call-end":
        return Line(t, who, f"call ends ({event.get('reason')})")
    if kind == "call-failed":
        return Line(t, who, f"CALL FAILED: the gateway answered with its apology "
                            f"({event.get('reason')})")
    if kind in ("error", "warning"):
        return Line(t, who, f"{kind.upper()} {event.get('code')}: {event.get('reason')}")
    return None


def _caller(name: str) -> Caller:
    return next(c for callers in CALLERS.values() for c in callers if c.name == name)


def _merge_keys(lines: list[Line]) -> list[Line]:
    """`presses 9`, `presses 9` -> `presses 9 9`: one key press sequence reads as one line."""
    out: list[Line] = []
    for line in lines:
        last = out[-1] if out else None
        if (last and line.text.startswith("presses ") and last.text.startswith("presses ")
                and last.who == line.who and line.t - last.t < 1.0):
            out[-1] = Line(last.t, last.who, last.text + " " + line.text.split(" ", 1)[1])
        else:
            out.append(line)
    return out


def story_of(n: int, facts: Facts, checks: list[Check]) -> str:
    example = STORIES[n - 1]
    out = [f"== Example {n}: {example.title} " + "=" * max(3, 70 - len(example.title))]
    out += textwrap.wrap(f"Promise: {PROMISES[n]}", WIDTH, initial_indent="   ",
                         subsequent_indent="            ")
    # One line per document: the callers who run the same role's document share it.
    for role, xml in example.documents:
        names = [c.name for c in CALLERS[n] if c.role == role]
        if not names:
            continue
        who = names[0] if names == [role] else f"{', '.join(names)} ({role})"
        out += _wrap_document(f"{who} run{'s' if len(names) == 1 else ''}:", xml)
    if n == IVR:
        for digit, xml in IVR_CHOICES.items():
            out += _wrap_document(f"press {digit}: the action answers", xml)
    lines = [line for e in facts.run.transcript.events
             if facts.example_of(e) == n and (line := _event_line(e, facts)) is not None]
    for request in facts.run.requests:
        name = facts.call_of_uuid.get(uuid_of(request))
        if name in facts.calls and facts.calls[name].example == n:
            lines.append(Line(facts.t_of(request), "app", _request_text(request, name)))
    lines = _merge_keys(sorted(lines, key=lambda line: line.t))
    out.append("")
    out += [f"   {line.t:6.2f}s  {line.who:<10} {line.text}" for line in lines]
    out.append("")
    out += [f"   {MARKS[c.status]} {c.text}" for c in checks]
    return "\n".join(out) + "\n"


def global_checks(run: Run) -> list[Check]:
    checks = []
    unattributed = [e for e in run.transcript.errors if not e.get("call")]
    for e in unattributed:
        checks.append(Check(0, "failed", f"simulator error {e.get('code')}: {e.get('reason')}"))
    if not run.callbacks_complete:
        checks.append(Check(0, "failed", f"the app did not get every hangup callback within "
                                         f"{CALLBACKS_TIMEOUT:.0f} s of the calls' end"))
    for line in run.gateway_problems[:10]:
        checks.append(Check(0, "failed", f"the gateway logged: {line.strip()}"))
    return checks


# --- the command -------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway demo",
        description="Run the seven <Conference> examples of Plivo's documentation and an IVR "
                    "story (a menu in front of a room, voicemail after it) through the gateway "
                    "and a local Twilio simulator, and tell each call's story. Nothing to "
                    "configure; nothing leaves this machine.")
    parser.add_argument("--example", type=int, action="append", choices=range(1, IVR + 1),
                        metavar="N", help=f"run only example N (1-7, {IVR}: the IVR story; may "
                                          "be repeated)")
    parser.add_argument("--json", action="store_true",
                        help="print the raw transcript, one JSON object per line, instead of "
                             "the story")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (gateway log, store, mappings)")
    return parser


class _StopOnSigterm:
    """SIGTERM ends the demo as Ctrl-C does: through the cleanup, never around it."""

    def __enter__(self) -> None:
        self.previous = signal.signal(signal.SIGTERM, self._raise)

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGTERM, self.previous)


@contextlib.contextmanager
def _signals_held() -> Any:
    """While cleaning up, a second Ctrl-C must not leave the gateway running behind us."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only ever delivered to the main thread
        return
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in held.items():
            signal.signal(sig, previous)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    progress = sys.stderr
    examples = sorted(set(args.example or range(1, IVR + 1)))
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    try:
        with _StopOnSigterm():
            run = run_demo(examples, workdir, progress)
    except (KeyboardInterrupt, Interrupted):
        progress.write("gateway demo: interrupted; every process it started is stopped\n")
        return 130
    except DemoFailed as exc:
        progress.write(f"gateway demo: FAILED: {exc}\n")
        return 1
    finally:
        with _signals_held():
            if args.keep:
                progress.write(f"gateway demo: kept {workdir} (gateway.log, gateway.db, "
                               "mappings/)\n")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return report(run, examples, time.monotonic() - started, args.json, sys.stdout)


def report(run: Run, examples: list[int], seconds: float, as_json: bool, out: TextIO) -> int:
    """Print the stories (or the JSON lines) and the verdict; return the exit status."""
    facts = Facts(run)
    checks = {n: check_example(n, facts) for n in examples}
    overall = global_checks(run)
    failed = [c for n in examples for c in checks[n] if c.status == "failed"] + [
        c for c in overall if c.status == "failed"]
    if as_json:
        out.write(run.transcript.json_lines())
        for r in run.requests:
            out.write(json.dumps({"type": "app-request", "t": facts.t_of(r),
                                  "call": facts.call_of_uuid.get(uuid_of(r)),
                                  "method": r.method, "path": r.path, "params": r.params,
                                  "signature_ok": r.signature_ok}) + "\n")
        for c in [c for n in examples for c in checks[n]] + overall:
            out.write(json.dumps({"type": "check", "example": c.example, "status": c.status,
                                  "text": c.text}) + "\n")
        out.write(json.dumps({"type": "demo-end", "ok": not failed, "examples": examples,
                              "seconds": round(seconds, 1)}) + "\n")
    else:
        out.write(f"www.foo.com in the documents below is the example app, {run.app_base_url}; "
                  "times are seconds since the first call.\n\n")
        for n in examples:
            out.write(story_of(n, facts, checks[n]) + "\n")
        for c in overall:
            out.write(f"{MARKS[c.status]} {c.text}\n")
        calls = sum(len(CALLERS[n]) for n in examples)
        if failed:
            out.write(f"FAILED: {len(failed)} promise(s) not kept ({len(examples)} example(s), "
                      f"{calls} calls, {seconds:.1f} s):\n")
            for c in failed:
                where = f"example {c.example}: " if c.example else ""
                out.write(f"  - {where}{c.text}\n")
            out.write("Run with --keep to read the gateway's log.\n")
        else:
            out.write(f"OK: {len(examples)} example(s), {calls} calls, every promise kept, "
                      f"in {seconds:.1f} s.\n")
    out.flush()
    return 1 if failed else 0
