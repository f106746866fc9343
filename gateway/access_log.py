"""gunicorn's access log as `gateway serve` writes it: every request, except those the gateway
marks as not worth a line, each line written as gunicorn writes it at a fraction of the cost.

Speaker events answered before Flask (`twilio_side.speaker_events`) are marked: Twilio sends one
per talk spurt of every participant of a room, so they would be most of the log; `/metrics`
counts them. This module stays light (gunicorn's master loads it before its workers apply
gevent's monkey-patching): the mark is a plain WSGI environ key.

gunicorn gathers every atom a format may name for every line: each request and response header
and each of the ~35 environ entries, formatted and escaped, for a format (the default, which
`gateway serve` keeps) that names nine simple ones. Here a format that names only simple atoms
gets only those, computed as gunicorn computes them (the same line,
`tests/core/test_access_log.py`); any other format gets gunicorn's full set.
"""

from __future__ import annotations

import os
import re

from gunicorn.glogging import Logger

UNLOGGED = "gateway.unlogged"  # environ key: leave this request out of the access log


def _status(resp, req, environ, took):
    status = resp.status
    return status.split(None, 1)[0] if isinstance(status, str) else status


def _sent(resp, req, environ, took):
    return str(resp.sent) if getattr(resp, "sent", None) is not None else "-"


# The atoms that need neither a header nor an environ entry by name: gunicorn's definitions.
_SIMPLE = {
    "h": lambda resp, req, environ, took: environ.get("REMOTE_ADDR", "-"),
    "l": lambda resp, req, environ, took: "-",
    "r": lambda resp, req, environ, took: (
        f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"),
    "s": _status,
    "m": lambda resp, req, environ, took: environ.get("REQUEST_METHOD"),
    "U": lambda resp, req, environ, took: environ.get("PATH_INFO"),
    "q": lambda resp, req, environ, took: environ.get("QUERY_STRING"),
    "H": lambda resp, req, environ, took: environ.get("SERVER_PROTOCOL"),
    "b": _sent,
    "B": lambda resp, req, environ, took: getattr(resp, "sent", None),
    "f": lambda resp, req, environ, took: environ.get("HTTP_REFERER", "-"),
    "a": lambda resp, req, environ, took: environ.get("HTTP_USER_AGENT", "-"),
    "T": lambda resp, req, environ, took: took.seconds,
    "D": lambda resp, req, environ, took: took.seconds * 1000000 + took.microseconds,
    "M": lambda resp, req, environ, took: took.seconds * 1000 + int(took.microseconds / 1000),
    "L": lambda resp, req, environ, took: f"{took.seconds}.{took.microseconds:06d}",
    "p": lambda resp, req, environ, took: f"<{os.getpid()}>",
}
_NAMED = re.compile(r"%\(([^)]*)\)")


class AccessLog(Logger):
    def access(self, resp, req, environ, request_time) -> None:
        if not environ.get(UNLOGGED):
            super().access(resp, req, environ, request_time)

    def atoms(self, resp, req, environ, request_time) -> dict:
        names = self._names()
        if names is None:
            return super().atoms(resp, req, environ, request_time)
        atoms = {}
        for name in names:
            if name == "u":
                atoms[name] = self._get_user(environ) or "-"
            elif name == "t":
                atoms[name] = self.now()
            else:
                atoms[name] = _SIMPLE[name](resp, req, environ, request_time)
        return atoms

    def _names(self) -> tuple[str, ...] | None:
        """The atoms the format names, if all are simple; None otherwise. Remembered per format
        (a configuration reload may change it)."""
        fmt = self.cfg.access_log_format
        if getattr(self, "_format", None) != fmt:
            names = tuple(dict.fromkeys(_NAMED.findall(fmt)))
            simple = all(name in _SIMPLE or name in ("u", "t") for name in names)
            self._format, self._format_names = fmt, names if simple else None
        return self._format_names
