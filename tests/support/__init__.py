"""Helpers shared by test packages: real servers (Redis) the tests start on loopback."""
