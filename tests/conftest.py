"""Fixtures shared by every test package: a real redis-server for the session (see
tests/support/redis_server.py), and the customer app / gateway helpers under tests/support."""

pytest_plugins = ["tests.support.redis_server"]
