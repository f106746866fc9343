"""Form encoding (`application/x-www-form-urlencoded`, and URL queries) as `urlencode` writes it,
and form decoding as werkzeug reads a request's form.

Pure. The parameters the gateway sends to apps and the queries of its own callback URLs are
nearly all text that needs no quoting (numbers, UUIDs, statuses, steps); `urlencode` quotes
every key and value all the same, on every request. Here text made only of what quoting leaves
as it is (letters, digits and `_.-~`) is written as it is, and anything else goes through
`quote_plus`, as `urlencode` does: the result is the same string
(`tests/app_side/test_app_client_wire.py`).

`form_decoded` reads a form body as werkzeug does (`parse_qsl` with blank values kept, and
werkzeug's error handler for bytes that are not UTF-8 once unquoted), for the webhooks answered
before Flask (`twilio_side.signature.signed_form`): a name or value without `%` or `+` is taken
as it is, where `parse_qsl` unquotes every one (`tests/core/test_form_decoding.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote_plus, unquote

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler)

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def form_encoded(params: Mapping[str, object]) -> str:
    """`urlencode(params)`, character for character (one value per key)."""
    return "&".join(f"{_quoted(str(key))}={_quoted(str(value))}"
                    for key, value in params.items())


def _quoted(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote_plus(text)


def form_decoded(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")`, pair for pair."""
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((_unquoted(name), _unquoted(value)))
    return pairs


def _unquoted(text: str) -> str:
    if "%" not in text and "+" not in text:
        return text
    return unquote(text.replace("+", " "), "utf-8", "werkzeug.url_quote")
