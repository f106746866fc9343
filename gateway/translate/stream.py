"""`<Stream>` -> `<Start><Stream>` (one-way) or `<Connect><Stream>` (bidirectional, or
keepCallAlive), pointed at the gateway's relay, never at the app (pure: no I/O).

The app's WebSocket server speaks Plivo's stream protocol, Twilio speaks its own: Twilio streams to
the gateway's WebSocket server (the side-stream URL), which opens the app's `wss://` URL and relays
both ways (`gateway.media.relay`). What the relay needs (the app's URL, contentType, extraHeaders,
streamTimeout, the status callback, the Plivo ids) travels in the stream's `<Parameter>`s as one
JSON text cut in pieces (Twilio allows under 500 characters a parameter), with an HMAC token over
it: the relay trusts nothing it did not sign, and needs no shared state.

* one-way, keepCallAlive="false": `<Start><Stream>`; the document goes on at once, as on Plivo.
* bidirectional="true" or keepCallAlive="true": `<Connect><Stream action=continue>`; Twilio runs
  nothing else until the socket closes, then asks the gateway for the next element (Plivo:
  "subsequent XML elements execute only after the stream disconnects"). A bidirectional stream
  carries the inbound track only (both platforms); a keepCallAlive stream of the outbound or
  both tracks carries the inbound track (Twilio's Connect only has that one): reported.

The stream URL's host must be in the mapping's allowed_hosts (`context.allowed_hosts`): a URL
elsewhere makes the stretch `ElementCannotRun`, before anything of it is played.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

from twilio.twiml.voice_response import Connect, Start

from ..app_side.hosts import host_listed
from ..app_side.params import call_uuid
from ..plivoxml.elements import Stream
from .builder import TwimlBuilder
from .outcome import ElementCannotRun, Flow

TWILIO_TRACKS = {"inbound": "inbound_track", "outbound": "outbound_track", "both": "both_tracks"}
PIECE = 400  # characters of the relay's settings per <Parameter> (Twilio: name+value < 500)
RELAY_PARAMETER = "relay"  # pieces are relay0, relay1, ...; the token is `relay_token`
_STREAM_NAMESPACE = uuid.UUID("6f1d3c52-8a41-4f0e-9a57-3c1b2d7e9f10")


def relay_settings(stream: Stream, builder: TwimlBuilder) -> dict:
    """What the relay needs, as plain data (keys are short: they travel in every TwiML)."""
    context = builder.context
    stream_id = str(uuid.uuid5(_STREAM_NAMESPACE,
                               f"{context.call_sid}:{context.step}:{stream.line}"))
    return {
        "url": stream.url, "bidirectional": stream.bidirectional, "track": stream.audio_track,
        "timeout": stream.stream_timeout, "contentType": stream.content_type,
        "extraHeaders": stream.extra_headers, "callback": stream.status_callback_url,
        "callbackMethod": stream.status_callback_method, "app": context.app,
        "account": context.account, "callUUID": call_uuid(context.call_sid),
        "streamId": stream_id, "callSid": context.call_sid,
    }


def translate_stream(stream: Stream, builder: TwimlBuilder) -> Flow:
    context = builder.context
    host = urlsplit(stream.url).hostname or ""
    if context.allowed_hosts is not None and not host_listed(host, context.allowed_hosts):
        raise ElementCannotRun("Stream", stream.line, f"the stream URL's host {host!r} is not "
                               "in the mapping's allowed_hosts")
    settings = json.dumps(relay_settings(stream, builder), separators=(",", ":"),
                          sort_keys=True)
    blocking = stream.bidirectional or stream.keep_call_alive
    if blocking:
        verb = Connect(action=context.urls.continue_(context.step), method="POST")
        twilio_stream = verb.stream(url=context.urls.media_stream)
        if stream.audio_track != "inbound":
            builder.note("Stream", "translated", f"audioTrack {stream.audio_track!r} with "
                         "keepCallAlive: Twilio's <Connect><Stream> carries the inbound track "
                         "only", line=stream.line, attribute="audioTrack")
    else:
        verb = Start()
        twilio_stream = verb.stream(url=context.urls.media_stream,
                                    track=TWILIO_TRACKS[stream.audio_track])
    pieces = [settings[i:i + PIECE] for i in range(0, len(settings), PIECE)]
    for number, piece in enumerate(pieces):
        twilio_stream.parameter(name=f"{RELAY_PARAMETER}{number}", value=piece)
    twilio_stream.parameter(name=f"{RELAY_PARAMETER}_token", value=context.token_for(settings))
    builder.response.append(verb)
    builder.verbs += 1  # Twilio answers the call to stream it
    if stream.content_type != "audio/x-mulaw;rate=8000":
        builder.note("Stream", "emulated", f"{stream.content_type}: Twilio streams 8 kHz µ-law; "
                     "the gateway's relay converts both ways", line=stream.line,
                     attribute="contentType")
    if blocking:
        return Flow.HANDBACK
    return Flow.CONTINUE
