"""The Flask application: `create_app()` wires the runtime, the Twilio blueprint, the health
endpoints (/livez liveness, /readyz readiness, /healthz readiness plus the spool) and /metrics.

gunicorn runs `gateway.app:create_app()`; tests may pass their own Settings.
"""

from __future__ import annotations

import os

from flask import Flask, Request, Response, jsonify
from twilio.request_validator import RequestValidator

from .gunicorn_worker import EARLY
from .ivr.beep import blueprint as sounds_blueprint
from .observability import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .observability import render_metrics
from .runtime import Runtime, build_runtime, configure_logging
from .settings import Settings
from .spool import Spool
from .state import StoreUnavailable
from .twilio_side.intake import BoundedBody
from .twilio_side.signature import TwilioForm
from .twilio_side.speaker_events import EarlyAnswers, SpeakerEvents
from .twilio_side.voice_webhook import VoiceWebhook
from .twilio_side.webhooks import blueprint, drain_when_store_returns, replay_spooled


class GatewayRequest(Request):
    """Flask's request, with forms kept in a class twilio's validator reads fastest."""

    parameter_storage_class = TwilioForm


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    configure_logging()
    runtime = runtime or build_runtime(settings or Settings.from_env())
    app = Flask("gateway")
    app.request_class = GatewayRequest
    app.extensions["gateway"] = runtime
    spool = Spool(os.environ.get("GATEWAY_SPOOL", "").strip() or "gateway-spool.db")
    app.extensions["gateway.spool"] = spool
    validator = RequestValidator(runtime.settings.twilio_auth_token)
    app.extensions["gateway.validator"] = validator
    # Outermost: every body is read whole, within a size and a time limit, before the signature
    # check or anything else sees the request. Then a call's first voice webhook, and the
    # events that need no work (most of them speaker events), are answered before Flask's
    # request machinery.
    speaker = SpeakerEvents(app.wsgi_app, events=runtime.events, spool=spool,
                            validator=validator, public_url=runtime.settings.public_url)
    intake = BoundedBody(VoiceWebhook(speaker, runner=runtime.runner, validator=validator,
                                      public_url=runtime.settings.public_url))
    app.wsgi_app = intake  # type: ignore[method-assign]
    # gateway serve's web workers answer the speaker events that need no work themselves.
    app.extensions[EARLY] = EarlyAnswers(intake, speaker)
    app.register_blueprint(blueprint)
    app.register_blueprint(sounds_blueprint)  # unsigned: Twilio fetches <Play> URLs plainly
    if len(spool):  # left by a process that stopped before the store came back
        drain_when_store_returns(runtime, spool)

    @app.get("/livez")
    def livez():
        """Liveness: this process answers. Restart it only when this fails."""
        return jsonify({"status": "ok"}), 200

    @app.get("/readyz")
    def readyz():
        """Readiness: the shared store answers, so calls can be taken. Route traffic here."""
        ready = runtime.store.ping()
        return jsonify({"status": "ready" if ready else "not-ready",
                        "store": runtime.store.url}), 200 if ready else 503

    @app.get("/metrics")
    def metrics():
        return Response(render_metrics(runtime.store, spool), mimetype=None,
                        content_type=METRICS_CONTENT_TYPE)

    @app.get("/healthz")
    def healthz():
        healthy = runtime.store.ping()
        if healthy and len(spool):
            try:
                replay_spooled(runtime, spool)
            except StoreUnavailable:  # still failing: stay unhealthy, keep the rest spooled
                healthy = False
        body = {"status": "ok" if healthy else "unhealthy", "store": runtime.store.url,
                "spooled_events": len(spool)}
        return jsonify(body), 200 if healthy else 503

    return app
