"""`gateway check-apps`: each opted-in app's answer URL, fetched once as a dry run, and reported.

An app opts in with `check = true` in its mapping (the dry run reaches the app: it must be
the owner's choice). For each such app the gateway requests the answer URL exactly as a call
would (method, Plivo's parameters and V2/V3 signatures, allowed hosts, retry fragment), with
clearly marked sample values (`CallUUID=check-apps-<uuid>`, `CallerName=gateway check-apps (dry
run)`, From a fictional 555-01xx number) and a `Gateway-Dry-Run: check-apps` header, so that
the app can tell it from a call. Then it reports:

- every element and attribute the gateway would run, stretch by stretch (the translate report);
- every URL the gateway itself would request for the app (action, callbackUrl, waitSound, a
  Redirect...) whose host is outside the app's `allowed_hosts` (at run time it is refused);
- every element the gateway cannot run (a call that reaches it hears the apology).

Exit status: 0 when no checked app has a problem, 1 when one has (the answer URL failed, its
XML is invalid, an element cannot run, a URL is outside allowed_hosts), 2 when the routing
files are invalid. A Redirect's target is listed but not fetched: the dry run reads one
document per app. Nothing here is run by a call: this is an operator's command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import urlsplit

from .app_side.client import AppClient, AppRequestError, safe_url
from .app_side.params import EVENT_START_APP, call_params
from .mappings import PlivoApp, check_mappings, host_allowed
from .plivoxml import Document, Element, Note, PlivoXMLError, Redirect, UnsupportedElement
from .plivoxml.attributes import Sound, Url, is_http_url
from .plivoxml.parser import parse_document
from .translate import ElementCannotRun, TranslationContext, translate
from .translate.stretches import walk

DRY_RUN_HEADER = "Gateway-Dry-Run"
DRY_RUN_VALUE = "check-apps"
SAMPLE_CALLER = "+12025550100"  # 555-0100..0199: reserved for fiction in the NANP
DEFAULT_TIMEOUT = 10.0
# URL attributes that Twilio fetches (the gateway writes them into a <Play>), so allowed_hosts,
# which limits the gateway's own requests, does not apply to them.
TWILIO_FETCHES = {("GetDigits", "invalidDigitsSound")}


@dataclass(frozen=True)
class GatewayFetch:
    """A URL in a document that the gateway itself would request for the app."""

    element: str
    attribute: str
    url: str
    line: int | None


@dataclass
class AppReport:
    """What the dry run found for one app: the report lines, and the problems among them."""

    app: PlivoApp
    notes: list[Note] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fetches: list[GatewayFetch] = field(default_factory=list)


# --- pure: what a document would make the gateway do -------------------------------------------
def gateway_fetches(elements: Sequence[Element]) -> Iterator[GatewayFetch]:
    """Every URL-valued attribute (and Redirect target) the gateway would request, in document
    order, nested elements included. Play URLs (and TWILIO_FETCHES) are Twilio's to fetch."""
    for element in elements:
        if isinstance(element, UnsupportedElement):
            yield from gateway_fetches(element.children)
            continue
        for name, kind in element.ATTRIBUTES.items():
            if isinstance(kind, Url | Sound) and (element.TAG, name) not in TWILIO_FETCHES:
                value = getattr(element, element.field_for(name), None)
                if isinstance(value, str) and is_http_url(value):
                    yield GatewayFetch(element.TAG, name, value, element.line)
        if isinstance(element, Redirect):
            yield GatewayFetch(element.TAG, "(its URL)", element.url, element.line)
        yield from gateway_fetches(getattr(element, "children", ()) or ())


def typed_cannot_run(document: Document, context: TranslationContext) -> list[ElementCannotRun]:
    """Supported elements that cannot run as written (a MultiPartyCall, an mms Message, a Stream
    to a host outside allowed_hosts), each once, past the first too: every step is translated
    from itself, and an element's refusal is kept (unsupported ones are listed apart)."""
    found: dict[tuple[str, int | None], ElementCannotRun] = {}
    for index, element in enumerate(document.steps):
        if isinstance(element, UnsupportedElement):
            continue
        try:
            translate(document, context, index)
        except ElementCannotRun as refused:
            if (refused.element, refused.line) == (element.TAG, element.line):
                found.setdefault((refused.element, refused.line), refused)
    return list(found.values())


def unsupported(elements: Sequence[Element]) -> Iterator[UnsupportedElement]:
    """The outermost elements the gateway cannot run (a Dial, not also each of its Numbers),
    nested ones included (a Message inside a supported element)."""
    for element in elements:
        if isinstance(element, UnsupportedElement):
            yield element
        else:
            yield from unsupported(getattr(element, "children", ()) or ())


def review(app: PlivoApp, document: Document) -> AppReport:
    """The report for one fetched document (pure)."""
    report = AppReport(app)
    context = TranslationContext(account=app.account, app=app.name,
                                 allowed_hosts=app.allowed_hosts)
    result = walk(document, context)
    report.notes.extend(result.notes)
    reached = result.cannot_run
    if reached is not None:
        report.problems.append(f"{reached} (where the walk stopped)")
    for element in unsupported(document.elements):
        if reached is None or (element.tag, element.line) != (reached.element, reached.line):
            report.problems.append(f"line {element.line}: <{element.tag}> cannot run on the "
                                   "gateway: not yet supported (a call that reaches it hears "
                                   "the apology)")
    for refused in typed_cannot_run(document, context):
        if reached is None or (refused.element, refused.line) != (reached.element, reached.line):
            report.problems.append(str(refused))
    for fetch in gateway_fetches(document.elements):
        report.fetches.append(fetch)
        host = urlsplit(fetch.url).hostname or ""
        if not host_allowed(host, app.allowed_hosts):
            report.problems.append(
                f"line {fetch.line}: <{fetch.element} {fetch.attribute}> {safe_url(fetch.url)}: "
                f"host {host!r} is not in allowed_hosts (the gateway would refuse to fetch it)")
    if result.redirect is not None:
        report.notes.append(Note("Redirect", "translated", f"the next document "
                                 f"({safe_url(result.redirect.url)}) is not fetched by the dry "
                                 "run", line=result.redirect.line))
    return report


def sample_params(app: PlivoApp) -> dict[str, str]:
    """Plivo's answer parameters for a call that does not exist, marked as a dry run."""
    params = call_params({"CallSid": "CA" + "0" * 32, "From": SAMPLE_CALLER,
                          "To": app.numbers[0], "CallStatus": "ringing",
                          "Direction": "inbound"}, event=EVENT_START_APP)
    params["CallUUID"] = f"check-apps-{uuid.uuid4()}"
    params["CallerName"] = "gateway check-apps (dry run)"
    return params


# --- I/O: the dry run ----------------------------------------------------------------------------
def check_app(app: PlivoApp, client: AppClient, timeout: float = DEFAULT_TIMEOUT) -> AppReport:
    try:
        response = client.request(app.answer_url, app.answer_method, sample_params(app),
                                  auth_token=app.auth_token(), allowed_hosts=app.allowed_hosts,
                                  deadline=time.monotonic() + timeout)
    except LookupError as exc:
        return AppReport(app, problems=[f"cannot sign the request: {exc}"])
    except AppRequestError as exc:
        return AppReport(app, problems=[f"{app.answer_method} {safe_url(app.answer_url)} "
                                        f"failed: {exc.reason}"])
    try:
        document = parse_document(response.text, cache=False)
    except PlivoXMLError as exc:
        return AppReport(app, problems=[f"{safe_url(app.answer_url)} answered invalid Plivo "
                                        f"XML: {exc}"])
    return review(app, document)


def print_report(report: AppReport, out: TextIO) -> None:
    app = report.app
    out.write(f"app {app.name} ({app.source}): {app.answer_method} {safe_url(app.answer_url)}, "
              "dry run\n")
    for note in report.notes:
        out.write(f"  {note}\n")
    for fetch in report.fetches:
        out.write(f"  line {fetch.line}: <{fetch.element} {fetch.attribute}> the gateway would "
                  f"request {safe_url(fetch.url)}\n")
    for problem in report.problems:
        out.write(f"  PROBLEM {problem}\n")
    verdict = f"{len(report.problems)} problem(s)" if report.problems else "ok"
    out.write(f"app {app.name}: {verdict}\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gateway check-apps",
        description="Fetch each opted-in app's answer URL as a dry run (check = true in its "
                    "mapping) and report what the gateway would run, what it cannot, and every "
                    "URL outside the app's allowed_hosts.")
    parser.add_argument("path", nargs="?", default=os.environ.get("GATEWAY_MAPPINGS", "mappings"),
                        help="directory of *.toml files or one file (default: $GATEWAY_MAPPINGS "
                             "or ./mappings)")
    parser.add_argument("--app", action="append", metavar="NAME",
                        help="check only this app (may be repeated; it must opt in too)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds for each answer URL (default %(default)s)")
    args = parser.parse_args(argv)
    apps, errors = check_mappings(args.path)
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        print(f"gateway check-apps: {len(errors)} error(s) in the routing files; fix them "
              "first (gateway check-mappings)", file=sys.stderr)
        return 2
    wanted = set(args.app or ())
    unknown = wanted - {a.name for a in apps}
    if unknown:
        print(f"gateway check-apps: no app named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    selected = [a for a in apps if not wanted or a.name in wanted]
    out = sys.stdout
    problems = 0
    checked = 0
    with AppClient(user_agent="PlivoHTTP/1.0 (gateway check-apps)",
                   extra_headers={DRY_RUN_HEADER: DRY_RUN_VALUE}) as client:
        for app in selected:
            if not app.check:
                out.write(f"app {app.name}: not checked (add `check = true` to its mapping to "
                          "allow the dry run to request its answer URL)\n")
                continue
            report = check_app(app, client, args.timeout)
            print_report(report, out)
            checked += 1
            problems += len(report.problems)
    out.write(f"{checked} app(s) checked, {problems} problem(s)\n")
    return 1 if problems else 0
