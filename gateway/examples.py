"""The seven examples of Plivo's `<Conference>` documentation, as data.

Used by `gateway demo` (served by the example app), by the golden TwiML tests and by the
end-to-end tests. URLs under www.foo.com are the documentation's own placeholders; whoever serves
these documents rewrites them to hosts it controls (see `with_base_url`).
"""

from __future__ import annotations

from dataclasses import dataclass

FOO = "http://www.foo.com"


@dataclass(frozen=True)
class SeedExample:
    number: int
    title: str
    documents: tuple[tuple[str, str], ...]  # (role, Plivo XML) — who runs which document

    def with_base_url(self, base: str) -> SeedExample:
        return SeedExample(self.number, self.title, tuple(
            (role, xml.replace(FOO, base.rstrip("/"))) for role, xml in self.documents))


SEED_EXAMPLES: tuple[SeedExample, ...] = (
    SeedExample(1, "A simple conference", (
        ("caller", "<Response>\n<Conference>9876</Conference>\n</Response>"),
    )),
    SeedExample(2, "A moderated conference", (
        ("participant", '<Response>\n<Conference startConferenceOnEnter="false" '
                        'waitSound="http://www.foo.com/waitmusic/">9876</Conference>\n</Response>'),
        ("moderator", '<Response>\n<Conference startConferenceOnEnter="true" '
                      'endConferenceOnExit="true">9876</Conference>\n</Response>'),
    )),
    SeedExample(3, "Join a conference muted", (
        ("caller", '<Response>\n<Conference muted="true">SimpleRoom</Conference>\n</Response>'),
    )),
    # Printed malformed in the documentation: the stray '>' makes the rest of the start tag the
    # room's text. Kept exactly as printed: Plivo runs it that way, and so does the gateway.
    SeedExample(4, "Bridging incoming calls", (
        ("caller", '<Response>\n<Conference beep="false" waitSound="http://www.foo.com/waitmusic/"'
                   ' startConferenceOnEnter="true">\nendConferenceOnExit="true">'
                   'NoMusicNoBeepRoom</Conference>\n</Response>'),
    )),
    SeedExample(5, "Call on hold", (
        ("customer", '<Response>\n<Conference waitSound="http://www.foo.com/waitmusic/" '
                     'beep="false">Customer Waiting Room</Conference>\n</Response>'),
        ("operator", '<Response>\n<Conference beep="false" endConferenceOnExit="true">'
                     'Customer Waiting Room</Conference>\n</Response>'),
    )),
    SeedExample(6, "Combining with other attributes", (
        ("caller", '<Response>\n<Conference hangupOnStar="true" timeLimit="30">plivo</Conference>'
                   '\n<Redirect>http://www.foo.com/nextstep/</Redirect>\n</Response>'),
    )),
    SeedExample(7, "Using callbackUrl", (
        ("caller", '<Response>\n<Conference callbackUrl="http://www.foo.com/confevents/" '
                   'callbackMethod="POST" digitsMatch="#0,99,000">MyRoom</Conference>\n'
                   '</Response>'),
    )),
)
