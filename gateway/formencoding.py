"""Form encoding (`application/x-www-form-urlencoded`, and URL queries) as `urlencode` writes it.

Pure. The parameters the gateway sends to apps and the queries of its own callback URLs are
nearly all text that needs no quoting (numbers, UUIDs, statuses, steps); `urlencode` quotes
every key and value all the same, on every request. Here text made only of what quoting leaves
as it is (letters, digits and `_.-~`) is written as it is, and anything else goes through
`quote_plus`, as `urlencode` does: the result is the same string
(`tests/app_side/test_app_client_wire.py`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote_plus

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")


def form_encoded(params: Mapping[str, object]) -> str:
    """`urlencode(params)`, character for character (one value per key)."""
    return "&".join(f"{_quoted(str(key))}={_quoted(str(value))}"
                    for key, value in params.items())


def _quoted(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else quote_plus(text)
