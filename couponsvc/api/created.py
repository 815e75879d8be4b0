"""A 201 answers where the new resource lives: `Location`, an absolute URL."""

from __future__ import annotations

from typing import Any

from ..public_url import base_url


def created(result: Any, path: str) -> tuple[Any, dict[str, str]]:
    """`(result, headers)` for flask-smorest: the body and its `Location` (`path` under /api/v1)."""
    return result, {"Location": created_location(base_url(), path)}


def created_location(base: str, path: str) -> str:
    """The absolute URL of `path` under /api/v1 of the service at `base` (`base_url()`)."""
    return f"{base}/api/v1/{path.lstrip('/')}"
