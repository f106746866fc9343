"""The few TwiML answers the gateway writes itself (everything else comes from translation).

An apology is marked as such for whoever reads the HTTP exchange: the response carries the
`Gateway-Call-Failed` header with a short, secret-free reason. Twilio reads only the body and its
Content-Type; the header is for Twilio's request inspector, for logs between the two, and for
the local simulator, which marks the call failed without knowing anything else of the gateway.
(RFC 9110 §5.1: new fields can be added where recipients that do not know them may ignore them.)
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

APOLOGY = "We are sorry, this call cannot be completed right now. Goodbye."
NOT_IN_SERVICE = "The number you have called is not in service. Goodbye."
FAILURE_HEADER = "Gateway-Call-Failed"


def spoken_goodbye(text: str = APOLOGY) -> str:
    response = VoiceResponse()
    response.say(text, voice="Polly.Joanna", language="en-US")
    response.hangup()
    return response.to_xml()

