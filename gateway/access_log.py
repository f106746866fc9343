"""gunicorn's access log as `gateway serve` writes it: every request, except those the gateway
marks as not worth a line.

Speaker events answered before Flask (`twilio_side.speaker_events`) are marked: Twilio sends one
per talk spurt of every participant of a room, so they would be most of the log; `/metrics`
counts them. This module stays light (gunicorn's master loads it before its workers apply
gevent's monkey-patching): the mark is a plain WSGI environ key.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

UNLOGGED = "gateway.unlogged"  # environ key: leave this request out of the access log


class AccessLog(Logger):
    def access(self, resp, req, environ, request_time) -> None:
        if not environ.get(UNLOGGED):
            super().access(resp, req, environ, request_time)
