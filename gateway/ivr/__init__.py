"""Menus (GetDigits, GetInput): what the caller pressed or said, Plivo's way.

`answers` turns Twilio's Gather results into Plivo's verdict and parameters (pure); `menus` is
the service behind the gateway's Gather endpoints (retries, validDigits, the action URL,
redirect true/false, interim speech results); `beep` is the tone played for `playBeep`.
"""
