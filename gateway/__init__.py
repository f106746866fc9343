"""Plivo-to-Twilio voice gateway.

Twilio numbers point their Voice URL at this gateway; it calls the team's Plivo app exactly as
Plivo would, translates the Plivo XML it returns into TwiML, and turns what Twilio reports
afterwards into the requests Plivo would have sent.

Layout (each package's docstring says what it owns):
    plivoxml/     safe parser and typed model of Plivo XML (pure)
    translate/    model -> TwiML, one module per element (pure)
    twilio_side/  Twilio webhooks in, Twilio REST out
    app_side/     requests to the customer's app: Plivo parameters, signatures, retries
    conference/   room naming, membership, callbacks, emulations
    state/        the Store behind one interface (sqlite, redis)
    sim/          the local Twilio simulator (`gateway simulate`, `gateway demo`)
"""

__version__ = "0.1.0"
