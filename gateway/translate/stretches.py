"""Every stretch of one document, in the order a call runs them (pure: no I/O).

A document runs in stretches: TwiML up to the first element that hands control back to the
gateway, then (after a Conference, when the member leaves and no action URL replaces the
document) the next stretch, and so on. A Redirect ends the walk: its URL is another document,
which only a call (or `gateway check-apps`, for the answer URL) fetches. The walk stops at the
first stretch that reaches an element the gateway cannot run. `gateway translate` prints a walk;
`gateway check-apps` reports one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..plivoxml import Document, Note, Redirect
from . import ElementCannotRun, Translation, TranslationContext, translate
from .conference import has_side_stream


@dataclass(frozen=True)
class Walk:
    """The stretches translated, every note (the parser's first), and where the walk stopped:
    `cannot_run` (a call would hear the apology there) or `redirect` (the next document)."""

    stretches: tuple[Translation, ...]
    notes: tuple[Note, ...]
    cannot_run: ElementCannotRun | None = None

    @property
    def redirect(self) -> Redirect | None:
        last = self.stretches[-1].handback if self.stretches else None
        return last if isinstance(last, Redirect) else None


def walk(document: Document, context: TranslationContext) -> Walk:
    stretches: list[Translation] = []
    notes: list[Note] = []
    start, step = 0, context.step
    stop_streams: tuple[str, ...] = context.stop_streams
    while True:
        here = dataclasses.replace(context, step=step, stop_streams=stop_streams,
                                   first_in_call=context.first_in_call and not stretches)
        try:
            result = translate(document, here, start)
        except ElementCannotRun as exc:
            if not stretches:
                notes.extend(document.notes)  # a first stretch carries the parser's notes
            return Walk(tuple(stretches), tuple(notes), exc)
        stretches.append(result)
        notes.extend(result.notes)
        if result.resume_at is None or isinstance(result.handback, Redirect):
            return Walk(tuple(stretches), tuple(notes))
        # A member's side stream (digitsMatch) is stopped by the TwiML that follows its Dial.
        handback = result.handback
        stop_streams = ((here.participant_label,) if has_side_stream(
            getattr(handback, "digits_match", ()), getattr(handback, "callback_url", None))
            else ())
        start, step = result.resume_at, step + 1
