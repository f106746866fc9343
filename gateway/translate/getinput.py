"""`<GetInput>` -> `<Gather input="dtmf speech">` (per inputType) reporting to the gateway.

Native: the prompts, inputType (Twilio's `input`), numDigits, finishOnKey, language, hints,
speechEndTimeout (Twilio's `speechTimeout`, `auto` included), profanityFilter (always written:
Twilio filters by default, Plivo does not), speechModel (command_and_search is Twilio's
numbers_and_commands; phone_call is Twilio's enhanced phone_call). executionTimeout becomes
Twilio's `timeout` (how long it listens after the prompts). Interim results: Twilio's
`partialResultCallback` points at the gateway, which forwards Plivo's parameters to
interimSpeechResultsCallback in order. The action comes back to the gateway (empty results
included), which requests Plivo's action with InputType, Digits, Speech, SpeechConfidenceScore;
no input: the next element, no request. Nearest: Twilio has no separate wait between keys
(digitEndTimeout): its `timeout` applies between keys too.
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather

from ..plivoxml import GetInput
from .builder import TwimlBuilder
from .outcome import Flow
from .prompts import translate_prompts

# Plivo speechModel -> Twilio (speechModel, enhanced)
SPEECH_MODELS: dict[str, tuple[str, bool]] = {
    "default": ("default", False),
    "command_and_search": ("numbers_and_commands", False),
    "phone_call": ("phone_call", True),
}


def translate_getinput(menu: GetInput, builder: TwimlBuilder) -> Flow:
    ctx = builder.context
    attributes: dict[str, object] = {
        "input": menu.input_type, "action": ctx.urls.gather(ctx.step), "method": "POST",
        "timeout": menu.execution_timeout, "actionOnEmptyResult": True,
    }
    if menu.dtmf:
        attributes.update(numDigits=menu.num_digits, finishOnKey=menu.finish_on_key)
    if menu.speech:
        model, enhanced = SPEECH_MODELS[menu.speech_model]
        attributes.update(
            speechTimeout=menu.speech_end_timeout or "auto", language=menu.language,
            speechModel=model, profanityFilter=menu.profanity_filter)
        if enhanced:
            attributes["enhanced"] = True
        if menu.hints:
            attributes["hints"] = ", ".join(menu.hints)
        if menu.interim_speech_results_callback:
            attributes.update(partialResultCallback=ctx.urls.gather_partial(ctx.step),
                              partialResultCallbackMethod="POST")
    gather = Gather(**attributes)
    with builder.inside(gather):
        translate_prompts(menu.children, builder)
    builder.verbs += 1
    _report(menu, builder)
    return Flow.HANDBACK


def _report(m: GetInput, builder: TwimlBuilder) -> None:
    def note(status: str, attribute: str | None, message: str) -> None:
        builder.note("GetInput", status, message, line=m.line, attribute=attribute)  # type: ignore[arg-type]

    note("translated", "executionTimeout", f"Twilio listens {m.execution_timeout} s after the "
         "prompts (its timeout)")
    if m.dtmf and m.digit_end_timeout is not None:
        note("translated", "digitEndTimeout", f"Twilio has one timeout for the first key and "
             f"between keys: it waits {m.execution_timeout} s between keys, not "
             f"{m.digit_end_timeout} s")
    if m.speech and m.speech_model != "default":
        model, enhanced = SPEECH_MODELS[m.speech_model]
        note("translated", "speechModel", f"Twilio's {model}" + (" (enhanced)" if enhanced
                                                                   else ""))
    if m.interim_speech_results_callback:
        note("emulated", "interimSpeechResultsCallback", "Twilio's partial results, forwarded "
             f"by the gateway ({m.interim_speech_results_callback_method}) with StableSpeech, "
             "UnstableSpeech, Stability and SequenceNumber, in order")
    note("emulated", "action", f"requested ({m.method}) by the gateway with InputType, Digits, "
         "Speech and SpeechConfidenceScore" + ("; its XML replaces the rest of the document"
                                              if m.redirect else "; in the background, and the "
                                              "document goes on"))
    if not m.log:
        note("translated", "log", "the gateway never logs what the caller said or pressed; "
             "Twilio's own call logs still hold it")
