"""`gateway worker` and `gateway deliveries`: the process that runs the jobs, and the book of
callbacks that finally failed (listed as JSON lines, replayed by id)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .deliveries import failed_deliveries, replay
from .jobs import run_worker
from .runtime import configure_logging, get_runtime


def worker_main(argv: list[str]) -> int:
    """`gateway worker`: run the job consumer (the Procfile's worker in Redis mode)."""
    parser = argparse.ArgumentParser(prog="gateway worker", description=run_worker.__doc__)
    parser.add_argument("--workers", type=int, default=8, help="threads (default 8)")
    args = parser.parse_args(argv)
    configure_logging()
    get_runtime()  # validate settings before consuming anything
    run_worker(args.workers)
    return 0


def deliveries_main(argv: list[str]) -> int:
    """`gateway deliveries --failed | --replay ID`: what finally failed, and replaying it."""
    parser = argparse.ArgumentParser(prog="gateway deliveries",
                                     description="List or replay callbacks that finally failed.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--failed", action="store_true", help="list failed deliveries (JSON lines)")
    group.add_argument("--replay", metavar="ID", help="deliver a failed request again")
    args = parser.parse_args(argv)
    runtime = get_runtime()
    if args.failed:
        count = 0
        try:
            for record in failed_deliveries(runtime.store):
                print(json.dumps(record, sort_keys=True))
                count += 1
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader has gone (`| head`): stop quietly, as Unix tools do, and keep Python
            # from failing again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        print(f"{count} failed deliveries", file=sys.stderr)
        return 0
    try:
        replay(runtime.store, args.replay)
    except KeyError:
        print(f"gateway deliveries: no failed delivery with id {args.replay}", file=sys.stderr)
        return 1
    print(f"queued {args.replay} for delivery", file=sys.stderr)
    return 0
