"""An autouse fixture for modules whose customer app is the module's `app` fixture: after each
test, every request the app got verifies with the plivo SDK's validators. A module takes it by
importing it by name: `from tests.support.plivo_signed import
every_request_is_signed_as_plivo_signs`.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def every_request_is_signed_as_plivo_signs(app):
    """After each test: every request the app got verifies with the plivo SDK's validators."""
    yield
    app.assert_all_signed_as_plivo_signs()
