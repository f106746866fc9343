"""`<Message>` -> an SMS through Twilio's Messages API, sent by the gateway (pure: an effect).

TwiML's own `<Sms>` verb is retired and only ever sent from the called number, so the gateway
sends the message itself (`gateway.messaging`, a job): from the mapping's `sms_from`, else the
number the call reached (Twilio sends only from numbers of the account: Plivo's `src` is reported
when it differs). No TwiML is emitted and the document goes on at once, as on Plivo. `type`
mms or whatsapp cannot run (the element has no media URL, and WhatsApp senders are configured
apart on Twilio): the stretch fails with the reason, before anything of it is played.
"""

from __future__ import annotations

from ..plivoxml.elements import Message
from .builder import TwimlBuilder
from .outcome import ElementCannotRun, Flow, MessageQueued


def translate_message(message: Message, builder: TwimlBuilder) -> Flow:
    if message.type != "sms":
        raise ElementCannotRun("Message", message.line, f"type {message.type!r}: the gateway "
                               "sends SMS only (Plivo's Message XML reference allows sms)")
    if not message.dst:
        raise ElementCannotRun("Message", message.line, "no dst: there is nobody to send the "
                               "message to")
    builder.effects.append(MessageQueued(
        key=f"{builder.context.step}-{message.line}", destinations=message.dst or (),
        text=message.text, src=message.src, callback_url=message.callback_url,
        callback_method=message.callback_method))
    builder.note("Message", "emulated", f"sent to {len(message.dst or ())} number(s) through "
                 "Twilio's Messages API from the mapping's sms_from (else the called number)",
                 line=message.line)
    return Flow.CONTINUE
