"""Routing: `mappings/*.toml` files -> frozen `PlivoApp` objects, looked up by called number.

Each file holds one or more `[[app]]` tables. A Twilio number (E.164) routes to exactly one app:
its answer/hangup/fallback URLs, the Plivo account that scopes its conference rooms, the
environment variable that holds the Plivo auth token used to sign requests to it, and the only
hosts the gateway may fetch for it. `check = true` opts the app in to `gateway check-apps` (a dry
run that requests its answer URL). `gateway check-mappings` reports every error with file and key.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .problems import FileProblem, ProblemsFound

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
ACCOUNT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
METHODS = ("GET", "POST")

# key -> (required, default). The URL keys' hosts must appear in allowed_hosts.
APP_KEYS: dict[str, tuple[bool, object]] = {
    "name": (True, None),
    "account": (True, None),
    "numbers": (True, None),
    "answer_url": (True, None),
    "answer_method": (False, "POST"),
    "hangup_url": (False, None),
    "hangup_method": (False, "POST"),
    "fallback_url": (False, None),
    "fallback_method": (False, "POST"),
    "auth_token_env": (True, None),
    "allowed_hosts": (True, None),
    "check": (False, False),  # opt in to `gateway check-apps`: it requests the answer URL
    # The Twilio number a <Message> is sent from (E.164); default: the number the call reached.
    "sms_from": (False, None),
}
URL_KEYS = ("answer_url", "hangup_url", "fallback_url")


MappingError = FileProblem  # one problem in one routing file, at one key


class MappingsInvalid(ProblemsFound):
    """Routing files cannot be loaded; carries every error found, not just the first."""


@dataclass(frozen=True)
class PlivoApp:
    """One Plivo-style application and the Twilio numbers routed to it."""

    name: str
    account: str
    numbers: tuple[str, ...]
    answer_url: str
    auth_token_env: str
    allowed_hosts: tuple[str, ...]
    answer_method: str = "POST"
    hangup_url: str | None = None
    hangup_method: str = "POST"
    fallback_url: str | None = None
    fallback_method: str = "POST"
    check: bool = False
    sms_from: str | None = None
    source: str = ""

    def auth_token(self, environ: Mapping[str, str] | None = None) -> str:
        """The Plivo auth token that signs requests to this app (read when needed, never stored)."""
        env = os.environ if environ is None else environ
        token = env.get(self.auth_token_env, "")
        if not token:
            raise LookupError(f"environment variable {self.auth_token_env} (auth token of app "
                              f"{self.name!r}) is not set")
        return token


@dataclass(frozen=True)
class Mappings:
    """Every app of a mappings directory, indexed by E.164 number and by name."""

    apps: tuple[PlivoApp, ...]
    by_number: Mapping[str, PlivoApp] = field(repr=False)
    by_name: Mapping[str, PlivoApp] = field(repr=False)

    def app_for_number(self, number: str) -> PlivoApp | None:
        return self.by_number.get(normalize_number(number))

    def app_named(self, name: str) -> PlivoApp | None:
        return self.by_name.get(name)


def normalize_number(number: str) -> str:
    """Twilio sends E.164 with '+'; tolerate a missing '+' and surrounding blanks."""
    number = (number or "").strip()
    if number and number[0].isdigit():
        number = "+" + number
    return number


def _check_url(value: object, file: str, key: str, errors: list[MappingError]) -> str | None:
    if not isinstance(value, str):
        errors.append(MappingError(file, key, "must be a string URL"))
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.append(MappingError(file, key, f"{value!r} is not an absolute http(s) URL"))
        return None
    return value


def _host_entry_valid(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
        return True
    except ValueError:
        return bool(HOSTNAME.match(entry))


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a URL's host is one of allowed_hosts (a name, an address or a network)."""
    host = host.lower().rstrip(".")
    for entry in allowed:
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            if entry.lower().rstrip(".") == host:
                return True
    return False


def _parse_app(raw: object, file: str, where: str, environ: Mapping[str, str],
               errors: list[MappingError]) -> PlivoApp | None:
    if not isinstance(raw, dict):
        errors.append(MappingError(file, where, "must be a table"))
        return None
    start = len(errors)
    for key in raw:
        if key not in APP_KEYS:
            errors.append(MappingError(file, f"{where}.{key}", "unknown key (known: "
                                       + ", ".join(APP_KEYS) + ")"))
    values: dict[str, object] = {}
    for key, (required, default) in APP_KEYS.items():
        if key not in raw:
            if required:
                errors.append(MappingError(file, f"{where}.{key}", "is required"))
            elif default is not None:
                values[key] = default
            continue
        values[key] = raw[key]

    name = values.get("name")
    if "name" in values and (not isinstance(name, str) or not name.strip()):
        errors.append(MappingError(file, f"{where}.name", "must be a non-empty string"))
    account = values.get("account")
    if "account" in values and (not isinstance(account, str) or not ACCOUNT.match(account)):
        errors.append(MappingError(file, f"{where}.account",
                                   "must be the Plivo auth ID (letters, digits, '-', '_')"))
    numbers = values.get("numbers")
    if "numbers" in values:
        if not isinstance(numbers, list) or not numbers:
            errors.append(MappingError(file, f"{where}.numbers", "must be a non-empty list"))
        else:
            for i, n in enumerate(numbers):
                if not isinstance(n, str) or not E164.match(n):
                    errors.append(MappingError(file, f"{where}.numbers[{i}]",
                                               f"{n!r} is not an E.164 number like +14155550100"))
    if not isinstance(values.get("check", False), bool):
        errors.append(MappingError(file, f"{where}.check", "must be true or false (opt in to "
                                   "`gateway check-apps`, which requests the answer URL)"))
    sms_from = values.get("sms_from")
    if "sms_from" in values and (not isinstance(sms_from, str) or not E164.match(sms_from)):
        errors.append(MappingError(file, f"{where}.sms_from", f"{sms_from!r} is not an E.164 "
                                   "number like +14155550100 (the Twilio number <Message> "
                                   "sends from)"))
    for key in ("answer_method", "hangup_method", "fallback_method"):
        if key in values and values[key] not in METHODS:
            errors.append(MappingError(file, f"{where}.{key}", "must be GET or POST"))
    for key in URL_KEYS:
        if key in values:
            _check_url(values[key], file, f"{where}.{key}", errors)
    token_env = values.get("auth_token_env")
    if "auth_token_env" in values:
        if not isinstance(token_env, str) or not ENV_NAME.match(token_env):
            errors.append(MappingError(file, f"{where}.auth_token_env",
                                       "must be an environment variable name"))
        elif not environ.get(token_env):
            errors.append(MappingError(file, f"{where}.auth_token_env",
                                       f"environment variable {token_env} is not set"))
    allowed = values.get("allowed_hosts")
    if "allowed_hosts" in values:
        if not isinstance(allowed, list) or not all(isinstance(h, str) for h in allowed):
            errors.append(MappingError(file, f"{where}.allowed_hosts",
                                       "must be a list of host names, IP addresses or networks"))
            allowed = None
        else:
            for i, h in enumerate(allowed):
                if not _host_entry_valid(h):
                    errors.append(MappingError(file, f"{where}.allowed_hosts[{i}]",
                                               f"{h!r} is not a host name, IP address or network"))
    if isinstance(allowed, list):
        for key in URL_KEYS:
            url = values.get(key)
            host = urlsplit(url).hostname if isinstance(url, str) else None
            if host and not host_allowed(host, tuple(allowed)):
                errors.append(MappingError(file, f"{where}.{key}",
                                           f"host {host!r} is not in allowed_hosts"))
    if len(errors) > start:
        return None
    return PlivoApp(
        name=str(name), account=str(account), numbers=tuple(numbers),  # type: ignore[arg-type]
        answer_url=str(values["answer_url"]), answer_method=str(values["answer_method"]),
        hangup_url=values.get("hangup_url"), hangup_method=str(values["hangup_method"]),  # type: ignore[arg-type]
        fallback_url=values.get("fallback_url"),  # type: ignore[arg-type]
        fallback_method=str(values["fallback_method"]),
        auth_token_env=str(token_env), allowed_hosts=tuple(allowed),  # type: ignore[arg-type]
        check=bool(values["check"]), sms_from=values.get("sms_from"),  # type: ignore[arg-type]
        source=file,
    )


def check_mappings(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
                   ) -> tuple[list[PlivoApp], list[MappingError]]:
    """Read every `*.toml` under path (a directory or one file); return apps and all errors."""
    env = os.environ if environ is None else environ
    root = Path(path)
    errors: list[MappingError] = []
    if root.is_dir():
        files = sorted(root.glob("*.toml"))
        if not files:
            errors.append(MappingError(str(root), "-", "no *.toml routing file in this directory"))
    elif root.is_file():
        files = [root]
    else:
        return [], [MappingError(str(root), "-", "no such file or directory")]
    apps: list[PlivoApp] = []
    for f in files:
        try:
            data = tomllib.loads(f.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            errors.append(MappingError(str(f), "-", f"not valid TOML: {exc}"))
            continue
        for key in data:
            if key != "app":
                errors.append(MappingError(str(f), key, "unknown key (expected [[app]] tables)"))
        raw_apps = data.get("app", [])
        if not isinstance(raw_apps, list):
            errors.append(MappingError(str(f), "app", "must be an array of tables: [[app]]"))
            continue
        for i, raw in enumerate(raw_apps):
            app = _parse_app(raw, str(f), f"app[{i}]", env, errors)
            if app:
                apps.append(app)
    seen_numbers: dict[str, PlivoApp] = {}
    seen_names: dict[str, PlivoApp] = {}
    for app in apps:
        if app.name in seen_names:
            first = seen_names[app.name].source
            errors.append(MappingError(app.source, f"app {app.name!r}.name",
                                       f"duplicate app name (also in {first})"))
        seen_names.setdefault(app.name, app)
        for n in app.numbers:
            if n in seen_numbers:
                other = seen_numbers[n]
                errors.append(MappingError(app.source, f"app {app.name!r}.numbers",
                                           f"{n} is already routed to app {other.name!r} "
                                           f"({other.source})"))
            seen_numbers.setdefault(n, app)
    return apps, errors


def load_mappings(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
                  ) -> Mappings:
    """Load and validate; raise MappingsInvalid listing every error."""
    apps, errors = check_mappings(path, environ)
    if errors:
        raise MappingsInvalid(errors)
    return Mappings(
        apps=tuple(apps),
        by_number={n: a for a in apps for n in a.numbers},
        by_name={a.name: a for a in apps},
    )


def main(argv: list[str]) -> int:
    """`gateway check-mappings [PATH]`: print every error with file and key; exit 1 if any."""
    parser = argparse.ArgumentParser(prog="gateway check-mappings",
                                     description="Validate the routing files.")
    parser.add_argument("path", nargs="?", default=os.environ.get("GATEWAY_MAPPINGS", "mappings"),
                        help="directory of *.toml files or one file (default: $GATEWAY_MAPPINGS "
                             "or ./mappings)")
    args = parser.parse_args(argv)
    apps, errors = check_mappings(args.path)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    numbers = sum(len(a.numbers) for a in apps)
    print(f"ok: {len(apps)} app(s), {numbers} number(s) in {args.path}")
    return 0
