"""A 201 answers where the new resource lives: `Location`, an absolute URL."""

from __future__ import annotations

from typing import Any

from ..public_url import base_url


def created(result: Any, path: str) -> tuple[Any, dict[str, str]]:
    """`(result, headers)` for flask-smorest: the body and its `Location` (`path` under /api/v1)."""
    return result, {"Location": f"{base_url()}/api/v1/{path.lstrip('/')}"}
