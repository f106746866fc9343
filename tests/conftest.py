"""Fixtures shared by every test package: a real redis-server for the session (see
tests/support/redis_server.py), and the customer app / gateway helpers under tests/support."""

import atexit
import os
import shutil
import tempfile

# Tests that import `gateway.jobs` in process open its job queue at import, beside the store
# GATEWAY_STORE_URL names, by default `gateway.db` in the working directory: the checkout.
# Each test process gets a scratch directory instead. (Servers the tests start name their own.)
if not os.environ.get("GATEWAY_STORE_URL"):
    _scratch = tempfile.mkdtemp(prefix="gateway-tests-")
    atexit.register(shutil.rmtree, _scratch, ignore_errors=True)
    os.environ["GATEWAY_STORE_URL"] = f"sqlite:///{_scratch}/gateway.db"

pytest_plugins = ["tests.support.redis_server"]
