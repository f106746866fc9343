"""The least a webhook can cost here: a WSGI app that reads the body and answers 204.

`bench_conference_events` serves the speech phase's very requests with it, under gunicorn with
`gateway serve`'s worker class, keep-alive and access log (its requests marked unlogged, as
the gateway marks the speaker events it answers before Flask): the CPU per request that gunicorn,
gevent and the loopback network take whatever the app does.
"""

from __future__ import annotations

from gateway.access_log import UNLOGGED

# `gateway serve`'s choices (gateway/serve.py) that benchmarks.servers.GUNICORN_FLAGS leave out.
SERVE_FLAGS = ("--worker-class", "gateway.gunicorn_worker.GeventWorker", "--keep-alive", "75",
               "--logger-class", "gateway.access_log.AccessLog")


def app(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        start_response("200 OK", [("Content-Length", "0")])
        return []
    environ["wsgi.input"].read()
    environ[UNLOGGED] = True
    start_response("204 No Content", [])
    return []
