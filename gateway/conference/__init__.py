"""Conferences on Twilio, as Plivo apps know them.

    members.py    rooms and members in the shared store: member IDs, each member's settings
    events.py     Twilio conference and recording events -> Plivo callbacks and emulations
    action.py     the member leaves the room: Plivo's action URL, redirect, the rest of the doc
    callbacks.py  the parameters of Plivo's conference callbacks (pure)
"""
