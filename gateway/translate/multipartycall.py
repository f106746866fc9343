"""`<MultiPartyCall>` cannot run on the gateway yet (pure): the stretch that reaches it fails with
the reason, before anything of it is played, and the caller hears the apology.

Its nearest Twilio behaviour is a conference whose participants carry the MPC's roles (a
supervisor in coachMode as a coaching participant, mute/hold as muted/held participants,
maxParticipants as the conference's, maxDuration as a timer that ends it, statusCallbackUrl from
Twilio's conference events, in the MPC's own parameters). That emulation is not built: the README
table lists, attribute by attribute, what each would become and what has no Twilio equivalent.
"""

from __future__ import annotations

from ..plivoxml.elements import MultiPartyCall
from .builder import TwimlBuilder
from .outcome import ElementCannotRun, Flow

REASON = ("MultiPartyCall (role {role}) is not run by the gateway yet: its nearest Twilio "
          "behaviour, a conference with coaching, muted and held participants, is not built "
          "(README: MultiPartyCall); use <Conference>")


def translate_multipartycall(mpc: MultiPartyCall, builder: TwimlBuilder) -> Flow:
    raise ElementCannotRun("MultiPartyCall", mpc.line, REASON.format(role=mpc.role))
