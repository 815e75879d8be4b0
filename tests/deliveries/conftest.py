"""Fixtures shared by the delivery tests."""

from __future__ import annotations

import pytest

from .processes import RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """One private Redis per module (a test may kill and restart it on its port)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server.start()
    finally:
        server.kill()
