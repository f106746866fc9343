"""The service behind the gateway's Dial endpoints: a forward, as Plivo runs it, on Twilio.

* When the runner hands a `<Dial>` to Twilio, `expect` keeps what the later requests need (the
  action, callbackUrl, confirm settings, each leg's sendDigits) under the call and its step.
* Each dialled leg's status callback (only with a callbackUrl) becomes Plivo's DialAction
  callbacks: `answer` when the callee picks up, `connected` when it is bridged to the caller
  (at once, or once it pressed confirmKey), `hangup` when an answered leg ends. They go through
  the call's ordered outbox, shared with its other requests and its hangup request.
* The whisper (Twilio's Number/Sip `url`, fetched when the callee answers): a SIP user's
  sendDigits, then, with confirmSound + confirmKey, the sound's Play/Speak/Wait (fetched from
  the app, as Plivo does, with POST) inside a one-key Gather, then `<Hangup/>`: without the key
  that leg is dropped. A confirmSound that cannot be had drops the leg too (logged): the callee
  is never connected to a caller who was promised a confirmation.
* digitsMatch (the caller's keys, `gateway.dial.digits`): DialAction=digits in the same outbox;
  the Dial's end marks the forward over and stops its side stream.
* The Dial action: Plivo's action URL with DialStatus & co. (redirect true/false as
  `gateway.actions` says), after the answered leg's hangup callback; without an action the
  document goes on. A caller who hung up gets nothing requested, as for a Conference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from twilio.twiml.voice_response import Gather, Start, VoiceResponse

from .. import deliveries
from ..actions import follow_action
from ..app_side.client import AppRequestError
from ..app_side.params import call_uuid
from ..calls import CALL_TTL, CallRecord
from ..mappings import PlivoApp
from ..plivoxml import Dial, Play, PlivoXMLError, Speak, Wait
from ..plivoxml.elements import User
from ..runner import CallRunner, describe
from ..translate import TRANSLATORS, TranslationContext
from ..translate.builder import EMPTY_TWIML, HANGUP_TWIML, TwimlBuilder, render
from ..translate.context import member_label
from ..translate.dial import twilio_digits
from .params import action_params, answer_params, hangup_params

log = logging.getLogger("gateway.dial")

ENDED = {"completed", "canceled", "failed", "busy", "no-answer"}
SEEN_TTL = 26 * 3600.0
OUTBOX_WAIT = 2.0  # at most this long for the leg's callbacks still queued before the action
PROMPTS = (Play, Speak, Wait)  # what a confirmSound document may play (Plivo ignores the rest)


def dial_key(call_sid: str, step: int) -> str:
    return f"dial:{call_sid}:{step}"


def leg_key(child_sid: str) -> str:
    """A dialled leg that streams its audio (digitsMatchBLeg): whose Dial it belongs to."""
    return f"dial-leg:{child_sid}"


def answered_key(parent_sid: str) -> str:
    """The legs of a call's forwards that answered (their hangup callback is owed)."""
    return f"dial-answered:{parent_sid}"


def confirmed_key(child_sid: str) -> str:
    return f"dial-confirmed:{child_sid}"


def call_stream(call_sid: str) -> str:
    """The call's own ordered outbox (shared with its menus' actions and its hangup request)."""
    return f"call:{call_sid}"


def dial_settings(dial: Dial, app: PlivoApp) -> dict:
    return {
        "app": app.name, "action": dial.action, "method": dial.method, "redirect": dial.redirect,
        "callback_url": dial.callback_url, "callback_method": dial.callback_method,
        "confirm_sound": dial.confirm_sound if dial.confirms else None,
        "confirm_key": dial.confirm_key, "confirm_timeout": dial.confirm_timeout,
        "legs": [{"user": isinstance(n, User), "send_digits": n.send_digits}
                 for n in dial.children],
        "digits_match": list(dial.digits_match) if dial.callback_url else [],
        "digits_match_b_leg": list(dial.digits_match_b_leg) if dial.callback_url else [],
    }


class Forwards:
    def __init__(self, *, runner: CallRunner, store):
        self.runner = runner
        self.store = store

    # -- the runner hands a Dial to Twilio ----------------------------------------------------
    def expect(self, call: CallRecord, app: PlivoApp, dial: Dial) -> None:
        self.store.put(dial_key(call.call_sid, call.step),
                       {**dial_settings(dial, app), "step": call.step}, CALL_TTL)

    def _settings(self, call_sid: str, step: int | None) -> dict | None:
        return self.store.get(dial_key(call_sid, step)) if step is not None else None

    # -- each leg's status callback -----------------------------------------------------------
    def leg_event(self, leg: Mapping[str, str]) -> str:
        parent, child = leg.get("ParentCallSid", ""), leg.get("CallSid", "")
        step = int(leg["step"]) if str(leg.get("step", "")).isdigit() else None
        settings = self._settings(parent, step)
        call = self.runner.calls.get(parent)
        if settings is None or call is None or not settings.get("callback_url"):
            log.info("call %s: status of dialled leg %s for no Dial on record; dropped",
                     parent, child)
            return "unknown"
        status = leg.get("CallStatus", "")
        if status == "in-progress":
            answered = {**leg, "answered_at": time.time()}
            if not self.store.put_if_absent(f"seen:dial-leg:{child}:answer", answered, SEEN_TTL):
                return "duplicate"
            self.store.update(answered_key(parent), lambda current: {"legs": [
                *(current or {}).get("legs", []), {"child": child, "step": step}]}, SEEN_TTL)
            self._callback(call, settings, answer_params(leg, call.call_uuid, "answer"))
            if not settings.get("confirm_sound"):
                self._connected(call, settings, leg)
            return "answer"
        if status in ENDED:
            return self._hung_up(call, settings, leg)
        return "not-needed"  # initiated, ringing: Plivo has no callback for them

    def caller_ended(self, status: Mapping[str, str]) -> None:
        """The caller's call ended (its own status callback). A callee it was connected to may
        not have reported its end yet: its hangup callback goes first, so that the call's hangup
        request follows it, as on Plivo (the duration then counts to now)."""
        parent = status.get("CallSid", "")
        if status.get("CallStatus") not in ENDED:
            return
        legs = (self.store.get(answered_key(parent)) or {}).get("legs", [])
        call = self.runner.calls.get(parent) if legs else None
        if call is None:
            return
        call.ended = True  # this copy only: the callbacks say CallStatus=completed
        for leg in legs:
            settings = self._settings(parent, leg.get("step"))
            answered = self.store.get(f"seen:dial-leg:{leg['child']}:answer")
            if settings is None or answered is None:
                continue
            seconds = max(0, round(time.time() - float(answered.get("answered_at", 0))))
            self._hung_up(call, settings, {"CallSid": leg["child"], "CallStatus": "completed",
                                           "CallDuration": str(seconds)})

    def _hung_up(self, call: CallRecord, settings: dict, leg: Mapping[str, str]) -> str:
        """DialAction=hangup for a leg that answered (once, whoever reports it first: the leg's
        own status callback or the Dial action)."""
        child = leg.get("CallSid", "")
        answered = self.store.get(f"seen:dial-leg:{child}:answer")
        if answered is None:
            return "never-answered"
        key = f"seen:dial-leg:{child}:hangup"
        if not self.store.put_if_absent(key, {"at": time.time()}, SEEN_TTL):
            return "duplicate"
        self._callback(call, settings, hangup_params({**answered, **leg}, call.call_uuid))
        # Now in the outbox: a Dial action that lost the race above may go on (see
        # `wait_for_leg_hangup`).
        self.store.put(key, {"at": time.time(), "queued": True}, SEEN_TTL)
        return "hangup"

    def _connected(self, call: CallRecord, settings: dict, leg: Mapping[str, str]) -> None:
        self._callback(call, settings, answer_params(leg, call.call_uuid, "connected"))
        if settings.get("digits_match"):  # the digits callbacks name the connected callee
            step = settings.get("step")
            self.store.update(dial_key(call.call_sid, step), lambda current: current and {
                **current, "b_leg": leg.get("CallSid", "")}, CALL_TTL)

    def digits(self, call: CallRecord, settings: dict, pattern: str, pressed_by: str = "ALeg",
               b_leg: str | None = None) -> None:
        """DialAction=digits: the caller (ALeg) or the callee (BLeg) typed a pattern
        (`gateway.dial.digits`)."""
        b_leg = b_leg or settings.get("b_leg")
        self._callback(call, settings, {
            "DialAction": "digits", "DialDigitsMatch": pattern,
            "DialDigitsPressedBy": pressed_by,
            "DialALegUUID": call.call_uuid,
            "DialBLegUUID": call_uuid(b_leg) if b_leg else ""})

    def _callback(self, call: CallRecord, settings: dict, dial_params: dict[str, str]) -> None:
        deliveries.enqueue_next(self.store, call_stream(call.call_sid), {
            "url": settings["callback_url"], "method": settings["callback_method"],
            "app": settings["app"], "kind": "dial",
            "params": {**call.params, "CallStatus": "completed" if call.ended
                       else "in-progress", **dial_params}})

    # -- the callee answered: the whisper -------------------------------------------------------
    def whisper(self, twilio: Mapping[str, str], step: int | None, leg: int) -> str:
        parent = twilio.get("ParentCallSid", "")
        settings = self._settings(parent, step)
        call = self.runner.calls.get(parent)
        app = self.runner.mappings.app_named(call.app) if call else None
        if settings is None or call is None or app is None or not (
                0 <= leg < len(settings["legs"])):
            log.warning("call %s: whisper for a Dial the gateway has no record of; that leg is "
                        "hung up", parent)
            return HANGUP_TWIML
        response = VoiceResponse()
        if settings.get("digits_match_b_leg"):
            self._fork_callee(response, twilio.get("CallSid", ""), parent, step or 0)
        digits = settings["legs"][leg]["send_digits"]
        if settings["legs"][leg]["user"] and digits:
            response.play(digits=twilio_digits(digits))
        if settings.get("confirm_sound"):
            gather = self._confirmation(call, app, settings, step or 0, leg)
            if gather is None:
                return HANGUP_TWIML
            response.append(gather)
            response.hangup()  # no key (or the wrong one): that leg is dropped
        return render(response)

    def _fork_callee(self, response: VoiceResponse, child: str, parent: str, step: int) -> None:
        """digitsMatchBLeg: `<Start><Stream>` of the callee's own audio, from its whisper (the
        stream lasts as long as the callee's call), labelled with the callee's CallSid."""
        label = member_label(child, step)
        self.store.put(leg_key(child), {"parent": parent, "step": step}, CALL_TTL)
        start = Start()
        stream = start.stream(name=label, url=self.runner.urls.media_stream,
                              track="inbound_track")
        stream.parameter(name="member", value=label)
        stream.parameter(name="token", value=self.runner.stream_token(label)
                         if self.runner.stream_token else "")
        response.append(start)

    def _confirmation(self, call: CallRecord, app: PlivoApp, settings: dict, step: int,
                      leg: int) -> Gather | None:
        deadline = time.monotonic() + self.runner.budget
        try:
            fetched = self.runner.fetch(app, settings["confirm_sound"], "POST",
                                        {**call.params, "CallStatus": "in-progress"}, deadline)
        except (AppRequestError, PlivoXMLError, LookupError) as exc:
            log.error("call %s: confirmSound failed (%s): the callee is not connected",
                      call.call_sid, describe(exc))
            return None
        context = TranslationContext(account=app.account, urls=self.runner.urls, step=step,
                                     first_in_call=False, call_sid=call.call_sid)
        builder = TwimlBuilder(context)
        gather = Gather(input="dtmf", numDigits=1, timeout=settings["confirm_timeout"],
                        action=self.runner.urls.dial_confirmed(step, leg), method="POST",
                        finishOnKey="")
        with builder.inside(gather):
            for element in fetched.document.steps:
                if isinstance(element, PROMPTS):
                    TRANSLATORS[type(element)](element, builder)
                else:
                    log.info("call %s: confirmSound: <%s> ignored (only Play, Speak, Wait)",
                             call.call_sid, element.TAG)
        return gather

    def confirmed(self, twilio: Mapping[str, str], step: int | None) -> str:
        """The callee's key: confirmKey connects it, anything else hangs that leg up."""
        parent = twilio.get("ParentCallSid", "")
        settings = self._settings(parent, step)
        call = self.runner.calls.get(parent)
        if settings is None or call is None:
            return HANGUP_TWIML
        if twilio.get("Digits", "") != settings["confirm_key"]:
            log.info("call %s: callee %s did not press confirmKey; that leg is hung up", parent,
                     twilio.get("CallSid", "-"))
            return HANGUP_TWIML
        self.store.put(confirmed_key(twilio.get("CallSid", "")), {"at": time.time()}, SEEN_TTL)
        if settings.get("callback_url"):
            self._connected(call, settings, twilio)
        return EMPTY_TWIML  # the whisper ends: Twilio bridges the callee to the caller

    # -- the forward is over: Twilio's Dial action ------------------------------------------------
    def done(self, twilio: Mapping[str, str], step: int | None) -> str:
        call_sid = twilio.get("CallSid", "")
        deadline = time.monotonic() + self.runner.budget
        if twilio.get("CallStatus") in ENDED:
            return EMPTY_TWIML  # the caller hung up: Plivo requests nothing more
        call, app = self.runner.load(call_sid)
        self.runner.require_current_step(call, step)
        settings = self._settings(call_sid, step if step is not None else call.step)
        if settings is None:
            log.warning("call %s: a Dial ended that the gateway has no record of; going on",
                        call_sid)
            return self.runner.continue_document(call, app, deadline)
        stop: tuple[str, ...] = ()
        if settings.get("digits_match"):
            # The forward is over: its side stream is stopped and a late match dropped.
            stop = (member_label(call_sid, settings["step"]),)
            self.store.update(dial_key(call_sid, settings["step"]),
                              lambda current: current and {**current, "over": True}, CALL_TTL)
        b_leg = twilio.get("DialCallSid", "")
        if (settings.get("confirm_sound") and twilio.get("DialCallStatus") in ("completed",
                                                                           "answered")
                and self.store.get(confirmed_key(b_leg)) is None):
            # Twilio's docs do not say what the caller's Dial reports when the only callee's
            # whisper declined; a callee that never pressed confirmKey was never connected.
            twilio = {**twilio, "DialCallStatus": "no-answer", "DialCallDuration": "0"}
        if settings.get("callback_url") and b_leg:
            self._hung_up(call, settings, {"CallSid": b_leg, "CallStatus": "completed",
                                           "CallDuration": twilio.get("DialCallDuration", "0")})
        if not settings.get("action"):
            return self.runner.continue_document(call, app, deadline, stop)
        params = {**call.params, "CallStatus": "in-progress",
                  **action_params(twilio, call.call_uuid)}
        if settings["redirect"]:
            until = min(deadline - 1.0, time.monotonic() + OUTBOX_WAIT)
            self.wait_for_leg_hangup(b_leg, until)
            self.wait_for_outbox(call_sid, until)

        def in_background(request: dict) -> None:
            deliveries.enqueue_next(self.store, call_stream(call_sid), request)

        return follow_action(self.runner, call, app, url=settings["action"],
                             method=settings["method"], params=params,
                             redirect=settings["redirect"], deadline=deadline,
                             send_in_background=in_background, stop_streams=stop)

    def wait_for_leg_hangup(self, b_leg: str, until: float) -> None:
        """The leg's own status callback may have claimed its DialAction=hangup a moment ago
        (another worker) and not put it in the outbox yet: wait, bounded, until it has."""
        if not b_leg:
            return
        key = f"seen:dial-leg:{b_leg}:hangup"
        while time.monotonic() < until:
            marker = self.store.get(key)
            if marker is None or marker.get("queued"):
                return
            time.sleep(0.02)

    def wait_for_outbox(self, call_sid: str, until: float) -> None:
        """Until the call's queued callbacks (the leg's hangup) are delivered, or `until`:
        Plivo sends DialAction=hangup before the action."""
        key = deliveries.outbox_key(call_stream(call_sid))
        while time.monotonic() < until:
            box = self.store.get(key)
            if not box or not box["items"]:
                return
            time.sleep(0.02)
        log.warning("call %s: Dial callbacks still queued; the action goes first", call_sid)
