"""Which requests `gateway serve`'s web worker may answer itself before WSGI: only a plain POST
body (one Content-Length, one Content-Type, at most one X-Twilio-Signature), as gunicorn's
parser hands its headers on (names upper-cased, in order)."""

from __future__ import annotations

from gateway.gunicorn_worker import plain_post_environ

PLAIN = [("HOST", "gw.example.com"), ("CONTENT-TYPE", "application/x-www-form-urlencoded"),
         ("CONTENT-LENGTH", "120"), ("X-TWILIO-SIGNATURE", "c2lnbmF0dXJl"),
         ("I-TWILIO-IDEMPOTENCY-TOKEN", "abc")]


def test_aplain_post_environ_gives_the_environ_entries_the_decision_reads():
    assert plain_post_environ(PLAIN) == {"CONTENT_TYPE": "application/x-www-form-urlencoded",
                                  "CONTENT_LENGTH": "120",
                                  "HTTP_X_TWILIO_SIGNATURE": "c2lnbmF0dXJl"}


def test_an_unsigned_post_is_still_plain_and_refused_later_by_the_usual_route():
    environ = plain_post_environ([h for h in PLAIN if h[0] != "X-TWILIO-SIGNATURE"])
    assert environ is not None and "HTTP_X_TWILIO_SIGNATURE" not in environ


def test_anything_else_goes_gunicorns_usual_way():
    repeated = [*PLAIN, ("X-TWILIO-SIGNATURE", "other")]
    chunked = [*PLAIN, ("TRANSFER-ENCODING", "chunked")]
    expecting = [*PLAIN, ("EXPECT", "100-continue")]
    no_length = [h for h in PLAIN if h[0] != "CONTENT-LENGTH"]
    no_type = [h for h in PLAIN if h[0] != "CONTENT-TYPE"]
    two_types = [*PLAIN, ("CONTENT-TYPE", "text/plain")]
    for headers in (repeated, chunked, expecting, no_length, no_type, two_types):
        assert plain_post_environ(headers) is None, headers
