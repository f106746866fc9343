"""Parse + translate of the seed's examples and of IVR menus: microseconds per document (issue
2's target: a median under 200 µs per document — reported here, never asserted).

Every document of `gateway.examples.SEED_EXAMPLES` (nine documents across the seven examples),
plus two IVR menus and a voicemail (`IVR_DOCUMENTS`: a GetDigits with retries, validDigits and a
beep; a GetInput for speech with hints and interim results, after a PreAnswer and a DTMF; a
Record with its callback and transcription), is parsed with the
hardened parser and translated to TwiML with a realistic context (a public base
URL, an account, a CallSid), exactly what `/twilio/voice` does once the XML has arrived. The
documents are interleaved (1, 2, ... 9, 1, 2, ...) so machine noise spreads evenly over them;
parse and translate are timed separately within each iteration and summed. The parser's cache
of recently seen documents is bypassed (`cache=False`): this is the cost of a document the
gateway has not seen yet.

    .venv/bin/python -m benchmarks.bench_translate [--rounds 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time

from benchmarks.stats import median, percentile
from gateway.examples import SEED_EXAMPLES
from gateway.plivoxml import parse_document
from gateway.translate import GatewayUrls, TranslationContext, translate

TARGET_MEDIAN_US = 200.0
CONTEXT = TranslationContext(account="MA00000000000000000001",
                             urls=GatewayUrls("https://gateway.example.com"), step=1,
                             first_in_call=True, call_sid="CA" + "0123456789abcdef" * 2)


IVR_DOCUMENTS = [
    ("ivr getdigits", '<Response><GetDigits action="https://app.example.com/ivr/main" '
     'method="POST" numDigits="1" timeout="7" retries="3" validDigits="123" playBeep="true" '
     'invalidDigitsSound="https://app.example.com/invalid.mp3"><Speak>Welcome to Example '
     "Corp. For sales press 1, for support press 2, for billing press 3.</Speak>"
     '<Wait length="1"/><Play>https://app.example.com/menu.mp3</Play></GetDigits>'
     "<Speak>We did not receive any input. Goodbye.</Speak></Response>"),
    ("ivr getinput", '<Response><PreAnswer><Speak>Please wait.</Speak></PreAnswer>'
     '<DTMF>1w2</DTMF><GetInput action="https://app.example.com/ivr/said" method="POST" '
     'inputType="dtmf speech" executionTimeout="10" speechEndTimeout="auto" numDigits="1" '
     'hints="sales,support,billing" language="en-US" speechModel="phone_call" '
     'interimSpeechResultsCallback="https://app.example.com/ivr/interim" redirect="true">'
     '<Speak voice="Polly.Joanna">Say sales, support or billing, or press a key.</Speak>'
     "</GetInput><Speak>Sorry, we did not get that.</Speak></Response>"),
    ("voicemail record", "<Response><Speak>Please leave a message after the beep. Press the "
     'star key when done.</Speak><Record action="https://app.example.com/vm/saved" '
     'finishOnKey="*" maxLength="120" fileFormat="wav" transcriptionType="auto" '
     'transcriptionUrl="https://app.example.com/vm/text" '
     'callbackUrl="https://app.example.com/vm/ready"/><Speak>Recording not received.</Speak>'
     "</Response>"),
]


def documents() -> list[tuple[str, str]]:
    """(label, Plivo XML) for every document of the seed's examples and the IVR menus."""
    return [(f"ex{example.number} {role}", xml) for example in SEED_EXAMPLES
            for role, xml in example.documents] + IVR_DOCUMENTS


def measure(rounds: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Samples in µs per document label: {"parse": [...], "translate": [...], "total": [...]}."""
    docs = documents()
    samples = {label: {"parse": [], "translate": [], "total": []} for label, _ in docs}
    clock = time.perf_counter_ns
    for round_number in range(warmup + rounds):
        for label, xml in docs:
            t0 = clock()
            document = parse_document(xml, cache=False)  # the full parse, every time
            t1 = clock()
            translate(document, CONTEXT)
            t2 = clock()
            if round_number >= warmup:
                bucket = samples[label]
                bucket["parse"].append((t1 - t0) / 1000)
                bucket["translate"].append((t2 - t1) / 1000)
                bucket["total"].append((t2 - t0) / 1000)
    return samples


def summarize(samples: dict[str, dict[str, list[float]]], rounds: int) -> dict:
    per_document = {}
    for label, bucket in samples.items():
        per_document[label] = {
            "median_us": median(bucket["total"]), "p90_us": percentile(bucket["total"], 90),
            "parse_median_us": median(bucket["parse"]),
            "translate_median_us": median(bucket["translate"]),
        }
    everything = [s for bucket in samples.values() for s in bucket["total"]]
    medians = [row["median_us"] for row in per_document.values()]
    return {
        "benchmark": "translate", "rounds": rounds, "documents": len(samples),
        "samples": len(everything), "python": platform.python_version(),
        "overall": {"median_us": median(everything), "p90_us": percentile(everything, 90),
                    "p99_us": percentile(everything, 99),
                    "worst_document_median_us": max(medians)},
        "per_document": per_document, "target_median_us": TARGET_MEDIAN_US,
        "meets_target": max(medians) < TARGET_MEDIAN_US,
    }


def report(result: dict) -> str:
    lines = [f"parse + translate, {result['documents']} documents x {result['rounds']} "
             f"interleaved rounds ({result['samples']} samples), Python {result['python']}",
             f"{'document':<16} {'median µs':>10} {'p90 µs':>8} {'parse':>8} {'translate':>10}"]
    for label, row in result["per_document"].items():
        lines.append(f"{label:<16} {row['median_us']:>10.1f} {row['p90_us']:>8.1f} "
                     f"{row['parse_median_us']:>8.1f} {row['translate_median_us']:>10.1f}")
    overall = result["overall"]
    lines.append(f"{'overall':<16} {overall['median_us']:>10.1f} {overall['p90_us']:>8.1f}"
                 f"   (p99 {overall['p99_us']:.1f} µs)")
    verdict = "meets" if result["meets_target"] else "MISSES"
    lines.append(f"slowest document's median {overall['worst_document_median_us']:.1f} µs: "
                 f"{verdict} the target (median < {TARGET_MEDIAN_US:.0f} µs per document)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3000, help="timed rounds (default 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed rounds first")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    gc.collect()
    result = summarize(measure(args.rounds, args.warmup), args.rounds)
    print(report(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
