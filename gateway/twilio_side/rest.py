"""Calls to Twilio's REST API (twilio.rest.Client), for what TwiML alone cannot do.

End a conference (stayAlone=false, timeLimit), announce a sound to a room (enterSound/exitSound
URLs), hang up a call (Hangup schedule), record a whole call (Record recordSession), send an SMS
(Message).
`TWILIO_API_BASE_URL` points the client at another API host (the local simulator); otherwise it
talks to api.twilio.com.
"""

from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

log = logging.getLogger("gateway.twilio")


class TwilioRest:
    def __init__(self, account_sid: str, auth_token: str, base_url: str | None = None):
        self.client = Client(account_sid, auth_token)
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")

    @staticmethod
    def _unless_gone(request) -> bool:
        """Run a REST update; False when the resource is gone (404): the room or call ended."""
        try:
            request()
            return True
        except TwilioRestException as exc:
            if exc.status == 404:
                return False
            raise

    def end_conference(self, conference_sid: str) -> bool:
        """Status=completed: everyone leaves. False if the room had already ended."""
        return self._unless_gone(
            lambda: self.client.conferences(conference_sid).update(status="completed"))

    def announce(self, conference_sid: str, url: str) -> bool:
        return self._unless_gone(lambda: self.client.conferences(conference_sid).update(
            announce_url=url, announce_method="POST"))

    def hang_up(self, call_sid: str) -> bool:
        return self._unless_gone(lambda: self.client.calls(call_sid).update(status="completed"))

    def start_call_recording(self, call_sid: str, status_callback: str) -> dict | None:
        """Record the whole call from now on (Plivo recordSession): Twilio's call recordings.
        Returns the recording's RecordingSid and RecordingUrl (as its callbacks name them), or
        None if the call has ended. A call not yet in progress raises (the job retries)."""
        created = []
        if not self._unless_gone(lambda: created.append(
                self.client.calls(call_sid).recordings.create(
                    recording_status_callback=status_callback,
                    recording_status_callback_method="POST",
                    recording_status_callback_event=["completed", "absent"],
                    trim="do-not-trim", recording_channels="mono"))):
            return None
        recording = created[0]
        uri = (recording.uri or "").removesuffix(".json")
        return {"RecordingSid": recording.sid,
                "RecordingUrl": self.client.api.base_url.rstrip("/") + uri}

    def send_sms(self, sender: str, to: str, body: str, status_callback: str) -> str:
        """One SMS through the Messages resource; returns its MessageSid. Twilio's refusal
        (a bad number, a body too long) raises TwilioRestException with Twilio's code."""
        message = self.client.messages.create(from_=sender, to=to, body=body,
                                              status_callback=status_callback)
        return str(message.sid)

    def conference_sid_for(self, friendly_name: str) -> str | None:
        """The in-progress room with this FriendlyName, if any."""
        rooms = self.client.conferences.list(friendly_name=friendly_name, status="in-progress",
                                             limit=1)
        return rooms[0].sid if rooms else None
