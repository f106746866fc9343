"""Sounds Plivo fetches by URL: waitSound (looped while a member waits) and enter/exitSound.

Twilio asks the gateway (waitUrl, or the URL of a REST announcement); the gateway requests the
Plivo URL with POST and the call's parameters, as Plivo does, and translates its Play, Speak and
Wait (other elements are ignored, as on Plivo). A wait document loops through a final Redirect.
A sound that cannot be fetched is silence, and a log line says why. The wait document is fetched
once per member (Plivo sets its hold music once); Twilio's loops replay the translation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from ..app_side.client import AppRequestError
from ..plivoxml import PlivoXMLError
from ..runner import CallRunner, describe, url_for_log
from ..translate import TranslationContext
from ..translate.builder import EMPTY_TWIML
from ..translate.context import member_label
from ..translate.sounds import translate_sounds
from .members import Members

log = logging.getLogger("gateway.conference")

SILENCE = EMPTY_TWIML


class ConferenceSounds:
    def __init__(self, *, runner: CallRunner, members: Members):
        self.runner = runner
        self.members = members

    def _sound(self, label: str, url: str, loop_url: str | None) -> str:
        member = self.members.get(label)
        if member is None:
            return SILENCE
        call, app = self.runner.load(member.call_sid)
        deadline = time.monotonic() + self.runner.budget
        params = {**call.params, "CallStatus": "in-progress"}
        try:
            fetched = self.runner.fetch(app, url, "POST", params, deadline)
        except (AppRequestError, PlivoXMLError, LookupError) as exc:  # silence, not an error
            log.warning("call %s: sound %s failed: %s", call.call_sid, url_for_log(url),
                        describe(exc))
            return SILENCE
        context = TranslationContext(account=app.account, urls=self.runner.urls,
                                     step=member.step, call_sid=call.call_sid)
        return translate_sounds(fetched.document, context, loop_url=loop_url).twiml

    def wait_music(self, twilio: Mapping[str, str], step: int | None) -> str:
        """Fetched from the app once per member, as Plivo does; each loop replays it."""
        call_sid = twilio.get("CallSid", "")
        call, _ = self.runner.load(call_sid)
        label = member_label(call_sid, step if step is not None else call.step)
        member = self.members.get(label)
        if member is None or not member.settings.get("wait_sound"):
            return SILENCE
        if member.wait_twiml:
            return member.wait_twiml
        twiml = self._sound(label, member.settings["wait_sound"],
                            self.runner.urls.conference_wait(member.step))
        if twiml != SILENCE:
            self.members.remember_wait_music(label, twiml)
        return twiml

    def announcement(self, label: str, sound: str) -> str:
        member = self.members.get(label)
        if member is None:
            return SILENCE
        url = member.settings.get("enter_sound" if sound == "enter" else "exit_sound", "")
        if not url.startswith("http"):
            return SILENCE
        return self._sound(label, url, None)
