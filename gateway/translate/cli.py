"""`gateway translate FILE|-`: the TwiML the webhook would return, and a report on stderr.

Gateway URLs appear as the `{gateway}` placeholder (`{gateway-wss}` for the side streams'
WebSocket URL, `{token}` for a stream's token). When the document hands control back to the
gateway (a Conference, a Redirect), the TwiML of each following stretch is printed too, after an
XML comment saying when it runs; `--first` prints only what the voice webhook returns.
Invalid Plivo XML exits with status 1 and prints the line and the reason.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from ..plivoxml import PlivoXMLError, Redirect, parse_document
from . import TranslationContext, translate

EXAMPLE_ACCOUNT = "MA00000000000000000001"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gateway translate", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="Plivo XML file, or - for standard input")
    parser.add_argument("--account", default=EXAMPLE_ACCOUNT,
                        help="Plivo account that scopes conference rooms (default: %(default)s)")
    parser.add_argument("--first", action="store_true",
                        help="print only the TwiML the voice webhook returns")
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

    start, step, statuses = 0, 0, Counter()
    stop_streams: tuple[str, ...] = ()
    out = sys.stdout
    while True:
        context = TranslationContext(account=args.account, step=step, first_in_call=step == 0,
                                     stop_streams=stop_streams)
        result = translate(document, context, start)
        out.write(result.twiml + "\n")
        for note in result.notes:
            statuses[note.status] += 1
            print(f"{name}: {note}", file=sys.stderr)
        if args.first or result.resume_at is None:
            break
        handback = result.handback
        if isinstance(handback, Redirect):
            out.write(f"<!-- then the gateway fetches {handback.url} ({handback.method}) and "
                      "translates its XML -->\n")
            break
        out.write(f"<!-- when the member leaves the room of line {handback.line}"
                  + (" and the action URL does not replace the document" if getattr(
                      handback, "action", None) else "") + ": -->\n")
        # A member's side stream (digitsMatch) is stopped by the TwiML that follows its Dial.
        stop_streams = ((context.participant_label,) if getattr(handback, "digits_match", ())
                        else ())
        start, step = result.resume_at, step + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "nothing to report"
    print(f"{name}: {summary}", file=sys.stderr)
    return 0
