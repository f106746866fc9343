"""`gateway translate FILE|-`: the TwiML the webhook would return, and a report on stderr.

Gateway URLs appear as the `{gateway}` placeholder. When the document hands control back to the
gateway (a Conference, a Redirect), the TwiML of each following stretch is printed too, after an
XML comment saying when it runs; `--first` prints only what the voice webhook returns.
Invalid Plivo XML exits with status 1 and prints the line and the reason; so does a document
that reaches an element the gateway cannot run (a call would hear the gateway's apology there:
an XML comment marks the place, and stderr names the element and its line), also with --first.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..plivoxml import Dial, PlivoXMLError, Record, Redirect, parse_document
from ..plivoxml.elements import Stream
from . import INPUT_ELEMENTS, TranslationContext
from .context import MAX_CALL_SECONDS
from .stretches import walk

EXAMPLE_ACCOUNT = "MA00000000000000000001"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gateway translate", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="Plivo XML file, or - for standard input")
    parser.add_argument("--account", default=EXAMPLE_ACCOUNT,
                        help="Plivo account that scopes conference rooms (default: %(default)s)")
    parser.add_argument("--first", action="store_true",
                        help="print only the TwiML the voice webhook returns")
    parser.add_argument("--max-call-seconds", type=int, default=MAX_CALL_SECONDS,
                        choices=range(1, MAX_CALL_SECONDS + 1), metavar="N",
                        help="the cap written on every Dial (GATEWAY_MAX_CALL_SECONDS; "
                             "default and maximum %(default)s)")
    args = parser.parse_args(argv)
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        print(f"gateway translate: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    name = "<stdin>" if args.file == "-" else args.file
    try:
        document = parse_document(data)
    except PlivoXMLError as exc:
        print(f"{name}: invalid Plivo XML: {exc}", file=sys.stderr)
        return 1

    result = walk(document, TranslationContext(account=args.account,
                                               max_call_seconds=args.max_call_seconds))
    out = sys.stdout
    shown = result.stretches[:1] if args.first else result.stretches
    for stretch in shown:
        out.write(stretch.twiml + "\n")
        handback = stretch.handback
        if args.first or handback is None:
            continue
        if isinstance(handback, Redirect):
            out.write(f"<!-- then the gateway fetches {handback.url} ({handback.method}) and "
                      "translates its XML -->\n")
        elif isinstance(handback, Record):
            out.write(f"<!-- when the recording of line {handback.line} ends"
                      + (" and the action URL does not replace the document" if handback.action
                         and handback.redirect else "") + ": -->\n")
        elif isinstance(handback, Dial):
            out.write(f"<!-- when the forward of line {handback.line} ends"
                      + (" and the action URL does not replace the document" if handback.action
                         and handback.redirect else "") + ": -->\n")
        elif isinstance(handback, Stream):
            out.write(f"<!-- when the stream of line {handback.line} ends (the app or the call "
                      "closes it): -->\n")
        elif isinstance(handback, INPUT_ELEMENTS):
            out.write(f"<!-- when the menu of line {handback.line} gets no valid input"
                      + ("" if handback.redirect or not handback.action else
                         " or its action was requested in the background") + ": -->\n")
        else:
            out.write(f"<!-- when the member leaves the room of line {handback.line}"
                      + (" and the action URL does not replace the document" if getattr(
                          handback, "action", None) else "") + ": -->\n")
    cannot_run = result.cannot_run
    if cannot_run is not None and len(shown) == len(result.stretches):
        out.write(f"<!-- here the caller hears the gateway's apology and the call ends: "
                  f"<{cannot_run.element}> on line {cannot_run.line} cannot run -->\n")
    statuses = Counter(note.status for note in result.notes)
    for note in result.notes:
        print(f"{name}: {note}", file=sys.stderr)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "nothing to report"
    if cannot_run is not None:
        print(f"{name}: {cannot_run}", file=sys.stderr)
        print(f"{name}: {summary}; cannot run on the gateway: <{cannot_run.element}> on line "
              f"{cannot_run.line}", file=sys.stderr)
        return 1
    print(f"{name}: {summary}", file=sys.stderr)
    return 0
