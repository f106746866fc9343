"""What callers hear: how long each verb plays, documents made from webhook answers, and the
playback of waitUrl, holdUrl and announceUrl documents.

Timings: Pause is exact; Say lasts 0.06 s per character (at least 0.5 s) per loop; Play lasts a
nominal `play_seconds` per loop (the audio is never fetched); `loop="0"` means until the call ends,
which Twilio caps at 1000 loops (/docs/voice/twiml/say, /play). A waitUrl, holdUrl or announceUrl
document may hold only Play, Say, Pause and Redirect (error 13238); it loops only through its own
`<Redirect>` and is silent once it runs out; an audio file plays once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import FetchError, TwimlError
from .loop import EventLoop, Timer
from .transcript import Transcript
from .twiml import VOICE_VERBS, WAIT_VERBS, Document, Pause, Play, Redirect, Say, parse_twiml
from .webhooks import Reply, Request, Webhooks

if TYPE_CHECKING:
    from .engine import Call

LOOP_FOREVER = 1000  # loop="0": "until the call ends", which Twilio caps at 1000
MAX_SILENT_REDIRECTS = 10  # a document that redirects without playing anything stops here


@dataclass(frozen=True)
class Timing:
    play_seconds: float = 1.0
    say_seconds_per_char: float = 0.06
    say_minimum: float = 0.5


@dataclass(frozen=True)
class Sound:
    """One verb as heard: transcript kind and detail, and how long it lasts."""

    kind: str
    detail: str
    seconds: float
    more: dict[str, Any] = field(default_factory=dict)

    @property
    def described(self) -> str:
        """`say Hello`, `play http://...`, `pause 2s`: the detail of a wait or announcement."""
        return f"{self.kind} {self.detail}"


def sound_of(verb: Say | Play | Pause, timing: Timing) -> Sound:
    if isinstance(verb, Say):
        once = max(timing.say_minimum, timing.say_seconds_per_char * len(verb.text))
        return Sound("say", verb.text, once * (verb.loop or LOOP_FOREVER),
                     {"voice": verb.voice, "language": verb.language, "loop": verb.loop})
    if isinstance(verb, Play):
        if verb.url is None:
            seconds = sum(0.5 if d in "wW" else 0.14 for d in verb.digits or "")
            return Sound("play", f"digits {verb.digits}", seconds)
        return Sound("play", verb.url, timing.play_seconds * (verb.loop or LOOP_FOREVER),
                     {"loop": verb.loop})
    return Sound("pause", f"{verb.length}s", float(verb.length))


def document_from(reply: Reply, url: str, *, allowed: frozenset[str] = VOICE_VERBS) -> Document:
    """The TwiML of a webhook answer; an audio answer plays as if by one <Play> of its URL."""
    if reply.is_audio:
        return Document(url, (Play(url=url),), audio=True)
    if not reply.is_twiml:
        raise TwimlError(12300, f"Content-Type {reply.content_type or '(none)'!r} is neither "
                         "TwiML nor audio")
    return parse_twiml(reply.body, url, allowed=allowed)


class Playback:
    """One playback; `stop()` makes its pending steps no-ops."""

    def __init__(self) -> None:
        self.active = True
        self.timer: Timer | None = None
        self.silent_redirects = 0

    def stop(self) -> None:
        self.active = False
        if self.timer is not None:
            self.timer.cancel()


Done = Callable[[bool, str], None]  # (played to the end?, why not)


class Player:
    """Fetches Play/Say/Pause/Redirect documents and plays them to listeners (engine thread)."""

    def __init__(self, loop: EventLoop, webhooks: Webhooks,
                 transcript: Callable[[], Transcript], timing: Timing):
        self._loop = loop
        self._webhooks = webhooks
        self._transcript = transcript
        self.timing = timing

    def play(self, playback: Playback, request: Request, listeners: list[Call],
             heard_kind: str, done: Done) -> None:
        def arrived(outcome: Reply | FetchError) -> None:
            self._loop.post(self._arrived, playback, request, outcome, listeners, heard_kind,
                            done)
        self._webhooks.submit(request, arrived)

    def _arrived(self, playback: Playback, request: Request, outcome: Reply | FetchError,
                 listeners: list[Call], heard_kind: str, done: Done) -> None:
        if not playback.active:
            return
        record = self._transcript().record
        try:
            if isinstance(outcome, FetchError):
                raise TwimlError(outcome.code, outcome.reason)
            document = document_from(outcome, request.url, allowed=WAIT_VERBS)
        except TwimlError as exc:
            record("error", call=request.call, code=exc.code, reason=exc.reason,
                   url=request.url, kind=request.kind, line=exc.line)
            done(False, exc.reason)
            return
        for warning in document.warnings:
            record("warning", call=request.call, code=warning.code, reason=warning.reason,
                   url=document.url, line=warning.line)
        self._step(playback, document, 0, request, listeners, heard_kind, done)

    def _step(self, playback: Playback, document: Document, index: int, request: Request,
              listeners: list[Call], heard_kind: str, done: Done) -> None:
        if not playback.active:
            return
        if index >= len(document.verbs):
            done(True, "")
            return
        verb = document.verbs[index]
        if isinstance(verb, Redirect):
            playback.silent_redirects += 1
            if playback.silent_redirects > MAX_SILENT_REDIRECTS:
                self._transcript().record(
                    "warning", call=request.call, code=12200, url=request.url,
                    reason="the document keeps redirecting without playing anything; stopped")
                done(True, "")
                return
            self.play(playback, Request(verb.url, verb.method, request.params, request.kind,
                                        request.call), listeners, heard_kind, done)
            return
        playback.silent_redirects = 0
        assert isinstance(verb, Say | Play | Pause)
        sound = sound_of(verb, self.timing)
        # An audio file answer plays once: it is not looped like a document.
        detail = f"audio {request.url}" if document.audio else sound.described
        for listener in listeners:
            if not listener.ended:
                self._transcript().record("heard", call=listener.name, kind=heard_kind,
                                          detail=detail)
        playback.timer = self._loop.after(sound.seconds, self._step, playback, document,
                                          index + 1, request, listeners, heard_kind, done)
