"""The caller answers a menu: Twilio's Gather comes back, and the gateway does what Plivo does.

Every Gather the gateway emits reports to it, empty results included. Judged by `answers`:

* valid: with an action URL, it is requested with Plivo's parameters (`Digits`; for GetInput
  also `InputType`, `Speech`, `SpeechConfidenceScore`, `BilledAmount`) and the call's; with
  `redirect="true"` its XML replaces the rest of the document; with `redirect="false"` it is
  delivered in the background (the call's ordered outbox, before its hangup request) and the
  document goes on. Without an action the document goes on.
* nothing, or keys outside `validDigits`: the menu is heard again (after `invalidDigitsSound`
  for invalid keys) until `retries` attempts have failed (GetInput: one attempt), then the next
  element runs and nothing is requested, as on Plivo. The count lives in the call record.

Interim speech results (Twilio's partialResultCallback) are forwarded to the menu's
interimSpeechResultsCallback through the same ordered outbox; an action that takes over the call
waits (bounded) until they are delivered, so the app sees them before the final result, as on
Plivo. Keys and speech are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from .. import deliveries
from ..actions import follow_action
from ..calls import CallRecord
from ..deliveries import call_stream
from ..mappings import PlivoApp
from ..plivoxml import Document, GetDigits, GetInput, parse_document
from ..runner import CallRunner
from ..translate import INPUT_ELEMENTS, TranslationContext, translate_input_again
from ..translate.builder import EMPTY_TWIML
from .answers import interim_params, judge

log = logging.getLogger("gateway.ivr")

ENDED = {"completed", "canceled", "failed", "busy", "no-answer"}
INTERIM_WAIT = 2.0  # at most this long for interim results still queued before the action

Menu = GetDigits | GetInput


class Menus:
    def __init__(self, *, runner: CallRunner, store):
        self.runner = runner
        self.store = store

    def current(self, call: CallRecord) -> tuple[Document, int, Menu] | None:
        """The menu the call is at: the step before its continuation, if that is a menu."""
        if call.document is None or not call.resume_at:
            return None
        document = parse_document(call.document)
        at = call.resume_at - 1
        element = document.steps[at] if at < len(document.steps) else None
        if not isinstance(element, INPUT_ELEMENTS):
            return None
        return document, at, element

    def answered(self, twilio: Mapping[str, str], step: int | None) -> str:
        """Twilio's Gather action. Returns TwiML; raises CallFailed like the runner."""
        call_sid = twilio.get("CallSid", "")
        deadline = time.monotonic() + self.runner.budget
        call, app = self.runner.load(call_sid)
        if twilio.get("CallStatus") in ENDED:
            return EMPTY_TWIML  # the caller is gone: Plivo requests nothing more
        self.runner.require_current_step(call, step)  # a replayed answer never reaches the app
        found = self.current(call)
        if found is None:
            log.warning("call %s: a menu answer, but the call is not at a menu; going on",
                        call_sid)
            return self.runner.continue_document(call, app, deadline)
        document, at, menu = found
        answer = judge(menu, twilio)
        if answer.verdict == "valid":
            call.input_attempts = 0
            return self.valid(call, app, menu, answer.params, deadline)
        invalid = answer.verdict == "invalid"
        if invalid:
            log.info("call %s: menu of line %d: invalid input (%s)", call_sid, menu.line,
                     answer.reason)
        sound = menu.invalid_digits_sound if invalid and isinstance(menu, GetDigits) else None
        attempts = call.input_attempts + 1
        allowed = menu.retries if isinstance(menu, GetDigits) else 1
        if attempts < allowed:
            call.input_attempts = attempts
            return self.listen_again(call, app, document, at, sound)
        call.input_attempts = 0
        return self.runner.continue_document(call, app, deadline, sound_first=sound)

    def valid(self, call: CallRecord, app: PlivoApp, menu: Menu, answer: dict[str, str],
              deadline: float) -> str:
        if not menu.action:
            return self.runner.continue_document(call, app, deadline)
        params = {**call.params, "CallStatus": "in-progress", **answer}
        if (menu.redirect and isinstance(menu, GetInput)
                and menu.interim_speech_results_callback):
            self.wait_for_outbox(call.call_sid, min(deadline - 1.0,
                                                    time.monotonic() + INTERIM_WAIT))
        return follow_action(self.runner, call, app, url=menu.action, method=menu.method,
                             params=params, redirect=menu.redirect, deadline=deadline,
                             send_in_background=lambda request: deliveries.enqueue_next(
                                 self.store, call_stream(call.call_sid), request))

    def wait_for_outbox(self, call_sid: str, until: float) -> None:
        """Until the call's queued requests (interim results) are delivered, or `until`."""
        key = deliveries.outbox_key(call_stream(call_sid))
        while time.monotonic() < until:
            box = self.store.get(key)
            if not box or not box["items"]:
                return
            time.sleep(0.02)
        log.warning("call %s: interim speech results still queued; the action goes first",
                    call_sid)

    def listen_again(self, call: CallRecord, app: PlivoApp, document: Document, at: int,
                     sound: str | None) -> str:
        call.step += 1
        context = TranslationContext(account=app.account, urls=self.runner.urls,
                                     step=call.step, first_in_call=False,
                                     call_sid=call.call_sid)
        result = translate_input_again(document, context, at, sound)
        call.resume_at = result.resume_at
        self.runner.calls.save(call)
        return result.twiml

    def partial(self, twilio: Mapping[str, str]) -> None:
        """Twilio's partial speech result: forwarded to interimSpeechResultsCallback."""
        call_sid = twilio.get("CallSid", "")
        call, app = self.runner.load(call_sid)
        found = self.current(call)
        if found is None or not isinstance(found[2], GetInput):
            log.info("call %s: a partial speech result, but the call is not at a GetInput; "
                     "dropped", call_sid)
            return
        menu = found[2]
        if not menu.interim_speech_results_callback:
            return
        params = {**call.params, "CallStatus": "in-progress", **interim_params(twilio)}
        deliveries.enqueue_next(self.store, call_stream(call_sid), {
            "url": menu.interim_speech_results_callback,
            "method": menu.interim_speech_results_callback_method, "app": app.name,
            "kind": "interim", "params": params})
