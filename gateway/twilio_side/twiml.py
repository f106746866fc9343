"""The few TwiML answers the gateway writes itself (everything else comes from translation)."""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

APOLOGY = "We are sorry, this call cannot be completed right now. Goodbye."
NOT_IN_SERVICE = "The number you have called is not in service. Goodbye."


def spoken_goodbye(text: str = APOLOGY) -> str:
    response = VoiceResponse()
    response.say(text, voice="Polly.Joanna", language="en-US")
    response.hangup()
    return response.to_xml()

