"""The summary table of a benchmark run: `python -m benchmarks.summary DIR` (written by run.sh).

Reads the JSON figures each benchmark wrote into DIR and prints one table: the figure each
issue asks for, its target where there is one, and whether this run met it; then the machine
(cores, CPU, Python) and the load average around each benchmark, since the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path


def load(directory: Path, name: str) -> dict | None:
    path = directory / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def rows(directory: Path) -> list[tuple[str, str, str, str]]:
    table: list[tuple[str, str, str, str]] = []
    translate = load(directory, "translate")
    if translate:
        overall = translate["overall"]
        table.append(("translate", "median µs per document (slowest document)",
                      f"{overall['worst_document_median_us']:.0f}",
                      f"< 200: {verdict(translate['meets_target'])}"))
        table.append(("", "all documents: median / p90 µs",
                      f"{overall['median_us']:.0f} / {overall['p90_us']:.0f}",
                      f"{translate['samples']} samples"))
    for name, label in (("voice", "tests' app"), ("voice-keepalive", "keep-alive app")):
        voice = load(directory, name)
        if not voice:
            continue
        gw, px = voice["gateway"], voice["proxy"]
        table.append((f"voice ({label})", "gateway / proxy req/s (medians)",
                      f"{gw['median_rps']:.0f} / {px['median_rps']:.0f}",
                      f"{voice['rounds']} rounds each, c={voice['concurrency']}"))
        table.append(("", "gateway/proxy throughput",
                      f"{voice['ratio_of_medians']:.0%}",
                      f">= 90%: {verdict(voice['meets_target'])}"))
        table.append(("", "p50 / p99 ms: gateway vs proxy",
                      f"{gw['p50_ms']:.0f} / {gw['p99_ms']:.0f} vs "
                      f"{px['p50_ms']:.0f} / {px['p99_ms']:.0f}", ""))
        table.append(("", "server CPU ms per request: gateway vs proxy",
                      f"{gw['median_cpu_ms_per_request']:.1f} vs "
                      f"{px['median_cpu_ms_per_request']:.1f}", ""))
    cpu = load(directory, "voice-cpu")
    if cpu:
        table.append(("voice (in process)", "CPU µs per request: gateway vs proxy (medians)",
                      f"{cpu['gateway_median_us']:.0f} vs {cpu['proxy_median_us']:.0f}",
                      f"gateway/proxy {cpu['gateway_over_proxy']:.2f}, "
                      f"{cpu['rounds']} rounds"))
    conference = load(directory, "conference")
    if conference:
        sq, rd = conference["sqlite"], conference["redis"]
        table.append(("conference events", f"quiet {conference['quiet_rate']:g}/s: callback "
                      "p50 / p99 ms, sqlite vs redis",
                      f"{sq['quiet']['p50_ms']:.0f} / {sq['quiet']['p99_ms']:.0f} vs "
                      f"{rd['quiet']['p50_ms']:.0f} / {rd['quiet']['p99_ms']:.0f}",
                      f"{conference['members']} members, {conference['rounds']} rounds, "
                      f"{conference.get('app', 'tests')} app"))
        table.append(("", f"paced {conference['paced_rate']:g}/s: callback "
                      "p50 / p99 ms, sqlite vs redis",
                      f"{sq['paced']['p50_ms']:.0f} / {sq['paced']['p99_ms']:.0f} vs "
                      f"{rd['paced']['p50_ms']:.0f} / {rd['paced']['p99_ms']:.0f}", ""))
        table.append(("", "sustained events/s (burst), sqlite vs redis",
                      f"{sq['burst']['median_events_per_s']:.0f} vs "
                      f"{rd['burst']['median_events_per_s']:.0f}", ""))
        table.append(("", "burst: callback p50 / p99 ms, sqlite vs redis",
                      f"{sq['burst']['p50_ms']:.0f} / {sq['burst']['p99_ms']:.0f} vs "
                      f"{rd['burst']['p50_ms']:.0f} / {rd['burst']['p99_ms']:.0f}", ""))
        table.append(("", "CPU ms per event, sqlite vs redis",
                      f"{sq['burst']['median_cpu_ms_per_event']:.1f} vs "
                      f"{rd['burst']['median_cpu_ms_per_event']:.1f}", ""))
        if sq.get("speech", {}).get("phases"):
            table.append(("", "speaker event (no floor listener): CPU ms, sqlite vs redis",
                          f"{sq['speech']['median_cpu_ms_per_event']:.2f} vs "
                          f"{rd['speech']['median_cpu_ms_per_event']:.2f}",
                          f"{sq['speech']['over_burst_cpu']:.2f} / "
                          f"{rd['speech']['over_burst_cpu']:.2f} of a join"))
        problems = len(sq["problems"]) + len(rd["problems"])
        table.append(("", "callbacks wrong or missing; duplicates",
                      f"{problems}; {conference['duplicate_callbacks']}", ""))
    isolation = load(directory, "isolation")
    for result in (isolation or {}).get("results", []):
        name = f"isolation ({result['worker_class']})"
        if result["scenario"] == "slow-clients":
            calls = result["signed_calls"]
            table.append((name, f"{result['slow_connections']} slow clients: signed calls "
                          "answered; p99 ms", f"{calls['answered']}/{calls['sent']}; "
                          f"{calls['p99_ms']:.0f}", f"all, p99 < 1000: "
                          f"{verdict(result['meets_target'])}"))
        else:
            calls, hanging = result["healthy_calls"], result["hanging_calls"]
            table.append((name, f"{result['hanging_callers']} calls to a hanging app: other "
                          "app's p99 ms; apologies; slowest s",
                          f"{calls['p99_ms']:.0f}; {hanging['apologies']}/{hanging['calls']}; "
                          f"{hanging['max_s']}", f"p99 < 1000, all before 15 s: "
                          f"{verdict(result['meets_target'])}"))
    return table


def machine(directory: Path) -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = [f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
             f"{platform.system()} {platform.release()}"]
    loads, durations = [], []
    for name in ("translate", "voice", "voice-keepalive", "voice-cpu", "conference", "isolation"):
        before, after = directory / f"{name}.load-before", directory / f"{name}.load-after"
        if before.exists() and after.exists():
            loads.append(f"{name} {before.read_text().split()[0]} -> "
                         f"{after.read_text().split()[0]}")
        seconds = directory / f"{name}.seconds"
        if seconds.exists():
            durations.append(f"{name} {seconds.read_text().strip()} s")
    if loads:
        lines.append("load average (1 min) before -> after: " + ", ".join(loads)
                     + " (the benchmarks' own threads count too)")
    if durations:
        lines.append("durations: " + ", ".join(durations))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seconds", type=int, help="how long the run took")
    args = parser.parse_args(argv)
    table = rows(args.directory)
    if not table:
        print(f"no benchmark figures in {args.directory}", file=sys.stderr)
        return 1
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print()
    print("| benchmark | figure | this run | target / notes |")
    print("| --- | --- | ---: | --- |")
    for row in table:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              + " |")
    print()
    for line in machine(args.directory):
        print(line)
    if args.seconds is not None:
        print(f"whole run: {args.seconds} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
