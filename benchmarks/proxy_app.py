"""The baseline of the voice benchmark: a minimal Flask proxy, no translation.

`POST /twilio/voice` fetches the XML at `PROXY_ANSWER_URL` (a POST carrying Twilio's form, over
one pooled keep-alive session, as the gateway's AppClient does) and returns it untranslated. It
does none of the gateway's work: no Twilio signature check, no routing, no Plivo parameters or
signatures, no parsing, no translation, no call record. The gap between the two is the price of
that work. gunicorn runs it with the gateway's settings: `benchmarks.proxy_app:create_app()`.
"""

from __future__ import annotations

import os

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter


def create_app() -> Flask:
    answer_url = os.environ["PROXY_ANSWER_URL"]
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(pool_connections=32, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    app = Flask("proxy")

    @app.post("/twilio/voice")
    def voice() -> Response:
        answer = session.post(answer_url, data=request.form.to_dict(), timeout=(2.0, 10.0))
        return Response(answer.content, status=answer.status_code, mimetype="application/xml")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app
