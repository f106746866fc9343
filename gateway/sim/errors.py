"""Twilio error codes the simulator reports, and its typed errors.

Codes and titles come from Twilio's Error and Warning Dictionary
(https://www.twilio.com/docs/api/errors). Twilio logs most TwiML attribute problems at WARNING
level; the simulator is stricter on purpose (see docs/simulator.md, "Strictness"): a bad value
ends the call as an application error, so that a gateway bug never goes unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

# code -> Twilio's title for it
TITLES: dict[int, str] = {
    11100: "Invalid URL format",
    11200: "HTTP retrieval failure",
    11202: "TCP connection refused",
    11205: "HTTP connection failure",
    11750: "TwiML response body too large",
    12100: "Document parse failure",
    12102: "The root element must be Response",
    12200: "Schema validation warning",
    12300: "Invalid Content-Type",
    13210: "Dial: Invalid method value",
    13212: "Dial: Invalid timeout value",
    13213: "Dial: Invalid hangupOnStar value",
    13215: "Dial: Invalid nested element",
    13216: "Invalid timeLimit value",
    13217: "Dial: Invalid record value",
    13219: "Dial: Invalid answerOnBridge value",
    13230: "Dial->Conference: Invalid muted value",
    13231: "Dial->Conference: Invalid endConferenceOnExit value",
    13232: "Dial->Conference: Invalid startConferenceOnEnter value",
    13233: "Dial->Conference: Invalid waitUrl",
    13234: "Dial->Conference: Invalid waitMethod",
    13235: "Dial->Conference: Invalid beep value",
    13237: "Dial->Conference: Invalid Conference Name",
    13238: "Dial->Conference: Invalid Verb used in waitUrl, holdUrl, or announceUrl TwiML",
    13239: "Dial->Conference: Invalid Trim Value",
    13240: "Dial->Conference: Invalid Whisper SID",
    13256: "Invalid recordingStatusCallback URL",
    13410: "Play: Invalid loop value",
    13420: "Play: Invalid Content-Type",
    13430: "Play: Invalid DTMF String",
    13510: "Say: Invalid loop value",
    13511: "Say: Invalid voice value",
    13512: "Say: Invalid language value",
    13520: "Say: Invalid text",
    13621: "Invalid 'recordingStatusCallbackEvent'",
    13710: "Redirect: Invalid method value",
    13810: "Reject: Invalid cause",
    13910: "Pause: Invalid length value",
    14300: "Start: Invalid nested noun value",
    15003: "Call Progress: Warning Response to Callback URL",
    16002: "Failed to validate conference attributes",
    16011: "Conference Event: Error Response to Callback URL",
    16020: "Conference is full",
    16023: "Dial->Conference: Invalid participant label",
    16025: "Participant label already in use",
    31900: "Stream - Invalid attribute value",
    31902: "Stream - WebSocket - Connection Refused",
    31920: "Stream - WebSocket - Handshake Error",
    31921: "Stream - WebSocket - Close Error",
}

# What Twilio plays to the caller when the call dies of an application error.
APPLICATION_ERROR_MESSAGE = "We are sorry, an application error has occurred. Goodbye."


@dataclass(frozen=True)
class TwimlError(Exception):
    """TwiML that Twilio would not execute: the call ends as an application error."""

    code: int
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.code} {TITLES.get(self.code, '')}: {self.reason}{where}"


@dataclass(frozen=True)
class TwimlWarning:
    """Something Twilio logs as a warning and otherwise ignores (an unknown attribute...)."""

    code: int
    reason: str
    line: int | None = None


@dataclass(frozen=True)
class FetchError(Exception):
    """A webhook whose answer Twilio cannot use: timeout, refused, non-2xx, wrong content type."""

    code: int
    reason: str
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.code} {TITLES.get(self.code, '')}: {self.reason}"
