"""The access log's lines are gunicorn's, character for character, whatever the format: a format
of simple atoms (gunicorn's default among them) is served from those atoms alone, any other by
gunicorn's full set."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger, SafeAtoms

from gateway.access_log import AccessLog

ENVIRON = {
    "REMOTE_ADDR": "203.0.113.7", "REQUEST_METHOD": "POST", "RAW_URI": "/twilio/voice?step=2",
    "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/twilio/voice", "QUERY_STRING": "step=2",
    "HTTP_USER_AGENT": 'TwilioProxy/1.1 "quoted"', "HTTP_X_TWILIO_SIGNATURE": "abc=",
    "HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz", "wsgi.url_scheme": "https",
}
REQUEST = SimpleNamespace(headers=[("USER-AGENT", ENVIRON["HTTP_USER_AGENT"]),
                                   ("X-TWILIO-SIGNATURE", "abc=")])
TOOK = datetime.timedelta(seconds=1, microseconds=2345)
ALL_SIMPLE = ("%(h)s %(l)s %(u)s %(t)s %(r)s %(s)s %(m)s %(U)s %(q)s %(H)s %(b)s %(B)s %(f)s "
              "%(a)s %(T)s %(D)s %(M)s %(L)s %(p)s")
FORMATS = {
    "gunicorn's default": Config().access_log_format,
    "every simple atom": ALL_SIMPLE,
    "with a header and an environ entry": '%(h)s "%(r)s" %({user-agent}i)s %({raw_uri}e)s',
}


def logger(fmt: str, cls):
    cfg = Config()
    cfg.set("access_log_format", fmt)
    log = cls(cfg)
    log.now = lambda: "[01/Dec/2026:04:00:00 +0000]"  # the same clock for both
    return log


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS.keys())
@pytest.mark.parametrize("sent", [1234, 0, None])
def test_each_line_is_the_one_gunicorn_writes(fmt, sent):
    response = SimpleNamespace(status="200 OK", sent=sent, headers=[("Content-Type", "text/xml")])
    lines = [fmt % SafeAtoms(logger(fmt, cls).atoms(response, REQUEST, ENVIRON, TOOK))
             for cls in (AccessLog, Logger)]
    assert lines[0] == lines[1]


def test_only_the_named_atoms_are_gathered_for_a_simple_format():
    response = SimpleNamespace(status="204 No Content", sent=0, headers=[])
    atoms = logger(Config().access_log_format, AccessLog).atoms(response, REQUEST, ENVIRON, TOOK)
    assert set(atoms) == {"h", "l", "u", "t", "r", "s", "b", "f", "a"}
    assert atoms["u"] == "user"  # from the Basic credentials, as gunicorn reads them
