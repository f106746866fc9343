"""Plivo's request signatures, V2 and V3, computed exactly as the plivo SDK's validators check them.

Pure: strings in, strings out. The customer's app validates what we send with
`plivo.utils.validate_signature` (V2) and `plivo.utils.signature_v3.validate_v3_signature` (V3),
so where Plivo's prose and the SDK differ, the SDK wins (see reference/plivo.md §3.4):

* V2: base64(HMAC-SHA256(token, scheme://netloc/path + nonce)); query and fragment not covered.
* V3: base64(HMAC-SHA256(token, S + "." + nonce)) where, with `base` = scheme://netloc/path,
  - GET:  S = base ["?" sorted k=v pairs of (params updated by the URL's query)]
  - POST: S = base "?" [sorted k=v pairs of the URL's query "."] concat(sorted key+value of params)
          or, with no POST params, base ["?" sorted query].

Query values are signed percent-decoded, as Unicode. (The Python SDK's V3 validator cannot
check a URL whose query holds non-ASCII text at all: it raises UnicodeEncodeError in Python 3.
That is the SDK's limit, with Plivo too; POST bodies and paths in any script are fine.)
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Mapping, Sequence
from functools import lru_cache
from urllib.parse import parse_qs, urlparse, urlunparse

ParamValue = str | Sequence[str]

HEADER_V2 = "X-Plivo-Signature-V2"
HEADER_V2_NONCE = "X-Plivo-Signature-V2-Nonce"
HEADER_V3 = "X-Plivo-Signature-V3"
HEADER_V3_NONCE = "X-Plivo-Signature-V3-Nonce"
# Plivo also signs with the main account's token. The gateway holds one token per mapping, so this
# header carries the same value as V3: right when the mapping's token is the main account's.
HEADER_MA_V3 = "X-Plivo-Signature-Ma-V3"

_NONCE_DIGITS = 20  # Plivo's nonces are 20 decimal digits


def new_nonce() -> str:
    """A fresh random numeric nonce shaped like Plivo's."""
    return str(secrets.randbelow(10**_NONCE_DIGITS)).zfill(_NONCE_DIGITS)


def plivo_signature_v2(url: str, nonce: str, auth_token: str) -> str:
    """X-Plivo-Signature-V2 for a request to `url` (query and fragment are not covered)."""
    return _hmac_b64(auth_token, _url_parts(url)[0] + nonce)


def plivo_signature_v3(method: str, url: str, params: Mapping[str, ParamValue], nonce: str,
                       auth_token: str) -> str:
    """X-Plivo-Signature-V3 for `method` on `url` with `params` (GET: merged with the URL's
    query, the query winning, as the SDK does; POST: the form body)."""
    return _hmac_b64(auth_token, f"{v3_signed_string(method, url, params)}.{nonce}")


def v3_signed_string(method: str, url: str, params: Mapping[str, ParamValue]) -> str:
    """The text V3 signs, before the nonce is appended. Exposed for tests and debugging."""
    base, query, pairs = _url_parts(url)
    # Only an exact upper-case GET takes the GET path in the SDK; anything else is signed as POST.
    if method == "GET":
        merged: dict[str, ParamValue] = dict(params)
        merged.update(query)
        pairs = _sorted_query_string(merged)
        return f"{base}?{pairs}" if pairs else base
    if not params:
        return f"{base}?{pairs}" if pairs else base
    return f"{base}?{pairs}{'.' if pairs else ''}{_sorted_params_string(params)}"


def signature_headers(method: str, url: str, params: Mapping[str, ParamValue], auth_token: str,
                      nonce: str | None = None) -> dict[str, str]:
    """Every Plivo signature header for one request. `url` must be the URL exactly as sent (for
    GET, with the params already in its query: then pass params={}, or the same params)."""
    nonce = new_nonce() if nonce is None else nonce
    v3 = plivo_signature_v3(method, url, params, nonce, auth_token)
    return {
        HEADER_V2: plivo_signature_v2(url, nonce, auth_token),
        HEADER_V2_NONCE: nonce,
        HEADER_V3: v3,
        HEADER_V3_NONCE: nonce,
        HEADER_MA_V3: v3,
    }


def _hmac_b64(auth_token: str, message: str) -> str:
    digest = hmac.digest(auth_token.encode("utf-8"), message.encode("utf-8"), "sha256")
    return base64.b64encode(digest).decode("ascii")


@lru_cache(maxsize=512)
def _url_parts(url: str) -> tuple[str, dict[str, list[str]], str]:
    """(the signed base, the query's values by name, the sorted query string) of a URL: the same
    answer URL is signed on every call. Callers only read the map."""
    query = _query_map(urlparse(url).query)
    return _base_url(url), query, _sorted_query_string(query)


def _base_url(url: str) -> str:
    # urlparse (not urlsplit): like the SDK, a ';params' path segment is dropped from the base.
    parts = urlparse(url)
    return urlunparse((parts.scheme, parts.netloc, parts.path, "", "", ""))


def _query_map(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


def _values(value: ParamValue) -> list[str] | None:
    return None if isinstance(value, str) else sorted(value)


def _sorted_query_string(params: Mapping[str, ParamValue]) -> str:
    out = []
    for key in sorted(params):
        values = _values(params[key])
        if values is None:
            out.append(f"{key}={params[key]}")
        else:
            out.append("&".join(f"{key}={v}" for v in values))
    return "&".join(out)


def _sorted_params_string(params: Mapping[str, ParamValue]) -> str:
    out = []
    for key in sorted(params):
        values = _values(params[key])
        if values is None:
            out.append(f"{key}{params[key]}")
        else:
            out.append("".join(f"{key}{v}" for v in values))
    return "".join(out)
