"""Plivo's per-URL delivery settings, written in the URL fragment: `#ct=&rt=&tt=&rc=&rp=`. Pure.

Plivo's documented keys ("Callback Configurations"), in milliseconds except rc and rp:

| key | meaning                                   | allowed     | default |
|-----|-------------------------------------------|-------------|---------|
| ct  | connection timeout                        | 100..10000  | 2000    |
| rt  | read timeout (first byte, and between)    | 100..40000  | 40000   |
| tt  | total time for all attempts               | 100..55000  | 55000   |
| rc  | retries after the first attempt           | 0..5        | 1       |
| rp  | what is retried: 4xx,5xx,ct,rt or all     | comma list  | ct,rt   |

`er` (Plivo's edge region) means nothing here and is ignored, as are keys Plivo does not define
(a fragment can also be an app's own anchor). A defined key with a bad value is an error that
names the key; the caller decides what to do (usually: log it and use the defaults).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

RETRY_CLASSES = frozenset({"4xx", "5xx", "ct", "rt"})

_MS_LIMITS = {"ct": (100, 10_000), "rt": (100, 40_000), "tt": (100, 55_000)}
_RC_LIMITS = (0, 5)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How one URL is requested: timeouts in seconds, retries after the first attempt, and the
    failure classes that are retried (a subset of RETRY_CLASSES)."""

    connect_timeout: float = 2.0
    read_timeout: float = 40.0
    total_timeout: float = 55.0
    retries: int = 1
    retry_on: frozenset[str] = frozenset({"ct", "rt"})

    @property
    def attempts(self) -> int:
        return 1 + self.retries


DEFAULT_POLICY = DeliveryPolicy()


class FragmentError(ValueError):
    """A delivery setting in the URL fragment has a bad value; `key` names it."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"URL fragment key {key!r}: {reason}")


def strip_fragment(url: str) -> str:
    """The URL as it is sent: everything from '#' on removed."""
    return url.split("#", 1)[0]


def split_fragment(url: str) -> tuple[str, DeliveryPolicy]:
    """The URL without its fragment, and the delivery policy the fragment asks for.
    Raises FragmentError (a ValueError) naming the key whose value is bad."""
    base, _, fragment = url.partition("#")
    return base, parse_fragment(fragment)


def parse_fragment(fragment: str) -> DeliveryPolicy:
    """The policy for a fragment's text (without '#'); empty text gives DEFAULT_POLICY."""
    values: dict[str, str] = {}
    for piece in fragment.split("&"):
        key, sep, value = piece.partition("=")
        key = key.strip()
        if key not in _MS_LIMITS and key not in ("rc", "rp"):
            continue
        if not sep:
            raise FragmentError(key, "has no value (write key=value)")
        values[key] = value.strip()  # the last occurrence wins, as in a query string

    policy = DEFAULT_POLICY
    seconds = {key: _integer(key, values[key], *_MS_LIMITS[key]) / 1000
               for key in _MS_LIMITS if key in values}
    if "ct" in seconds:
        policy = replace(policy, connect_timeout=seconds["ct"])
    if "rt" in seconds:
        policy = replace(policy, read_timeout=seconds["rt"])
    if "tt" in seconds:
        policy = replace(policy, total_timeout=seconds["tt"])
    if "rc" in values:
        policy = replace(policy, retries=_integer("rc", values["rc"], *_RC_LIMITS))
    if "rp" in values:
        policy = replace(policy, retry_on=_retry_classes(values["rp"]))
    return policy


def clamp_to_budget(policy: DeliveryPolicy, seconds: float) -> DeliveryPolicy:
    """The policy shortened so that everything, retries included, ends within `seconds`
    (e.g. what is left of Twilio's 15 s webhook window). Never lengthens anything."""
    budget = max(0.0, seconds)
    if budget >= max(policy.connect_timeout, policy.read_timeout, policy.total_timeout):
        return policy  # nothing to shorten (policies are immutable: no copy needed)
    return replace(
        policy,
        connect_timeout=min(policy.connect_timeout, budget),
        read_timeout=min(policy.read_timeout, budget),
        total_timeout=min(policy.total_timeout, budget),
    )


def _integer(key: str, text: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise FragmentError(key, f"{text!r} is not a whole number")
    value = int(text)
    if not low <= value <= high:
        raise FragmentError(key, f"{value} is outside {low}..{high}")
    return value


def _retry_classes(text: str) -> frozenset[str]:
    names = {name.strip().lower() for name in text.split(",") if name.strip()}
    if not names:
        raise FragmentError("rp", "is empty (use 4xx, 5xx, ct, rt or all)")
    unknown = names - RETRY_CLASSES - {"all"}
    if unknown:
        raise FragmentError("rp", f"unknown value(s) {', '.join(sorted(unknown))} "
                                  "(use 4xx, 5xx, ct, rt or all)")
    return RETRY_CLASSES if "all" in names else frozenset(names)
