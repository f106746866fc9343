"""Wiring: everything a gateway process needs, built once from `Settings`.

The web app and the job worker both use one `Runtime`: the shared store, the routing, the
client that talks to customer apps, the Twilio REST client, and the domain services on top.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, fields

from . import jobs
from .app_side.client import AppClient
from .app_side.guard import AppGuard
from .calls import CallRecord, Calls
from .conference.action import ConferenceExit
from .conference.events import ConferenceEvents
from .conference.members import Member, Members
from .conference.sounds import ConferenceSounds
from .dial.forwards import Forwards
from .ivr.menus import Menus
from .mappings import Mappings, PlivoApp, load_mappings
from .media.tokens import stream_token, token_key
from .observability import JsonFormatter
from .plivoxml import Conference
from .recording.voicemail import Voicemail
from .runner import CallRunner
from .settings import Settings
from .state import Store, open_store
from .transcription import EmbeddedEngine, engine_from
from .translate import GatewayUrls, MessageQueued, RecordingBooked, ScheduledHangup
from .translate.context import member_label
from .translate.rooms import twilio_room_name
from .twilio_side.rest import TwilioRest


@dataclass
class Runtime:
    settings: Settings
    mappings: Mappings
    store: Store
    client: AppClient
    twilio: TwilioRest
    urls: GatewayUrls
    calls: Calls
    members: Members
    runner: CallRunner
    events: ConferenceEvents
    exits: ConferenceExit
    sounds: ConferenceSounds
    menus: Menus
    voicemail: Voicemail
    forwards: Forwards
    transcriber: EmbeddedEngine


def build_runtime(settings: Settings) -> Runtime:
    from . import deliveries, emulations, messaging  # noqa: F401  (their job handlers)
    from .recording import voicemail  # noqa: F401  (its jobs: transcribe, record_call)

    mappings = load_mappings(settings.mappings_path)
    store = open_store(settings.store_url)
    urls = GatewayUrls(settings.public_url, media=settings.media_url)
    media_key = token_key(settings.twilio_auth_token)
    calls = Calls(store)
    members = Members(store, calls)

    def expect_member(call: CallRecord, app: PlivoApp, conference: Conference) -> None:
        settings_dict = {f.name: getattr(conference, f.name) for f in fields(conference)
                         if f.name not in ("line", "body")}
        label = member_label(call.call_sid, call.step)
        call.member_labels = [*call.member_labels, label]  # the hangup request waits for them
        call.member = Member(  # saved with the call record; see Members
            label=label, call_sid=call.call_sid, step=call.step,
            app=app.name, room=conference.room,
            twilio_room=twilio_room_name(app.account, conference.room),
            settings=settings_dict, call_params=dict(call.params)).to_dict()

    def schedule_effects(call: CallRecord, app: PlivoApp, effects) -> None:
        for effect in effects:
            if isinstance(effect, ScheduledHangup):
                jobs.schedule("hangup_call", {"call_sid": call.call_sid},
                              delay=effect.seconds, store=store)
            elif isinstance(effect, MessageQueued):
                messaging.queue_message(store, call, app, effect)
            elif isinstance(effect, RecordingBooked):
                # Saved with the call record: the recording's callbacks come later.
                call.records[effect.key] = {**effect.settings_dict, "kind": effect.kind}
                if effect.kind == "session":
                    # A moment later: Twilio records only a call that is in progress, which
                    # this one is once the TwiML being returned runs (the job retries).
                    jobs.schedule("record_call", {"call_sid": call.call_sid, "key": effect.key},
                                  delay=0.3, store=store)

    forwards: list[Forwards] = []  # built with the runner it needs

    def expect_dial(call: CallRecord, app: PlivoApp, dial) -> None:
        forwards[0].expect(call, app, dial)

    runner = CallRunner(mappings=mappings, calls=calls, client=AppClient(), urls=urls,
                        budget=settings.webhook_budget, on_conference=expect_member,
                        on_effects=schedule_effects, on_dial=expect_dial,
                        max_call_seconds=settings.max_call_seconds,
                        transcription=settings.transcription,
                        stream_token=lambda label: stream_token(media_key, label),
                        guard=AppGuard(max_in_flight=settings.app_max_fetches))
    forwards.append(Forwards(runner=runner, store=store))
    return Runtime(
        settings=settings, mappings=mappings, store=store, client=runner.client,
        twilio=TwilioRest(settings.twilio_account_sid, settings.twilio_auth_token,
                          settings.twilio_api_base_url),
        urls=urls, calls=calls, members=members, runner=runner,
        events=ConferenceEvents(store=store, members=members, calls=calls, mappings=mappings,
                                urls=urls),
        exits=ConferenceExit(runner=runner, members=members, store=store),
        sounds=ConferenceSounds(runner=runner, members=members),
        menus=Menus(runner=runner, store=store),
        voicemail=Voicemail(runner=runner, calls=calls, store=store,
                            engine_name=settings.transcription),
        forwards=forwards[0],
        transcriber=engine_from(settings.transcription_command, settings.transcription_timeout),
    )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(Settings.from_env())
        return _runtime


jobs.use_runtime(get_runtime)  # the jobs run against this process's runtime


def configure_logging() -> None:
    level = os.environ.get("GATEWAY_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    if os.environ.get("GATEWAY_LOG_FORMAT", "").strip().lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler])
    # huey logs every task at INFO; the gateway's own lines say what matters.
    logging.getLogger("huey").setLevel(max(logging.WARNING, logging.root.level))
    for name in URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQueries) for f in logger.filters):
            logger.addFilter(RedactQueries())


# urllib3's loggers that name request URLs (a filter on a logger does not reach its children).
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager",
                   "urllib3.connection", "urllib3.response")


class RedactQueries(logging.Filter):
    """At DEBUG, urllib3 logs each request's path with its query string; query strings and
    fragments may carry an app's secrets and are never logged, so they are cut from its lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        record.msg = _without_query(record.msg)
        return True


def _without_query(value):
    if isinstance(value, str) and ("?" in value or "#" in value):
        return value.split("?", 1)[0].split("#", 1)[0] + ("?…" if "?" in value else "")
    return value
