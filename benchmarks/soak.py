"""The gateway under a steady mixed load for minutes on end: is memory flat? (issue 9, item 7)

`gateway serve` runs as deployed (gunicorn with 2 gevent workers, the job worker, the side-stream
server; SQLite by default, a real redis-server with `--store redis`), with a keep-alive customer
app on loopback (`answer_server.AnswerServer`). The load plays Twilio's side of whole calls, open
loop (calls start at a fixed rate whatever the answers do), half of each kind:

- a conference call: `/twilio/voice` answered with a `<Speak>` and a `<Conference callbackUrl>`;
  the member's `participant-join` (and `conference-start` for the first member of a room); a stay
  of `--hold` seconds; its `participant-leave` (and `conference-end` once the room is empty); the
  `<Dial>`'s action (the caller hung up); the call's final status callback. Each room takes
  `ROOM_SIZE` consecutive callers under a name of its own, so rooms open and close all the time.
- a menu call: `/twilio/voice` answered with a `<GetDigits>` menu; `--menu` seconds later the
  `<Gather>`'s action with Digits=1 (the gateway fetches the app's action URL and translates its
  answer); the final status callback.

Every request after the first is built from what the gateway answered (the TwiML's action URLs,
participant label and room name), as Twilio builds it. The app records each call's callbacks in
order of arrival: enter, exit and hangup for a member; the menu's action and hangup for a menu
call. Latency runs from the moment a request was due, so a stalled gateway shows. The requests
go out over `--senders` (64) kept-alive connections, as a load balancer's pool holds them; each
is a greenlet in a web worker, and on SQLite each greenlet holds SQLite connections of its own,
so the number of client connections sets part of a worker's memory.

Rate: unless `--rate` fixes it (Twilio webhooks per second, all kinds), a closed-loop burst of
the same mix runs first (16 calls in flight with no waits, as bench_voice's client), and its
end-to-end throughput, webhooks answered / time until the app had every callback, is what this
machine sustains; the soak holds `--share` (70%) of it. A 3 s closed-loop warm-up always runs
first, so the first minute is not a cold start.

Every `--every` seconds a sample: RSS, USS and PSS (/proc/PID/smaps_rollup) and open file
descriptors of every gateway process (launcher, gunicorn master, each web worker, job worker,
side-stream server); the store's size (SQLite: the database and queue files' bytes and rows;
Redis: used_memory and keys); the queue's pending jobs; live rooms and pending deliveries
from `/metrics`; requests, errors, p50/p99 and the load generator's lag over the interval.

Verdict (see `verdict`): memory is flat when the least-squares slope of every process's RSS over
the second half of the run is under `SLOPE_BOUND_MB_PER_MIN`; no errors: no request failed,
every callback arrived, in Plivo's order, and the gateway logged no ERROR; p99 steady: the last
minute's p99 within twice the first minute's or 50 ms of it. The samples go to `$BENCH_OUT`
(default: a new temporary directory) as soak.json, soak.csv (one row per sample) and
soak-processes.csv (one row per process per sample).

    .venv/bin/python -m benchmarks.soak --minutes 10 [--rate R] [--store sqlite|redis]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import heapq
import http.client
import itertools
import json
import math
import os
import queue
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from benchmarks.answer_server import AnswerServer
from benchmarks.bench_voice import menu_xml
from benchmarks.load import process_cpu_seconds
from benchmarks.stats import percentile
from gateway.app_side.params import call_uuid
from tests.support.gateway_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    GatewayServer,
    app_config,
    twilio_call_params,
)
from tests.support.redis_server import RedisServer

ROOM_SIZE = 4  # consecutive conference callers per room
CONFERENCE_FROM = "+1415"  # + 7 digits: the room's number; the app answers by the caller's number
MENU_FROM = "+14165550199"  # (Plivo's From, which the app sees, has no "+")
# Webhooks per call: conference = voice, join, leave, the Dial's action, status, plus a room's
# start and end shared by its ROOM_SIZE members; menu = voice, the Gather's action, status.
WEBHOOKS_PER_CALL = ((5 + 2 / ROOM_SIZE) + 3) / 2
# Why 1 MB/min: a second half of 5 minutes may then add under 5 MB to a process, while a Python
# process's RSS moves in steps of pymalloc arenas (256 KiB) and glibc heaps as load varies; and a
# leak of one small object per call (a dict of ~300 bytes) at the rates this machine holds (about
# 50-60 calls/s) adds about 1 MB/min: it would show.
SLOPE_BOUND_MB_PER_MIN = 1.0
P99_FACTOR, P99_SLACK_MS = 2.0, 50.0  # "steady": last minute's p99 <= max(2x, +50 ms) the first
THANKS = "<Response><Speak>Thank you. Goodbye.</Speak></Response>"


def conference_doc(callback_url: str, room: int) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
            '  <Speak voice="WOMAN" language="en-US">Welcome. Connecting you to the team.</Speak>\n'
            f'  <Conference callbackUrl="{callback_url}" callbackMethod="POST" '
            'startConferenceOnEnter="true" endConferenceOnExit="false" maxMembers="20">'
            f"Soak room {room}</Conference>\n</Response>\n")


# -- the customer app -----------------------------------------------------------------------------
class AppSide:
    """The customer app's routes, and each call's callbacks in order of arrival (by CallUUID)."""

    def __init__(self, app: AnswerServer):
        self.app = app
        self.lock = threading.Lock()
        self.seen: dict[str, list[str]] = defaultdict(list)
        menu = menu_xml(app.url("/menu"))
        callback_url = app.url("/cb")

        def answer(form: dict[str, str]) -> str:
            caller = "+" + form.get("From", "").lstrip("+")
            if caller.startswith(CONFERENCE_FROM):
                return conference_doc(callback_url, int(caller[len(CONFERENCE_FROM):]))
            return menu

        app.route("/answer", answer)
        app.route("/menu", self.recorder(lambda form: "menu", THANKS))
        app.route("/cb", self.recorder(lambda form: form.get("ConferenceAction", "?"), ""))
        app.route("/hangup", self.recorder(lambda form: "hangup", ""))

    def recorder(self, kind: Callable[[dict[str, str]], str], body: str):
        def record(form: dict[str, str]) -> str:
            with self.lock:
                self.seen[form.get("CallUUID", "")].append(kind(form))
            return body
        return record

    def check(self, expected: dict[str, tuple[str, ...]]) -> dict:
        """Missing, duplicated and out-of-order callbacks of the calls in `expected`."""
        missing = duplicated = disordered = 0
        with self.lock:
            for uuid_, kinds in expected.items():
                got = self.seen.get(uuid_, [])
                missing += sum(1 for kind in kinds if kind not in got)
                duplicated += len(got) - len(set(got))
                firsts = [kind for index, kind in enumerate(got) if kind not in got[:index]]
                if not missing and firsts != [k for k in kinds if k in firsts]:
                    disordered += 1
        return {"calls": len(expected), "missing": missing, "duplicated": duplicated,
                "out_of_order_calls": disordered}

    def complete(self, expected: dict[str, tuple[str, ...]]) -> bool:
        with self.lock:
            return all(set(kinds) <= set(self.seen.get(u, ())) for u, kinds in expected.items())


# -- the load: Twilio's side of the calls ---------------------------------------------------------
@dataclass(order=True)
class Step:
    """One webhook, due at `due` (monotonic); `then(body)` runs after a good answer."""

    due: float
    seq: int
    kind: str = field(compare=False)
    url: str = field(compare=False)
    params: dict[str, str] = field(compare=False)
    good: Callable[[int, bytes], bool] = field(compare=False)
    then: Callable[[bytes], None] | None = field(compare=False, default=None)


class Engine:
    """Sends steps when they are due: one dispatcher thread moves due steps from a heap to a
    queue, `senders` threads (one kept-alive connection each) send them. Records (done,
    latency from due, lag from due to send, kind, ok) per request."""

    def __init__(self, base_url: str, senders: int):
        target = urlsplit(base_url)
        if target.hostname != "127.0.0.1":
            raise ValueError("the soak only targets 127.0.0.1")
        self.port = target.port
        self.validator = RequestValidator(AUTH_TOKEN)
        self.heap: list[Step] = []
        self.cv = threading.Condition()
        self.ready: queue.SimpleQueue[Step | None] = queue.SimpleQueue()
        self.seq = itertools.count()
        self.records: list[tuple[float, float, float, str, bool]] = []
        self.first_errors: dict[str, str] = {}
        self.pending = 0  # steps scheduled and not yet done
        self.stopping = False
        self.threads = [threading.Thread(target=self._send_loop, daemon=True, name=f"sender-{i}")
                        for i in range(senders)]
        self.threads.append(threading.Thread(target=self._dispatch, daemon=True,
                                             name="dispatcher"))
        for thread in self.threads:
            thread.start()

    def at(self, due: float, kind: str, url: str, params: dict[str, str],
           good: Callable[[int, bytes], bool], then: Callable[[bytes], None] | None = None):
        step = Step(due, next(self.seq), kind, url, params, good, then)
        with self.cv:
            self.pending += 1
            heapq.heappush(self.heap, step)
            if self.heap[0] is step:  # due before whatever the dispatcher waits for
                self.cv.notify()

    def idle(self) -> bool:
        with self.cv:
            return not self.pending

    def stop(self) -> None:
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        for _ in self.threads:
            self.ready.put(None)
        for thread in self.threads:
            thread.join(timeout=5)

    def _dispatch(self) -> None:
        with self.cv:
            while not self.stopping:
                now = time.monotonic()
                while self.heap and self.heap[0].due <= now:
                    self.ready.put(heapq.heappop(self.heap))
                self.cv.wait(self.heap[0].due - now if self.heap else 0.5)

    def _send_loop(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while (step := self.ready.get()) is not None:
            parts = urlsplit(step.url)
            path = parts.path + ("?" + parts.query if parts.query else "")
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "User-Agent": "TwilioProxy/1.1",
                       "X-Twilio-Signature": self.validator.compute_signature(step.url,
                                                                              step.params)}
            body, ok, error = b"", False, ""
            sent = time.monotonic()
            try:
                connection.request("POST", path, urlencode(step.params).encode(), headers)
                response = connection.getresponse()
                body = response.read()
                ok = step.good(response.status, body)
                if not ok:
                    error = f"HTTP {response.status}: {body[:300]!r}"
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                error = repr(exc)
                connection.close()
            done = time.monotonic()
            with self.cv:
                self.records.append((done, done - step.due, sent - step.due, step.kind, ok))
                if error:
                    self.first_errors.setdefault(step.kind, error)
            try:
                if ok and step.then is not None:
                    step.then(body)
            finally:
                with self.cv:
                    self.pending -= 1
        connection.close()


def answered(*needles: bytes) -> Callable[[int, bytes], bool]:
    return lambda status, body: (status == 200 and b"sorry" not in body
                                 and all(n in body for n in needles))


def no_content(status: int, body: bytes) -> bool:
    return status == 204


@dataclass
class Room:
    """A room as Twilio runs it: a ConferenceSid from its first join until it empties."""

    sid: str = ""
    present: int = 0
    joined: int = 0


class Calls:
    """Starts calls and walks each through its webhooks, from the gateway's answers. With
    `paced=False` every next step is due at once (the closed-loop burst)."""

    def __init__(self, engine: Engine, gateway_url: str, *, hold: float, menu_wait: float,
                 paced: bool = True, on_finished: Callable[[], None] | None = None):
        self.engine = engine
        self.voice_url = gateway_url + "/twilio/voice"
        self.status_url = gateway_url + "/twilio/status"
        self.hold = hold if paced else 0.0
        self.menu_wait = menu_wait if paced else 0.0
        self.pause = 0.05 if paced else 0.0
        self.join_after = 0.3 if paced else 0.0
        self.on_finished = on_finished
        self.lock = threading.Lock()
        self.rooms: dict[int, Room] = {}
        self.sequences: dict[str, int] = {}  # ConferenceSid -> last SequenceNumber sent
        self.started = 0
        self.conference_calls = 0
        self.expected: dict[str, tuple[str, ...]] = {}  # CallUUID -> callbacks, for calls done
        self.failed = 0

    def start(self, due: float) -> None:
        with self.lock:
            index = self.started
            self.started += 1
            if index % 2 == 0:
                room = self.conference_calls // ROOM_SIZE
                self.conference_calls += 1
        call_sid = "CA" + uuid.uuid4().hex
        if index % 2 == 0:
            params = twilio_call_params(call_sid=call_sid, from_=f"{CONFERENCE_FROM}{room:07d}")
            self.engine.at(due, "voice", self.voice_url, params, answered(b"<Conference"),
                           lambda body: self._conference(params, room, due, body))
        else:
            params = twilio_call_params(call_sid=call_sid, from_=MENU_FROM)
            self.engine.at(due, "voice", self.voice_url, params, answered(b"<Gather"),
                           lambda body: self._menu(params, due, body))

    # The calls' steps. A failed step ends its call here (the engine counted the error).
    def _menu(self, call: dict[str, str], began: float, twiml: bytes) -> None:
        gather = ET.fromstring(twiml).find("Gather")
        params = {**call, "CallStatus": "in-progress", "Digits": "1", "FinishedOnKey": ""}
        self.engine.at(max(time.monotonic(), began + self.menu_wait), "gather",
                       gather.get("action"), params, answered(b"Thank you"),
                       lambda body: self._hang_up(call, began, ("menu", "hangup")))

    def _conference(self, call: dict[str, str], room: int, began: float, twiml: bytes) -> None:
        dial = ET.fromstring(twiml).find("Dial")
        conference = dial.find("Conference")
        member = {"action": dial.get("action"), "events": conference.get("statusCallback"),
                  "label": conference.get("participantLabel"), "name": conference.text or ""}
        self.engine.at(time.monotonic() + self.join_after, "event", member["events"],
                       self._event(room, call, member, "participant-join"), no_content,
                       lambda body: self._joined(call, room, member, began))

    def _joined(self, call, room: int, member: dict, began: float) -> None:
        now = time.monotonic()
        if member.get("opened"):  # Twilio starts the conference as its first participant enters
            self.engine.at(now, "event", member["events"],
                           self._event(room, None, member, "conference-start"), no_content)
        self.engine.at(max(now, began + self.hold), "event", member["events"],
                       self._event(room, call, member, "participant-leave"), no_content,
                       lambda body: self._left(call, room, member, began))

    def _left(self, call, room: int, member: dict, began: float) -> None:
        now = time.monotonic()
        if member.get("closes"):  # its leave emptied the room: the conference ends
            self.engine.at(now, "event", member["events"],
                           self._event(room, None, member, "conference-end"), no_content)
        # The caller hung up: Twilio still requests the <Dial>'s action, then the status callback.
        params = {**call, "CallStatus": "completed", "DialCallStatus": "completed",
                  "DialBridged": "true"}
        self.engine.at(now + self.pause, "dial-action", member["action"], params,
                       lambda status, body: status == 200,
                       lambda body: self._hang_up(call, began, ("enter", "exit", "hangup")))

    def _hang_up(self, call: dict[str, str], began: float, callbacks: tuple[str, ...]) -> None:
        duration = str(max(1, round(time.monotonic() - began)))
        params = {**call, "CallStatus": "completed", "CallDuration": duration,
                  "Duration": str(math.ceil(int(duration) / 60)),
                  "CallbackSource": "call-progress-events", "SequenceNumber": "0"}

        def finished(body: bytes) -> None:
            with self.lock:
                self.expected[call_uuid(call["CallSid"])] = callbacks
            if self.on_finished:
                self.on_finished()

        self.engine.at(time.monotonic() + self.pause, "status", self.status_url, params,
                       no_content, finished)

    def _event(self, room: int, call: dict[str, str] | None, member: dict, name: str
               ) -> dict[str, str]:
        """Twilio's conference status callback, with the room moved on as Twilio moves it: a
        join to an empty room opens a new conference (a new ConferenceSid), the leave that
        empties it closes it (its conference-end follows)."""
        with self.lock:
            state = self.rooms.setdefault(room, Room())
            if name == "participant-join":
                if not state.sid:
                    state.sid = "CF" + uuid.uuid4().hex
                    self.sequences[state.sid] = 0
                    member["opened"] = True
                member["sid"] = state.sid
                state.present += 1
                state.joined += 1
            elif name == "participant-leave":
                state.present -= 1
                if state.present == 0:
                    member["closes"] = True
                    state.sid = ""  # the next caller of this room opens a new conference
                    if state.joined >= ROOM_SIZE:  # every member came and went: room done
                        del self.rooms[room]
            sid = member["sid"]
            self.sequences[sid] += 1
            params = {"AccountSid": ACCOUNT_SID, "ConferenceSid": sid,
                      "FriendlyName": member["name"], "StatusCallbackEvent": name,
                      "SequenceNumber": str(self.sequences[sid]),
                      "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())}
            if name == "conference-end":
                params["ReasonConferenceEnded"] = "last-participant-left"
                del self.sequences[sid]
        if call is not None:
            params.update({"CallSid": call["CallSid"], "ParticipantLabel": member["label"],
                           "Muted": "false", "Hold": "false", "Coaching": "false",
                           "EndConferenceOnExit": "false", "StartConferenceOnEnter": "true"})
            if name == "participant-leave":
                params.update(ReasonParticipantLeft="participant_hung_up",
                              ParticipantCallStatus="completed")
        return params


def burst(gateway: GatewayServer, app: AppSide, *, seconds: float, concurrency: int,
          drain: float) -> dict:
    """Closed loop: `concurrency` calls in flight, each step at once, new calls for `seconds`;
    then wait for the app's callbacks. Throughput = webhooks answered / time to the last one."""
    engine = Engine(gateway.url, concurrency)
    began = time.monotonic()
    stop_at = began + seconds
    calls: Calls

    def next_call() -> None:
        if time.monotonic() < stop_at:
            calls.start(time.monotonic())

    calls = Calls(engine, gateway.url, hold=0, menu_wait=0, paced=False, on_finished=next_call)
    for _ in range(concurrency):
        calls.start(began)
    while time.monotonic() < stop_at + 30 and not (time.monotonic() > stop_at and engine.idle()):
        time.sleep(0.05)
    answered_at = time.monotonic()
    deadline = answered_at + drain
    while not app.complete(calls.expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    drained_at = time.monotonic()
    engine.stop()
    ok = sum(1 for record in engine.records if record[4])
    errors = len(engine.records) - ok
    return {"seconds": seconds, "concurrency": concurrency, "calls": len(calls.expected),
            "webhooks": ok, "errors": errors, "first_errors": engine.first_errors,
            "webhooks_per_s": ok / (answered_at - began),
            "end_to_end_webhooks_per_s": ok / (drained_at - began),
            "drain_s": drained_at - answered_at, "callbacks": app.check(calls.expected)}


# -- what is sampled ------------------------------------------------------------------------------
def proc_field_kb(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def process_memory(pid: int) -> dict[str, int] | None:
    """RSS, USS (private pages) and PSS in KB, and open file descriptors; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    return {"cpu_s": process_cpu_seconds(pid),
            "rss_kb": proc_field_kb(status, "VmRSS"),
            "uss_kb": proc_field_kb(rollup, "Private_Clean") + proc_field_kb(rollup,
                                                                              "Private_Dirty"),
            "pss_kb": proc_field_kb(rollup, "Pss"), "fds": fds}


class ProcessNames:
    """Stable names for the gateway's processes: a web worker that gunicorn replaces gets a new
    name (and series), so a restart is seen, not averaged away."""

    def __init__(self, root: int):
        self.root = root
        self.names: dict[int, str] = {}
        self.web_workers = 0

    def current(self) -> dict[str, int]:
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
                fields = text[text.rindex(")") + 2:].split()
                if int(fields[2]) != self.root:
                    continue
                pid, ppid = int(stat.parent.name), int(fields[1])
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, ValueError):
                continue
            found[pid] = self.names.get(pid) or self._name(pid, ppid, cmdline)
            self.names[pid] = found[pid]
        return {name: pid for pid, name in sorted(found.items())}

    def _name(self, pid: int, ppid: int, cmdline: str) -> str:
        if pid == self.root:
            return "launcher"
        if "gunicorn" in cmdline:
            if ppid == self.root:
                return "web master"
            self.web_workers += 1
            return f"web worker {self.web_workers}"
        if "gateway.cli worker" in cmdline:
            return "job worker"
        if "gateway.cli media" in cmdline:
            return "media" if ppid == self.root else f"media child {pid}"
        return f"other {pid}"


class StoreProbe:
    """The store's size and the queue's pending jobs, read as an operator would."""

    def __init__(self, gateway: GatewayServer, redis: RedisServer | None):
        self.redis = redis.client() if redis else None
        self.db = None
        self.queue_path = None
        if gateway.store_url.startswith("sqlite:///"):
            self.db = Path(gateway.store_url[len("sqlite:///"):])
            # The queue's file as gateway.jobs.queue_for names it.
            self.queue_path = self.db.with_name(self.db.stem + "-queue" + (self.db.suffix or ".db"))

    def sample(self) -> dict:
        if self.redis is not None:
            info = self.redis.info("memory")
            return {"redis_used_memory": info["used_memory"], "keys": self.redis.dbsize(),
                    "queue_pending": self.redis.llen("huey.redis.gateway"),
                    "queue_scheduled": self.redis.zcard("huey.schedule.gateway")}
        files = [self.db, *(Path(str(self.db) + s) for s in ("-wal", "-shm")),
                 self.queue_path, *(Path(str(self.queue_path) + s) for s in ("-wal", "-shm"))]
        sizes = {path.name: path.stat().st_size for path in files if path.exists()}
        result = {"sqlite_bytes": sum(sizes.values()), "files": sizes,
                  "keys": self._count(self.db, "SELECT (SELECT count(*) FROM kv) + "
                                               "(SELECT count(*) FROM counters)"),
                  "keys_by_prefix": self._prefixes(),
                  "queue_pending": self._count(self.queue_path, "SELECT count(*) FROM task"),
                  "queue_scheduled": self._count(self.queue_path,
                                                 "SELECT count(*) FROM schedule")}
        return result

    def _prefixes(self) -> dict[str, int]:
        """Live keys by what they hold (`call:`, `member:`, `room:`, `job:`...)."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True,
                                                    timeout=2)) as conn:
                return dict(conn.execute(
                    "SELECT substr(key, 1, instr(key, ':')), count(*) FROM kv"
                    " WHERE expires_at > ? GROUP BY 1", (time.time(),)).fetchall())
        except sqlite3.Error:
            return {}

    @staticmethod
    def _count(path: Path, sql: str) -> int | None:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                    timeout=2)) as conn:
                return conn.execute(sql).fetchone()[0]
        except sqlite3.Error:
            return None


GAUGES = ("gateway_live_rooms", "gateway_live_members", "gateway_deliveries_pending",
          "gateway_deliveries_failed")


def scrape_gauges(url: str) -> dict[str, float]:
    """The gauges of /metrics that tell whether state drains (rooms, members, outboxes)."""
    try:
        text = requests.get(url + "/metrics", timeout=5).text
    except requests.RequestException:
        return {}
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in GAUGES:
            values[name] = float(value)
    return values


class Sampler:
    """Every `every` seconds, one sample of everything above, until `stop()`."""

    def __init__(self, gateway: GatewayServer, engine: Engine, store: StoreProbe,
                 calls: Calls, every: float):
        self.gateway, self.engine, self.store, self.calls = gateway, engine, store, calls
        self.every = every
        self.names = ProcessNames(gateway.process.pid)
        self.samples: list[dict] = []
        self.began = time.monotonic()
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sampler")

    def start(self) -> Sampler:
        self.began = time.monotonic()
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()

    def _loop(self) -> None:
        next_at = self.began + self.every
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.sample()
            next_at += self.every

    def sample(self) -> None:
        at = time.monotonic()
        with self.engine.cv:
            records = self.engine.records[self._seen:]
            self._seen += len(records)
        latencies = [1000 * r[1] for r in records if r[4]]
        processes = {}
        for name, pid in self.names.current().items():
            memory = process_memory(pid)
            if memory:
                processes[name] = {"pid": pid, **memory}
        gateway_cpu = sum(p["cpu_s"] for p in processes.values())
        own_cpu = process_cpu_seconds(os.getpid())
        last = self.samples[-1] if self.samples else None
        interval = (at - self.began) - last["t"] if last else 0.0
        busy = {"gateway_cores": (gateway_cpu - last["gateway_cpu_s"]) / interval,
                "load_generator_cores": (own_cpu - last["load_generator_cpu_s"]) / interval,
                "gateway_cpu_ms_per_request": 1000 * (gateway_cpu - last["gateway_cpu_s"])
                / max(1, len(records))} if last and interval > 0 else {}
        self.samples.append({
            "t": round(at - self.began, 2), "load1": os.getloadavg()[0],
            "gateway_cpu_s": gateway_cpu, "load_generator_cpu_s": own_cpu, **busy,
            "calls_started": self.calls.started, "requests": len(records),
            "errors": sum(1 for r in records if not r[4]),
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "service_p99_ms": percentile([1000 * (r[1] - r[2]) for r in records if r[4]], 99),
            "max_lag_ms": max((1000 * r[2] for r in records), default=0.0),
            "processes": processes, "store": self.store.sample(),
            "gauges": scrape_gauges(self.gateway.url)})


# -- the verdict ----------------------------------------------------------------------------------
def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute; NaN under 3 points."""
    if len(points) < 3:
        return math.nan
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return math.nan
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def memory_series(samples: list[dict]) -> dict[str, dict]:
    """Per process: RSS and USS at the start and the end, and the slopes of the second half."""
    duration = samples[-1]["t"]
    series: dict[str, dict] = {}
    for name in dict.fromkeys(n for s in samples for n in s["processes"]):
        rows = [(s["t"], s["processes"][name]) for s in samples if name in s["processes"]]
        second = [(t, p) for t, p in rows if t >= duration / 2]
        series[name] = {
            "pid": rows[0][1]["pid"], "first_t": rows[0][0], "last_t": rows[-1][0],
            "rss_start_mb": rows[0][1]["rss_kb"] / 1024, "rss_end_mb": rows[-1][1]["rss_kb"] / 1024,
            "uss_start_mb": rows[0][1]["uss_kb"] / 1024, "uss_end_mb": rows[-1][1]["uss_kb"] / 1024,
            "rss_max_mb": max(p["rss_kb"] for _, p in rows) / 1024,
            "fds_start": rows[0][1]["fds"], "fds_end": rows[-1][1]["fds"],
            "rss_slope_mb_per_min": slope_per_minute([(t, p["rss_kb"] / 1024) for t, p in second]),
            "uss_slope_mb_per_min": slope_per_minute([(t, p["uss_kb"] / 1024) for t, p in second]),
            "whole_run": rows[0][0] == samples[0]["t"] and rows[-1][0] == duration}
    return series


def window_p99(records: list[tuple], start: float, end: float) -> float:
    return percentile([1000 * r[1] for r in records if r[4] and start <= r[0] < end], 99)


def verdict(result: dict) -> dict:
    series = result["memory"]
    growing = [name for name, s in series.items()
               if not s["rss_slope_mb_per_min"] < SLOPE_BOUND_MB_PER_MIN]
    replaced = [name for name, s in series.items() if not s["whole_run"]]
    callbacks = result["callbacks"]
    first, last = result["p99_first_ms"], result["p99_last_ms"]
    steady = last <= max(P99_FACTOR * first, first + P99_SLACK_MS)
    no_errors = (result["errors"] == 0 and not callbacks["missing"]
                 and not callbacks["out_of_order_calls"] and not result["gateway_log_errors"])
    return {
        "memory_flat": not growing, "growing": growing, "processes_replaced": replaced,
        "no_errors": no_errors, "p99_steady": steady,
        "pass": not growing and not replaced and steady and no_errors}


# -- the run --------------------------------------------------------------------------------------
def soak(args, workdir: Path) -> dict:
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(AnswerServer())
        side = AppSide(app)
        redis = (stack.enter_context(RedisServer(workdir / "redis"))
                 if args.store == "redis" else None)
        gateway = GatewayServer(
            workdir / "gateway", budget=13.0, store_url=redis.url() if redis else None,
            apps=[app_config(app.url("/answer"), hangup_url=app.url("/hangup"))])
        stack.enter_context(gateway)
        print(f"gateway serve on {gateway.url} ({args.store}); warming up", flush=True)
        warm = burst(gateway, side, seconds=3, concurrency=args.concurrency, drain=30)
        measured = None
        rate = args.rate
        if rate is None:
            measured = burst(gateway, side, seconds=args.burst, concurrency=args.concurrency,
                             drain=60)
            rate = args.share * measured["end_to_end_webhooks_per_s"]
            print(f"burst: {measured['end_to_end_webhooks_per_s']:.0f} webhooks/s end to end "
                  f"({measured['webhooks_per_s']:.0f}/s answered, {measured['errors']} errors); "
                  f"holding {args.share:.0%}: {rate:.0f} webhooks/s", flush=True)
        call_rate = rate / WEBHOOKS_PER_CALL
        engine = Engine(gateway.url, args.senders)
        calls = Calls(engine, gateway.url, hold=args.hold, menu_wait=args.menu)
        sampler = Sampler(gateway, engine, StoreProbe(gateway, redis), calls, args.every)
        duration = 60 * args.minutes
        load_before = os.getloadavg()
        sampler.start()
        began = sampler.began
        printer = threading.Thread(target=progress, args=(sampler, duration), daemon=True)
        printer.start()
        for index in itertools.count():  # open loop: call i starts at began + i / call_rate
            due = began + index / call_rate
            if due >= began + duration:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            calls.start(due)
        load_end = os.getloadavg()
        while not engine.idle() and time.monotonic() < began + duration + args.hold + 60:
            time.sleep(0.1)
        drain_from = time.monotonic()
        while not side.complete(calls.expected) and time.monotonic() < drain_from + 120:
            time.sleep(0.1)
        drain_s = time.monotonic() - drain_from
        sampler.stop()
        engine.stop()
        records = engine.records
        minute = min(60.0, duration / 3)
        ok = sum(1 for r in records if r[4])
        by_kind = Counter(r[3] for r in records)
        result = {
            "benchmark": "soak", "store": args.store, "minutes": args.minutes,
            "target_webhooks_per_s": rate, "calls_per_s": call_rate, "share": args.share,
            "burst": measured, "warmup": warm, "hold_s": args.hold, "menu_s": args.menu,
            "room_size": ROOM_SIZE, "senders": args.senders,
            "held_webhooks_per_s": sum(1 for r in records if r[0] - began < duration) / duration,
            "calls": calls.started, "requests": len(records), "ok": ok,
            "errors": len(records) - ok, "first_errors": engine.first_errors,
            "requests_by_kind": dict(by_kind),
            "p50_ms": percentile([1000 * r[1] for r in records if r[4]], 50),
            "p99_ms": percentile([1000 * r[1] for r in records if r[4]], 99),
            "service_p99_ms": percentile([1000 * (r[1] - r[2]) for r in records if r[4]], 99),
            "window_s": minute,
            "p99_first_ms": window_p99(records, began, began + minute),
            "p99_last_ms": window_p99(records, began + duration - minute, began + duration),
            "max_lag_ms": max((1000 * r[2] for r in records), default=0.0),
            "callbacks": side.check(calls.expected), "callback_drain_s": drain_s,
            "load_average_before": load_before, "load_average_end": load_end,
            "samples": sampler.samples, "memory": memory_series(sampler.samples),
            "slope_bound_mb_per_min": SLOPE_BOUND_MB_PER_MIN,
        }
        errors = [line for line in gateway.logs().splitlines()
                  if "Traceback" in line or " ERROR " in line]
        result["gateway_log_error_lines"] = len(errors)
        result["gateway_log_errors"] = errors[:20]
        result["verdict"] = verdict(result)
    return result


def progress(sampler: Sampler, duration: float) -> None:
    """One line per sample while the soak runs, so a long run shows how it goes."""
    shown = 0
    while shown < 10_000:
        time.sleep(1)
        while shown < len(sampler.samples):
            s = sampler.samples[shown]
            shown += 1
            memory = " ".join(f"{name.replace('web worker ', 'w')}={p['rss_kb'] / 1024:.1f}"
                              for name, p in s["processes"].items())
            print(f"  t={s['t']:6.1f}s req={s['requests']:5d} err={s['errors']} "
                  f"p50={s['p50_ms']:.0f} p99={s['p99_ms']:.0f} (served {s['service_p99_ms']:.0f})"
                  f" ms lag={s['max_lag_ms']:.0f} ms cores gw/gen={s.get('gateway_cores', 0):.2f}/"
                  f"{s.get('load_generator_cores', 0):.2f} "
                  f"load={s['load1']:.1f} pending={s['store'].get('queue_pending')} "
                  f"keys={s['store'].get('keys')} RSS MB: {memory}", flush=True)


# -- output ---------------------------------------------------------------------------------------
def report(result: dict) -> str:
    v = result["verdict"]
    cb = result["callbacks"]
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result["requests_by_kind"].items()))
    lines = [
        f"soak: {result['minutes']:g} min on {result['store']}, open loop at "
        f"{result['target_webhooks_per_s']:.0f} webhooks/s ({result['calls_per_s']:.1f} calls/s;"
        f" held {result['held_webhooks_per_s']:.0f}/s), load average "
        f"{result['load_average_before'][0]:.1f} -> {result['load_average_end'][0]:.1f}",
        f"requests {result['requests']} ({kinds}),"
        f" errors {result['errors']}; p50 / p99 {result['p50_ms']:.0f} / {result['p99_ms']:.0f} ms;"
        f" p99 first / last {result['window_s']:.0f} s: {result['p99_first_ms']:.0f} / "
        f"{result['p99_last_ms']:.0f} ms; from send to answer p99 {result['service_p99_ms']:.0f}"
        f" ms; generator lag max {result['max_lag_ms']:.0f} ms",
        f"callbacks: {cb['calls']} calls, {cb['missing']} missing, {cb['duplicated']} duplicated,"
        f" {cb['out_of_order_calls']} calls out of order (drained in "
        f"{result['callback_drain_s']:.1f} s)",
        f"{'process':<14} {'RSS start':>9} {'RSS end':>8} {'max':>6} {'slope':>7} "
        f"{'USS start':>9} {'USS end':>8} {'slope':>7} {'fds':>9}   (MB, MB/min over the 2nd half)"]
    for name, s in result["memory"].items():
        lines.append(f"{name:<14} {s['rss_start_mb']:>9.1f} {s['rss_end_mb']:>8.1f} "
                     f"{s['rss_max_mb']:>6.1f} {s['rss_slope_mb_per_min']:>+7.2f} "
                     f"{s['uss_start_mb']:>9.1f} {s['uss_end_mb']:>8.1f} "
                     f"{s['uss_slope_mb_per_min']:>+7.2f} {s['fds_start']:>4}->{s['fds_end']:<4}"
                     + ("" if s["whole_run"] else f"  (pid {s['pid']}: "
                        f"{s['first_t']:.0f}-{s['last_t']:.0f} s only)"))
    first, last = result["samples"][0], result["samples"][-1]
    store = ", ".join(f"{k} {first['store'].get(k)} -> {last['store'].get(k)}"
                      for k in ("sqlite_bytes", "redis_used_memory", "keys", "queue_pending")
                      if k in first["store"])
    lines.append(f"store: {store}; gauges at the end: {last['gauges']}")
    lines.append(
        f"verdict: memory {'flat' if v['memory_flat'] else 'GROWING: ' + ', '.join(v['growing'])}"
        f" (bound {SLOPE_BOUND_MB_PER_MIN:g} MB/min); "
        f"{'no errors' if v['no_errors'] else 'ERRORS'}; "
        f"p99 {'steady' if v['p99_steady'] else 'NOT steady'}"
        + (f"; processes replaced: {v['processes_replaced']}" if v["processes_replaced"] else "")
        + f": {'PASS' if v['pass'] else 'FAIL'}")
    if result["first_errors"]:
        lines.append(f"first errors: {result['first_errors']}")
    if result["gateway_log_errors"]:
        lines.append(f"gateway log: {result['gateway_log_error_lines']} ERROR lines, first: "
                     + " | ".join(result["gateway_log_errors"][:3]))
    return "\n".join(lines)


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=1, default=str))
    columns = ("t", "load1", "calls_started", "requests", "errors", "p50_ms", "p99_ms",
               "service_p99_ms", "max_lag_ms")
    with (out / "soak.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        store_keys = sorted({k for s in result["samples"] for k, v in s["store"].items()
                             if not isinstance(v, dict)})
        writer.writerow([*columns, *store_keys, *GAUGES])
        for s in result["samples"]:
            writer.writerow([s[c] for c in columns] + [s["store"].get(k) for k in store_keys]
                            + [s["gauges"].get(g) for g in GAUGES])
    with (out / "soak-processes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "process", "pid", "rss_kb", "uss_kb", "pss_kb", "fds"])
        for s in result["samples"]:
            for name, p in s["processes"].items():
                writer.writerow([s["t"], name, p["pid"], p["rss_kb"], p["uss_kb"], p["pss_kb"],
                                 p["fds"]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to hold the load")
    parser.add_argument("--rate", type=float, help="Twilio webhooks per second (all kinds); "
                        "default: --share of a measured closed-loop burst")
    parser.add_argument("--share", type=float, default=0.7, help="share of the burst's rate")
    parser.add_argument("--store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--burst", type=float, default=8.0, help="seconds of the rate burst")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight in bursts")
    parser.add_argument("--senders", type=int, default=64,
                        help="connections the open-loop load sends from")
    parser.add_argument("--hold", type=float, default=5.0, help="a member's stay in its room (s)")
    parser.add_argument("--menu", type=float, default=2.0, help="menu prompt until the key (s)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--out", help="directory for soak.json and the CSVs (default $BENCH_OUT"
                        " or a new temporary directory)")
    args = parser.parse_args(argv)
    out = Path(args.out or os.environ.get("BENCH_OUT") or tempfile.mkdtemp(prefix="soak-"))
    with tempfile.TemporaryDirectory(prefix="soak-run-") as tmp:
        result = soak(args, Path(tmp))
    print(report(result))
    write_outputs(result, out)
    print(f"samples: {out}/soak.json, soak.csv, soak-processes.csv")
    return 0 if result["verdict"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
