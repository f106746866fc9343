"""The `gateway` command: one sub-command per job, each implemented in the module that owns it.

Sub-commands import their module lazily so that `gateway translate` stays fast and does not
need a store, a queue or network access.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, function, one-line help). Each function takes argv (list[str]) and returns
# an exit status; it owns its own argparse parser so that its flags live next to its code.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "serve": ("gateway.serve", "main", "run the gateway under gunicorn (production server)"),
    "translate": ("gateway.translate.cli", "main", "translate Plivo XML (FILE or -) to TwiML"),
    "check-mappings": ("gateway.mappings", "main", "validate mappings/*.toml"),
    "check-apps": ("gateway.check_apps", "main", "dry-run each opted-in app's answer URL and "
                   "report what cannot run"),
    "simulate": ("gateway.sim.cli", "simulate_main", "run a scenario against a gateway"),
    "demo": ("gateway.sim.demo", "main", "run the seed examples and the IVR story end to end, "
             "locally"),
    "media": ("gateway.media.server", "main",
              "run the side-stream WebSocket server alone (digitsMatch)"),
    "worker": ("gateway.worker", "worker_main", "run the job worker (callbacks, timers)"),
    "deliveries": ("gateway.worker", "deliveries_main", "list or replay failed deliveries"),
    "dtmf": ("gateway.media.cli", "main", "print the DTMF keys in a WAV file (JSON lines)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Run a Plivo voice app on Twilio numbers, unchanged.",
    )
    parser.add_argument("command", choices=sorted(SUBCOMMANDS), help="what to do")
    parser.epilog = "\n".join(f"  {n:15} {h}" for n, (_, _, h) in sorted(SUBCOMMANDS.items()))
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    if argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv[:1])  # prints the usage error and exits 2
    module_name, function_name, _ = SUBCOMMANDS[argv[0]]
    function = getattr(importlib.import_module(module_name), function_name)
    return int(function(argv[1:]) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
