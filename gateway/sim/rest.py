"""The simulated Twilio REST API (2010-04-01): conferences, participants, calls, recordings, SMS.

Compatible with `twilio.rest.Client(account_sid, auth_token)` once
`client.api.base_url = "http://127.0.0.1:N"`: the same paths, HTTP Basic auth with the account
SID and auth token, form-encoded parameters, JSON bodies in Twilio's resource shapes (snake_case,
`sid`, `uri`, RFC 2822 dates), list pages with `next_page_uri`, and Twilio's error body
`{"code", "message", "more_info", "status"}` (401/20003 without valid credentials, 404/20404 for
unknown resources, 400 for bad parameters). Every request is recorded in the transcript.

Handlers parse parameters on the request thread and act on the simulation on the engine thread
(`EventLoop.call`). Resource shapes follow https://www.twilio.com/docs/voice/api/conference-resource,
/conference-participant-resource, /call-resource and /recording.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .audio import mp3_bytes, spoken_wav, wav_bytes
from .conference import Participant, Recording, Room, recording_path
from .errors import TwimlError
from .ids import rfc2822
from .twiml import parse_twiml

if TYPE_CHECKING:
    from .engine import Call, Switchboard
    from .loop import EventLoop
    from .transcript import Transcript

API = "/2010-04-01"


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def not_found(path: str) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {path} was not found")


# --- resource shapes --------------------------------------------------------------------------

def _date(moment: Any) -> str | None:
    return rfc2822(moment) if moment is not None else None


def conference_json(room: Room) -> dict[str, Any]:
    base = f"{API}/Accounts/{room.account_sid}/Conferences/{room.sid}"
    return {
        "account_sid": room.account_sid, "api_version": "2010-04-01",
        "call_sid_ending_conference": room.call_sid_ending_conference,
        "date_created": _date(room.created), "date_updated": _date(room.updated),
        "friendly_name": room.friendly_name,
        "reason_conference_ended": room.reason_conference_ended,
        "region": room.settings.region or "us1", "sid": room.sid, "status": room.status,
        "subresource_uris": {"participants": f"{base}/Participants.json",
                             "recordings": f"{base}/Recordings.json"},
        "uri": f"{base}.json",
    }


def participant_json(p: Participant) -> dict[str, Any]:
    room = p.room
    return {
        "account_sid": room.account_sid, "call_sid": p.call.sid, "label": p.label,
        "call_sid_to_coach": p.call_sid_to_coach, "coaching": p.coaching,
        "conference_sid": room.sid, "date_created": _date(p.joined),
        "date_updated": _date(p.updated), "end_conference_on_exit": p.end_conference_on_exit,
        "muted": p.muted, "hold": p.hold, "start_conference_on_enter": p.start_conference_on_enter,
        "status": "connected", "queue_time": None,
        "uri": f"{API}/Accounts/{room.account_sid}/Conferences/{room.sid}/Participants/"
               f"{p.call.sid}.json",
    }


def call_json(call: Call) -> dict[str, Any]:
    base = f"{API}/Accounts/{call.account_sid}/Calls/{call.sid}"
    return {
        "sid": call.sid, "date_created": _date(call.created), "date_updated": _date(
            call.end_time or call.start_time or call.created),
        "parent_call_sid": None, "account_sid": call.account_sid, "to": call.spec.to,
        "to_formatted": call.spec.to, "from": call.spec.from_,
        "from_formatted": call.spec.from_, "phone_number_sid": None, "status": call.status,
        "start_time": _date(call.start_time), "end_time": _date(call.end_time),
        "duration": str(call.duration) if call.ended else None, "price": None,
        "price_unit": "USD", "direction": "inbound", "answered_by": None,
        "api_version": "2010-04-01", "forwarded_from": None, "group_sid": None,
        "caller_name": None, "queue_time": "0", "trunk_sid": None, "uri": f"{base}.json",
        "subresource_uris": {"recordings": f"{base}/Recordings.json",
                             "notifications": f"{base}/Notifications.json",
                             "streams": f"{base}/Streams.json"},
    }


def recording_json(rec: Recording, base_url: str) -> dict[str, Any]:
    path = recording_path(rec.account_sid, rec.sid)
    return {
        "account_sid": rec.account_sid, "api_version": "2010-04-01",
        "call_sid": rec.call.sid if rec.call is not None else None,
        "conference_sid": rec.room.sid if rec.room is not None else None,
        "date_created": _date(rec.start_time),
        "date_updated": _date(rec.ended or rec.start_time), "start_time": _date(rec.start_time),
        "duration": str(rec.duration) if rec.duration is not None else "-1", "sid": rec.sid,
        "price": None, "price_unit": "USD", "status": rec.status, "channels": 1,
        "source": rec.source, "error_code": None, "uri": f"{path}.json",
        "encryption_details": None, "media_url": f"{base_url}{path}",
        "subresource_uris": {"add_on_results": f"{path}/AddOnResults.json",
                             "transcriptions": f"{path}/Transcriptions.json"},
    }


def page(key: str, items: list[dict[str, Any]], uri: str) -> dict[str, Any]:
    return {key: items, "end": max(len(items) - 1, 0), "first_page_uri": uri,
            "next_page_uri": None, "page": 0, "page_size": max(len(items), 50),
            "previous_page_uri": None, "start": 0, "uri": uri}


# --- parameter parsing --------------------------------------------------------------------------

def _bool(form: Any, name: str) -> bool | None:
    if name not in form:
        return None
    value = form[name].strip().lower()
    if value not in ("true", "false"):
        raise ApiError(400, 20422, f"Invalid value for {name}: {form[name]!r} is not true/false")
    return value == "true"


def _method(form: Any, name: str, default: str) -> str:
    value = form.get(name, default).strip().upper()
    if value not in ("GET", "POST"):
        raise ApiError(400, 21209, f"Invalid {name}: {form[name]!r} is not GET or POST")
    return value


def _url(form: Any, name: str) -> str | None:
    if name not in form:
        return None
    value = form[name].strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, 21205, f"{name} is not a valid URL: {value!r}")
    return value


# --- the server -------------------------------------------------------------------------------

# Werkzeug compiles each URL rule with `ast`; CPython 3.11 before 3.11.9 can fail with "AST
# constructor recursion depth mismatch" when two threads do that at once (cpython gh-106905),
# as when several simulators start in parallel. Building the apps one at a time avoids it.
APP_CONSTRUCTION = threading.Lock()


class QuietRequestHandler(WSGIRequestHandler):
    """No access log on stderr: every request is already in the transcript."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class RestApi:
    """A werkzeug server on loopback running the Flask app below in its own thread."""

    def __init__(self, *, account_sid: str, auth_token: str, loop: EventLoop,
                 switchboard: Callable[[], Switchboard], transcript: Callable[[], Transcript],
                 port: int = 0, host: str = "127.0.0.1"):
        self.account_sid = account_sid
        self._auth_token = auth_token
        self._loop = loop
        self._switchboard = switchboard
        self._transcript = transcript
        with APP_CONSTRUCTION:
            self.app = self._create_app()
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True,
                                                   request_handler=QuietRequestHandler)
        self.port = self._server.server_port
        self.base_url = f"http://{host}:{self.port}"
        # A short poll interval: shutdown() waits up to one interval for the server loop.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="sim-rest")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- helpers ------------------------------------------------------------------------------
    def _authorized(self) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.account_sid and password == self._auth_token

    def _on_engine(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._loop.call(fn, *args, timeout=10.0)

    # These run on the engine thread, where Flask's `request` does not exist: pass the path.
    def _room(self, sid: str, path: str) -> Room:
        room = self._switchboard().rooms_by_sid.get(sid)
        if room is None or room.account_sid != self.account_sid:
            raise not_found(path)
        return room

    def _participant(self, room: Room, who: str, path: str) -> Participant:
        participant = room.find(who)
        if participant is None:
            raise not_found(path)
        return participant

    def _call(self, sid: str, path: str) -> Call:
        call = self._switchboard().calls.get(sid)
        if call is None:
            raise not_found(path)
        return call

    # --- the app ------------------------------------------------------------------------------
    def _create_app(self) -> Flask:
        app = Flask("gateway.sim.rest")
        prefix = f"{API}/Accounts/<account>"

        @app.before_request
        def authenticate() -> Response | None:
            if not self._authorized():
                body = jsonify(error_body(401, 20003, "Authenticate"))
                body.status_code = 401
                body.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
                return body
            return None

        @app.after_request
        def record(response: Response) -> Response:
            params = {**request.args.to_dict(), **request.form.to_dict()}
            self._transcript().record("rest", method=request.method, path=request.path,
                                      params=params, status=response.status_code)
            return response

        @app.errorhandler(ApiError)
        def api_error(exc: ApiError) -> tuple[Response, int]:
            return jsonify(error_body(exc.status, exc.code, exc.message)), exc.status

        @app.errorhandler(404)
        def unknown(_: Exception) -> tuple[Response, int]:
            return jsonify(error_body(404, 20404, f"The requested resource {request.path} "
                                      "was not found")), 404

        @app.errorhandler(405)
        def not_allowed(_: Exception) -> tuple[Response, int]:
            return jsonify(error_body(405, 20004, "Method not allowed")), 405

        @app.url_value_preprocessor
        def check_account(endpoint: str | None, values: dict[str, Any] | None) -> None:
            if values and values.pop("account", self.account_sid) != self.account_sid:
                raise not_found(request.path)

        @app.get(f"{prefix}/Conferences.json")
        def conferences() -> Any:
            path = request.path
            name = request.args.get("FriendlyName")
            status = request.args.get("Status")

            def work() -> dict[str, Any]:
                rooms = [r for r in self._switchboard().rooms_by_sid.values()
                         if r.account_sid == self.account_sid]
                rooms = [r for r in rooms if (name is None or r.friendly_name == name)
                         and (status is None or r.status == status)]
                rooms.sort(key=lambda r: r.created, reverse=True)
                return page("conferences", [conference_json(r) for r in rooms], path)
            return self._on_engine(work)

        @app.route(f"{prefix}/Conferences/<sid>.json", methods=["GET", "POST"])
        def conference(sid: str) -> Any:
            path, post = request.path, request.method == "POST"
            form = request.form
            status = form.get("Status")
            if status is not None and status != "completed":
                raise ApiError(400, 20422, f"Invalid Status {status!r}: only completed is "
                               "allowed")
            announce = _url(form, "AnnounceUrl")
            method = _method(form, "AnnounceMethod", "POST")

            def work() -> dict[str, Any]:
                room = self._room(sid, path)
                if post:
                    board = self._switchboard()
                    if announce is not None:
                        if room.status == "completed":
                            raise ApiError(400, 20422, "The conference is completed")
                        board.announce(room, announce, method)
                    if status == "completed" and room.status != "completed":
                        board.end_room(room)
                return conference_json(room)
            return self._on_engine(work)

        @app.get(f"{prefix}/Conferences/<sid>/Participants.json")
        def participants(sid: str) -> Any:
            path = request.path
            filters = {"muted": _bool(request.args, "Muted"), "hold": _bool(request.args, "Hold"),
                       "coaching": _bool(request.args, "Coaching")}

            def work() -> dict[str, Any]:
                room = self._room(sid, path)
                found = [p for p in room.participants.values()
                         if all(v is None or getattr(p, k) == v for k, v in filters.items())]
                return page("participants", [participant_json(p) for p in found], path)
            return self._on_engine(work)

        @app.post(f"{prefix}/Conferences/<sid>/Participants.json")
        def create_participant(sid: str) -> Any:
            raise ApiError(405, 20004, "Creating participants (dialing out) is not simulated")

        @app.route(f"{prefix}/Conferences/<sid>/Participants/<who>.json",
                   methods=["GET", "POST", "DELETE"])
        def participant(sid: str, who: str) -> Any:
            path, http_method = request.path, request.method
            form = request.form
            changes: dict[str, Any] = {}
            for field_name, key in (("Muted", "muted"), ("Hold", "hold"),
                                    ("BeepOnExit", "beep_on_exit"),
                                    ("EndConferenceOnExit", "end_conference_on_exit"),
                                    ("Coaching", "coaching")):
                value = _bool(form, field_name)
                if value is not None:
                    changes[key] = value
            for field_name, key in (("HoldUrl", "hold_url"), ("WaitUrl", "wait_url")):
                if field_name in form:  # "" is allowed: silence
                    changes[key] = "" if form[field_name] == "" else _url(form, field_name)
            if form.get("AnnounceUrl"):
                changes["announce_url"] = _url(form, "AnnounceUrl")
                changes["announce_method"] = _method(form, "AnnounceMethod", "POST")
            for field_name, key in (("HoldMethod", "hold_method"), ("WaitMethod", "wait_method")):
                if field_name in form:
                    changes[key] = _method(form, field_name, "POST")
            if "CallSidToCoach" in form:
                changes["call_sid_to_coach"] = form["CallSidToCoach"]

            def work() -> tuple[Any, int]:
                room = self._room(sid, path)
                found = self._participant(room, who, path)
                board = self._switchboard()
                if http_method == "DELETE":
                    board.kick(found)
                    return "", 204
                if http_method == "POST":
                    board.update_participant(found, changes)
                return participant_json(found), 200
            body, status_code = self._on_engine(work)
            if status_code == 204:
                return Response(status=204)
            return body

        @app.get(f"{prefix}/Conferences/<sid>/Recordings.json")
        def conference_recordings(sid: str) -> Any:
            path = request.path

            def work() -> dict[str, Any]:
                room = self._room(sid, path)
                recs = [recording_json(r, self.base_url)
                        for r in self._switchboard().recordings.values() if r.room is room]
                return page("recordings", recs, path)
            return self._on_engine(work)

        @app.get(f"{prefix}/Calls.json")
        def calls() -> Any:
            path, wanted = request.path, request.args.get("Status")

            def work() -> dict[str, Any]:
                found = [c for c in self._switchboard().calls.values()
                         if wanted in (None, c.status)]
                return page("calls", [call_json(c) for c in found], path)
            return self._on_engine(work)

        @app.route(f"{prefix}/Calls/<sid>.json", methods=["GET", "POST"])
        def call(sid: str) -> Any:
            path, post = request.path, request.method == "POST"
            form = request.form
            status = form.get("Status")
            if status is not None and status not in ("completed", "canceled"):
                raise ApiError(400, 20422, f"Invalid Status {status!r}: completed or canceled")
            url = _url(form, "Url")
            method = _method(form, "Method", "POST")
            twiml = form.get("Twiml")

            def work() -> dict[str, Any]:
                found = self._call(sid, path)
                board = self._switchboard()
                if post and (status or url or twiml is not None):
                    if found.ended:
                        raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
                    if status == "completed" or (status == "canceled"
                                                 and found.answered_at is None):
                        board.end_call_via_api(found, status)
                    elif twiml is not None:
                        base = found.doc.url if found.doc else board.options.voice_url
                        try:
                            document = parse_twiml(twiml, base)
                        except TwimlError as exc:
                            raise ApiError(400, exc.code, f"Twiml is not valid: {exc}") from None
                        board.redirect_call(found, document=document)
                    elif url is not None:
                        board.redirect_call(found, url=url, method=method)
                return call_json(found)
            return self._on_engine(work)

        @app.post(f"{prefix}/Calls/<sid>/Recordings.json")
        def record_call(sid: str) -> Any:
            # https://www.twilio.com/docs/voice/api/recording#create-a-recording-resource:
            # records an in-progress call until it ends; status callbacks as requested.
            path, form = request.path, request.form
            url = _url(form, "RecordingStatusCallback")
            method = _method(form, "RecordingStatusCallbackMethod", "POST")
            events = tuple(e for value in form.getlist("RecordingStatusCallbackEvent")
                           for e in value.replace(",", " ").split()) or ("completed",)
            unknown = [e for e in events if e not in ("in-progress", "completed", "absent")]
            if unknown:
                raise ApiError(400, 20422, f"Invalid RecordingStatusCallbackEvent {unknown}")

            def work() -> dict[str, Any]:
                from .engine import RecordingCallback

                found = self._call(sid, path)
                if found.ended or found.status != "in-progress":
                    raise ApiError(400, 21220, "Call is not in-progress. Cannot create a "
                                   "recording.")
                callback = RecordingCallback(url, method, events) if url else None
                recording = self._switchboard().start_call_recording(found, callback)
                return recording_json(recording, self.base_url)
            return jsonify(self._on_engine(work)), 201

        @app.post(f"{prefix}/Calls/<sid>/Streams/<stream>.json")
        def stream(sid: str, stream: str) -> Any:
            path = request.path
            if request.form.get("Status") != "stopped":
                raise ApiError(400, 20422, "Status must be stopped")

            def work() -> dict[str, Any]:
                found = self._call(sid, path)
                media = next((m for m in found.streams.values()
                              if stream in (m.config.stream_sid, m.config.name)), None)
                if media is None:
                    raise not_found(path)
                media.stop()
                return {"sid": media.config.stream_sid, "account_sid": found.account_sid,
                        "call_sid": found.sid, "name": media.config.name, "status": "stopped",
                        "date_updated": rfc2822(), "uri": path}
            return self._on_engine(work)

        @app.route(f"{prefix}/Messages.json", methods=["GET", "POST"])
        def messages_() -> Any:
            from . import messages

            path = request.path
            if request.method == "GET":
                def listed() -> dict[str, Any]:
                    found = sorted(self._switchboard().messages.values(),
                                   key=lambda m: m.created, reverse=True)
                    return page("messages", [messages.message_json(m) for m in found], path)
                return self._on_engine(listed)
            try:
                sender, to, body = messages.check(request.form)
            except messages.MessageRefused as refused:
                raise ApiError(400, refused.code, refused.message) from None
            callback = _url(request.form, "StatusCallback")
            method = _method(request.form, "StatusCallbackMethod", "POST")

            def work() -> dict[str, Any]:
                return messages.message_json(messages.accept(
                    self._switchboard(), self.account_sid, sender, to, body, callback, method))
            return jsonify(self._on_engine(work)), 201

        @app.get(f"{prefix}/Messages/<sid>.json")
        def message(sid: str) -> Any:
            from . import messages

            path = request.path

            def work() -> dict[str, Any]:
                found = self._switchboard().messages.get(sid)
                if found is None:
                    raise not_found(path)
                return messages.message_json(found)
            return self._on_engine(work)

        @app.get(f"{prefix}/Recordings/<sid>.json")
        def recording(sid: str) -> Any:
            path = request.path

            def work() -> dict[str, Any]:
                rec = self._switchboard().recordings.get(sid)
                if rec is None:
                    raise not_found(path)
                return recording_json(rec, self.base_url)
            return self._on_engine(work)

        @app.get(f"{prefix}/Recordings/<name>")
        def recording_media(name: str) -> Response:
            sid, _, extension = name.partition(".")
            if extension not in ("", "mp3", "wav"):
                raise not_found(request.path)

            def work() -> tuple[int, tuple] | None:
                rec = self._switchboard().recordings.get(sid)
                if rec is None or rec.status != "completed":
                    return None  # media exists only once the recording is completed
                return rec.duration or 0, rec.speech
            found = self._on_engine(work)
            if found is None:
                raise not_found(request.path)
            seconds, speech = found
            if extension == "mp3":
                return Response(mp3_bytes(seconds), mimetype="audio/mpeg")
            if speech:  # what the caller said, spoken, at the times it was said
                return Response(spoken_wav(seconds, speech), mimetype="audio/x-wav")
            return Response(wav_bytes(seconds), mimetype="audio/x-wav")

        return app
