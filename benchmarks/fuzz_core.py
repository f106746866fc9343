"""Fuzz the pure core: Plivo XML in, TwiML out, and nothing escapes but the typed errors.

    python benchmarks/fuzz_core.py -runs=1000000 -max_len=4096 [CORPUS_DIR]

Coverage-guided (atheris, libFuzzer's engine, instrumenting the gateway's own modules), over
three kinds of input chosen by the fuzzer's first byte:

* raw bytes handed to the parser as a document (the hardened parser's own edge cases);
* a document *built* from the fuzzer's bytes out of Plivo's vocabulary: every element the
  registry knows, each with attributes drawn from its own table and values from a list of
  interesting ones (empty, huge, negative, unicode, markup, URL tricks) or raw fuzz text, nested
  as the fuzzer likes (allowed or not);
* one of the real documents (the seed's examples and the Plivo SDK corpus) with fuzz spliced in.

Each parsed document is translated stretch by stretch (`gateway.translate.stretches.walk`, the
path every call takes), with the first stretch played to an unanswered call or not. Allowed
outcomes: a `PlivoXMLError` from the parser (Plivo would refuse the document), a walk that stops
at an element the gateway cannot run. Anything else is a crash: atheris saves the input, and it
becomes a test in tests/core.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["gateway"]):
    from gateway.examples import SEED_EXAMPLES
    from gateway.plivoxml import PlivoXMLError, parse_document
    from gateway.plivoxml.elements import NOT_YET, SUPPORTED
    from gateway.translate import TranslationContext
    from gateway.translate.stretches import walk

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpus/plivo-sdk-xml-fixtures.json"

ELEMENTS = sorted({*SUPPORTED, *NOT_YET, "Response", "speak", "prosody", "break", "s"})
ATTRIBUTES = {tag: sorted(cls.ATTRIBUTES) for tag, cls in SUPPORTED.items()}
VALUES = ["", "true", "false", "0", "1", "-1", "999999999999999999999", "3.5", "GET", "POST",
          "get", "https://app.example.com/x", "http://127.0.0.1:8080\\@app.example.com/",
          "wss://a.example/s", "javascript:alert(1)", "ftp://x", "beep:1", "beep:2", "#", "*",
          "0123456789*#", "1,22,333", " , ,", "auto", "hybrid", "manual", "mp3", "wav",
          "en-US", "WOMAN", "Polly.Joanna", "dtmf speech", "ﬁ\u202e\U0001F600", "A" * 5000,
          "<b>", "&amp;", "%00", "\t\n", "14400", "250", "251",
          # Dial's vocabulary: numbers, SIP URIs (and injections), sipHeaders, dialMusic
          "14155550100", "+442071234567", "sip:bob@sip.example.com",
          "sip:bob@a.example.com?Route=x", "a=b,c=d", "a=b;c", "real", "none"]


def seeds() -> list[str]:
    documents = [xml for example in SEED_EXAMPLES for _, xml in example.documents]
    if CORPUS.exists():
        documents += [fixture["xml"] for fixture in json.loads(CORPUS.read_text())]
    return documents


SEEDS = seeds()


def build(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> str:
    """One element (and maybe children) from Plivo's vocabulary, as the fuzzer chooses."""
    tag = ELEMENTS[fdp.ConsumeIntInRange(0, len(ELEMENTS) - 1)]
    names = ATTRIBUTES.get(tag, [])
    attributes = []
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        name = (names[fdp.ConsumeIntInRange(0, len(names) - 1)]
                if names and fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8) or "x")
        value = (VALUES[fdp.ConsumeIntInRange(0, len(VALUES) - 1)] if fdp.ConsumeBool()
                 else fdp.ConsumeUnicodeNoSurrogates(24))
        attributes.append((name, value))
    attrs = "".join(f' {_name(n)}="{_escape(v)}"' for n, v in attributes)
    inner = ""
    if depth < 4:
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            inner += build(fdp, depth + 1) if fdp.ConsumeBool() else _escape(
                fdp.ConsumeUnicodeNoSurrogates(16))
    return f"<{tag}{attrs}>{inner}</{tag}>"


def _name(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isalnum()) or "x"
    return cleaned if cleaned[0].isalpha() else "a" + cleaned


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def document_from(data: bytes) -> str | bytes:
    fdp = atheris.FuzzedDataProvider(data)
    kind = fdp.ConsumeIntInRange(0, 2)
    if kind == 0:
        return fdp.ConsumeBytes(fdp.remaining_bytes())
    if kind == 1:
        body = "".join(build(fdp) for _ in range(fdp.ConsumeIntInRange(1, 6)))
        return f"<Response>{body}</Response>"
    seed = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
    at = fdp.ConsumeIntInRange(0, len(seed))
    cut = fdp.ConsumeIntInRange(0, 16)
    return seed[:at] + fdp.ConsumeUnicodeNoSurrogates(64) + seed[at + cut:]


def test_one_input(data: bytes) -> None:
    source = document_from(data)
    try:
        document = parse_document(source)
    except PlivoXMLError:
        return
    for first_in_call in (True, False):
        # With an app's allowed_hosts on the second walk, as a call runs it (a <User>'s host).
        walk(document, TranslationContext(account="MA00000000000000000001",
                                          first_in_call=first_in_call,
                                          allowed_hosts=None if first_in_call else (
                                              "sip.example.com",)))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
