"""Forwarding calls (Plivo's `<Dial>`) on Twilio, as Plivo apps know them.

    params.py    Plivo's Dial action and callback parameters from Twilio's (pure)
    forwards.py  the service behind the gateway's Dial endpoints: each leg's status -> Plivo's
                 DialAction callbacks, the callee's whisper (confirmSound + confirmKey, a SIP
                 user's sendDigits), the Dial action -> Plivo's action URL and the rest
    digits.py    digitsMatch: the caller's keys, heard by the side-stream server ->
                 DialAction=digits (and the label dispatch between rooms and forwards)
"""
