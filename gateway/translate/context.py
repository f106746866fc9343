"""What a translation needs to know about its surroundings, as plain data (no I/O).

`GatewayUrls` builds the gateway's own callback URLs that go into TwiML (and the WebSocket URL
side streams connect to); `TranslationContext` adds the account that scopes conference rooms,
the cap on a call's length, the transcription engine in use and the signer of side-stream
tokens. The CLI uses the placeholder base `{gateway}` (and `{gateway-wss}` for the media URL,
`{token}` for a token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..formencoding import form_encoded

PLACEHOLDER_BASE = "{gateway}"
PLACEHOLDER_MEDIA_BASE = "{gateway-wss}"
PLACEHOLDER_TOKEN = "{token}"

# The gateway endpoints that TwiML points at. Paths are part of the contract with Twilio's
# configuration (voice and status URLs) and with the webhook blueprint, which imports these.
VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"
CONTINUE_PATH = "/twilio/continue"
CONFERENCE_LEFT_PATH = "/twilio/conference/left"
CONFERENCE_EVENTS_PATH = "/twilio/conference/events"
CONFERENCE_RECORDING_PATH = "/twilio/conference/recording"
CONFERENCE_WAIT_PATH = "/twilio/conference/wait"
CONFERENCE_ANNOUNCE_PATH = "/twilio/conference/announce"
MEDIA_PATH = "/twilio/media"
GATHER_PATH = "/twilio/gather"
GATHER_PARTIAL_PATH = "/twilio/gather/partial"
BEEP_PATH = "/sounds/beep.wav"  # served without a signature: Twilio fetches it like any <Play>

DIAL_DONE_PATH = "/twilio/dial/done"
DIAL_EVENTS_PATH = "/twilio/dial/events"
DIAL_WHISPER_PATH = "/twilio/dial/whisper"
DIAL_CONFIRMED_PATH = "/twilio/dial/confirmed"

RECORD_PATH = "/twilio/record"
RECORD_STATUS_PATH = "/twilio/record/status"
RECORD_TRANSCRIPTION_PATH = "/twilio/record/transcription"
MESSAGE_STATUS_PATH = "/twilio/message/status"

# GATEWAY_TRANSCRIPTION: who transcribes recordings for a Plivo transcriptionUrl.
TRANSCRIPTION_ENGINES = ("embedded", "twilio")

# Twilio ends a call after 4 hours: Dial's timeLimit defaults to 14400 s, its maximum ("the
# maximum duration of a call is 4 hours"; twilio.com/docs/voice/twiml/dial#timelimit). The
# gateway writes the cap on every Dial it emits, so that it is visible and configurable
# (GATEWAY_MAX_CALL_SECONDS), never an unstated default.
MAX_CALL_SECONDS = 14400


@dataclass(frozen=True)
class GatewayUrls:
    """Absolute URLs of the gateway's Twilio-facing endpoints, under its public base URL."""

    base: str = PLACEHOLDER_BASE
    media: str | None = None  # the side streams' wss:// URL when not derived from `base`

    def url(self, path: str, **query: str | int) -> str:
        tail = ("?" + form_encoded(query)) if query else ""
        return self.base.rstrip("/") + path + tail

    def continue_(self, step: int) -> str:
        return self.url(CONTINUE_PATH, step=step)

    def conference_left(self, step: int) -> str:
        return self.url(CONFERENCE_LEFT_PATH, step=step)

    @property
    def conference_events(self) -> str:
        return self.url(CONFERENCE_EVENTS_PATH)

    @property
    def conference_recording(self) -> str:
        return self.url(CONFERENCE_RECORDING_PATH)

    def conference_wait(self, step: int) -> str:
        return self.url(CONFERENCE_WAIT_PATH, step=step)

    def gather(self, step: int) -> str:
        return self.url(GATHER_PATH, step=step)

    def gather_partial(self, step: int) -> str:
        return self.url(GATHER_PARTIAL_PATH, step=step)

    def dial_done(self, step: int) -> str:
        """Twilio's Dial action: the forward is over (Plivo's action URL, the rest)."""
        return self.url(DIAL_DONE_PATH, step=step)

    def dial_events(self, step: int) -> str:
        """Each dialled leg's status callback (Plivo's Dial callbackUrl)."""
        return self.url(DIAL_EVENTS_PATH, step=step)

    def dial_whisper(self, step: int, leg: int) -> str:
        """The Number/Sip `url`: TwiML the callee (leg `leg` of the Dial) hears once it
        answers, before the bridge."""
        return self.url(DIAL_WHISPER_PATH, step=step, leg=leg)

    def dial_confirmed(self, step: int, leg: int) -> str:
        return self.url(DIAL_CONFIRMED_PATH, step=step, leg=leg)

    @property
    def beep(self) -> str:
        return self.url(BEEP_PATH)

    def record_done(self, key: str) -> str:
        """Twilio's Record action (and the Redirect after an empty recording)."""
        return self.url(RECORD_PATH, rec=key)

    def record_status(self, key: str) -> str:
        return self.url(RECORD_STATUS_PATH, rec=key)

    def record_transcription(self, key: str) -> str:
        return self.url(RECORD_TRANSCRIPTION_PATH, rec=key)

    def message_status(self, key: str) -> str:
        """Twilio's StatusCallback for a message the gateway sent for a `<Message>`."""
        return self.url(MESSAGE_STATUS_PATH, msg=key)

    @property
    def media_stream(self) -> str:
        """Where side streams connect: the setting, else the public URL with https -> wss (and
        http -> ws, for loopback tests; Twilio itself only connects to wss://)."""
        if self.media:
            return self.media
        base = self.base.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base[len("https://"):]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://"):]
        elif base == PLACEHOLDER_BASE:
            base = PLACEHOLDER_MEDIA_BASE
        return base + MEDIA_PATH


@dataclass(frozen=True)
class TranslationContext:
    """The mapping's account (scopes rooms), the gateway's URLs, and the call's step counter.

    `step` numbers the documents a call has run; it goes into the URLs that hand control back to
    the gateway so that a late or repeated request for an older step is recognised.
    """

    account: str
    urls: GatewayUrls = GatewayUrls()
    step: int = 0
    first_in_call: bool = True  # nothing has been played to the caller yet (Reject is possible)
    call_sid: str = "{CallSid}"
    max_call_seconds: int = MAX_CALL_SECONDS  # the timeLimit of every Dial (Twilio's maximum)
    transcription: str = "embedded"  # GATEWAY_TRANSCRIPTION: embedded | twilio
    # label -> HMAC token for a side stream's <Parameter> (None: the `{token}` placeholder).
    stream_token: Callable[[str], str] | None = None
    # side streams to stop first: this TwiML follows the Dial of a member that had one.
    stop_streams: tuple[str, ...] = ()
    # The mapping's app and its allowed_hosts (a Stream's URL, a <User>'s SIP host must be on
    # one; None: unchecked, as in `gateway translate` without a mapping).
    app: str = ""
    allowed_hosts: tuple[str, ...] | None = None

    @property
    def participant_label(self) -> str:
        return member_label(self.call_sid, self.step)

    def token_for(self, label: str) -> str:
        return self.stream_token(label) if self.stream_token else PLACEHOLDER_TOKEN


def member_label(call_sid: str, step: int) -> str:
    """The participantLabel of a call's stay in a room: unique in any room, it names the member
    (call and step) in Twilio's events. It must not look like a CallSid (Twilio refuses labels
    that do, error 16023), hence the prefix."""
    return f"member-{step}-{call_sid}"


def call_sid_of(label: str) -> str | None:
    """The CallSid a member label names (None if it is not one of the gateway's labels)."""
    prefix, _, rest = label.partition("-")
    step, _, call_sid = rest.partition("-")
    return call_sid if prefix == "member" and step.isdigit() and call_sid else None
