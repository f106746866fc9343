"""Which URLs the gateway may fetch for an app: its mapping's `allowed_hosts`, and no private
networks unless the mapping names them. Pure, except the DNS look-up (injectable for tests).

An `allowed_hosts` entry is a host name (compared case-insensitively, trailing dot ignored), an IP
address, or a network in CIDR form. A URL passes when

* its scheme is http or https, and it holds no backslash or control character (parsers
  disagree on where such a URL's host ends: Python's urlsplit and urllib3, which connects, must
  see the same host),
* its host is listed: a name exactly, an IP literal when an IP/CIDR entry covers it, and
* every address the name resolves to is globally routable, or is itself covered by an IP/CIDR
  entry. Loopback, private, link-local, shared, multicast, reserved and unspecified addresses
  are refused otherwise, so a public name pointed at 127.0.0.1 cannot reach the gateway's host.

The same address rule is applied again to the socket's peer at connect time (see client.py), so
a name that resolves differently a moment later (DNS rebinding) gains nothing.

Every verdict that depends on nothing but the URL and the list (the URL's shape, its host being
listed, an IP literal being covered, an address being allowed) is remembered: an app's answer
URL is checked on every call, and parsing it and its list's networks again cost more than the
signatures. A name's addresses are never remembered here: each check resolves it again.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]

ALLOWED_SCHEMES = ("http", "https")
# Characters that make URL parsers disagree about the authority (WHATWG treats a backslash as a
# slash; RFC 3986 parsers keep it in the authority): such URLs are refused outright.
AMBIGUOUS = re.compile(r"[\\\x00-\x1f\x7f]")


class HostNotAllowed(Exception):
    """The URL may not be fetched for this app; `reason` says why in plain words."""

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host or '(no host)'}: {reason}")


class HostUnresolvable(Exception):
    """The host name did not resolve (a connection failure, not a policy refusal)."""

    def __init__(self, host: str, reason: str):
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as getaddrinfo gives them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolvable(host, f"does not resolve ({exc})") from None
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, allowed_hosts: Sequence[str], *,
              resolve: Resolver = resolve_host) -> tuple[str, ...]:
    """Raise HostNotAllowed unless `url` may be fetched under `allowed_hosts` (see module doc);
    HostUnresolvable when its host name does not resolve. Returns the addresses a host name
    resolved to, all vetted (empty for an IP literal), so the caller may connect to one of them
    without looking the name up again."""
    allowed = tuple(allowed_hosts)
    host, port, literal = _vetted_target(url, allowed)
    if literal:
        return ()
    addresses = list(resolve(host, port))
    if not addresses:
        raise HostUnresolvable(host, "resolves to no address")
    for text in addresses:
        if not _text_address_allowed(text, allowed):
            raise HostNotAllowed(host, f"resolves to {text}, which is not a public address and "
                                       "is not listed in allowed_hosts")
    return tuple(addresses)


@lru_cache(maxsize=1024)
def _vetted_target(url: str, allowed_hosts: tuple[str, ...]) -> tuple[str, int, bool]:
    """(host, port, is an IP literal) of a URL that passes every check but the name's addresses;
    raises HostNotAllowed. Pure, so remembered (a refusal is not: it raises)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise HostNotAllowed(host, f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if AMBIGUOUS.search(url):
        raise HostNotAllowed(host, "the URL holds a backslash or a control character")
    if not host:
        raise HostNotAllowed(host, "the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise HostNotAllowed(host, "the URL's port is not a number from 0 to 65535") from None
    try:
        connects_to = (parse_url(url).host or "").rstrip(".").strip("[]")
    except LocationParseError:
        connects_to = None
    if connects_to is None or connects_to.lower() != host.lower():
        raise HostNotAllowed(host, "the URL's host is ambiguous (parsers disagree on it)")

    literal = _ip(host)
    if literal is not None:
        if not _covered(literal, allowed_hosts):
            raise HostNotAllowed(host, "this address is not in the mapping's allowed_hosts")
        return host, port, True
    if host.lower() not in _host_names(allowed_hosts):
        raise HostNotAllowed(host, "this host is not in the mapping's allowed_hosts")
    return host, port, False


@lru_cache(maxsize=1024)
def _text_address_allowed(text: str, allowed_hosts: tuple[str, ...]) -> bool:
    address = _ip(text)
    return address is not None and address_allowed(address, allowed_hosts)


def host_listed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """The pure half of `check_url`: is `host` (a name or an IP literal) listed? Used where no
    DNS look-up may happen (translation); the full check runs again when connecting."""
    host = host.rstrip(".").strip("[]")
    literal = _ip(host)
    if literal is not None:
        return _covered(literal, allowed_hosts)
    return host.lower() in _host_names(allowed_hosts)


def address_allowed(address: IPAddress | str, allowed_hosts: Sequence[str]) -> bool:
    """True when the gateway may connect to `address`: globally routable, or covered by an IP or
    CIDR entry of `allowed_hosts`."""
    ip = _ip(address) if isinstance(address, str) else address
    if ip is None:
        return False
    return _covered(ip, tuple(allowed_hosts)) or _public(ip)


def _public(ip: IPAddress) -> bool:
    ip = _unmapped(ip)
    return ip.is_global and not ip.is_multicast


def _unmapped(ip: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 is 127.0.0.1 on the wire: judge the IPv4 address it carries.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _covered(ip: IPAddress, allowed_hosts: Sequence[str]) -> bool:
    candidates = {ip, _unmapped(ip)}
    for entry in _ip_entries(tuple(allowed_hosts)):
        network = _network(entry)
        if network is not None and any(c.version == network.version and c in network
                                       for c in candidates):
            return True
    return False


def _host_names(allowed_hosts: Sequence[str]) -> frozenset[str]:
    return _names_listed(tuple(allowed_hosts))


@lru_cache(maxsize=256)
def _names_listed(allowed_hosts: tuple[str, ...]) -> frozenset[str]:
    return frozenset(e.strip().lower().rstrip(".") for e in allowed_hosts
                     if _network(e) is None)


@lru_cache(maxsize=256)
def _ip_entries(allowed_hosts: tuple[str, ...]) -> tuple[str, ...]:
    """The IP and CIDR entries of a list (its names left out): what an address is compared to."""
    return tuple(e for e in allowed_hosts if _network(e) is not None)


@lru_cache(maxsize=1024)
def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    text = entry.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _ip(text: str) -> IPAddress | None:
    value = text.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    value = value.split("%", 1)[0]  # an IPv6 zone id (fe80::1%eth0) is not part of the address
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
